"""Stability training (``train.augment.stability``): clean originals beside the perturbed
batches, and a KL term that pulls the two passes' tag distributions together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from raytag.augment import augment_sentences
from raytag.config import AugmentConfig, BiLSTMConfig, JobConfig, TrainConfig, TransformerConfig, load_job
from raytag.corpus.prepared import PreparedCorpus
from raytag.corpus.vocab import PAD_ID
from raytag.errors import ConfigError
from raytag.models.bilstm_batches import CLEAN_MASK
from tests.unit.test_augment import epoch_batches, prepared_corpus, sentences

MODEL = BiLSTMConfig(char_features="cnn", casing_features=True, max_word_length=8, output="crf")
CORPUS = {"format": "conll", "path": "x.conll"}


@pytest.fixture()
def corpus(tmp_path: Path) -> PreparedCorpus:
    return prepared_corpus(tmp_path / "prepared", sentences(300, seed=1), sentences(20, seed=2))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["train.augment.stability=1"], "stability needs train.augment.sentences above 0"),
        (["train.augment.sentences=0.5", "train.augment.stability=-1"], "train.augment.stability"),
    ],
)
def test_bad_stability_names_its_field(tmp_path: Path, override: list[str], message: str) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: j\ncorpus: {format: conll, path: x.conll}\nmodel: {kind: bilstm, output: crf}\n")
    with pytest.raises(ConfigError, match=message):
        load_job(job, override)


def test_stability_needs_a_crf_bilstm() -> None:
    augment = AugmentConfig(sentences=0.5, stability=1.0)
    for model in (TransformerConfig(), BiLSTMConfig(output="softmax")):
        with pytest.raises(ValueError, match="stability applies to model.kind 'bilstm' with model.output 'crf'"):
            JobConfig(name="j", corpus=CORPUS, model=model, train=TrainConfig(augment=augment))
    job = JobConfig(name="j", corpus=CORPUS, model=MODEL, train=TrainConfig(augment=augment))
    assert job.train.augment.stability == 1.0


def test_batches_carry_their_clean_originals_and_a_mask_of_the_perturbed(corpus: PreparedCorpus) -> None:
    clean_train = TrainConfig(batch_size=16, bucket_by_length=False, word_dropout=0.3)
    noisy = clean_train.model_copy(update={"augment": AugmentConfig(sentences=0.5, words=0.5)})
    stable = clean_train.model_copy(update={"augment": AugmentConfig(sentences=0.5, words=0.5, stability=2.0)})
    plain = epoch_batches(corpus, MODEL, noisy, 0)
    paired = epoch_batches(corpus, MODEL, stable, 0)
    unperturbed = epoch_batches(corpus, MODEL, clean_train.model_copy(update={"word_dropout": 0.0}), 0)
    assert all(len(batch) == 2 for batch in plain) and all(len(batch) == 3 for batch in paired)

    tokens = corpus.table("train", columns=["tokens"]).column("tokens").to_pylist()
    picked = np.array([new is not None for new in augment_sentences(tokens, noisy.augment, noisy.seed, 0)])
    assert 0.3 < picked.mean() < 0.7
    row = 0
    for (inputs, labels, clean), (same_inputs, same_labels), (original, _) in zip(paired, plain, unperturbed,
                                                                                  strict=True):
        # The perturbed half is what training without stability sees, word dropout included.
        for key in inputs:
            np.testing.assert_array_equal(inputs[key], same_inputs[key])
        np.testing.assert_array_equal(labels, same_labels)
        # The clean half is the batch neither perturbed nor dropped.
        assert set(clean) == {*original, CLEAN_MASK}
        for key in original:
            np.testing.assert_array_equal(clean[key], original[key])
        real = clean["word_ids"] != PAD_ID
        mask = clean[CLEAN_MASK]
        assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
        rows = picked[row : row + len(labels)]
        np.testing.assert_array_equal(mask.astype(bool), real & rows[:, None])
        row += len(labels)
    assert row == len(tokens)


def test_consistency_is_the_masked_mean_kl() -> None:
    import tensorflow as tf

    from raytag.models.crf import consistency

    rng = np.random.default_rng(0)
    clean, noisy = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    mask = np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32)

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(clean), softmax(noisy)
    kl = (p * (np.log(p) - np.log(q))).sum(-1)
    expected = (kl * mask).sum() / mask.sum()
    assert float(consistency(tf.constant(clean), tf.constant(noisy), tf.constant(mask))) == pytest.approx(expected,
                                                                                                       rel=1e-5)
    assert float(consistency(tf.constant(clean), tf.constant(clean), tf.constant(mask))) == pytest.approx(0, abs=1e-6)
    assert float(consistency(tf.constant(clean), tf.constant(noisy), tf.zeros((2, 3)))) == 0.0


def test_the_train_step_pulls_clean_and_perturbed_outputs_together() -> None:
    """Trained on the perturbed copies only, a model still tags their clean originals its own
    way; with the KL term the two passes' distributions end up far closer."""
    import tensorflow as tf

    from raytag.models.bilstm import build_model, compile_model, keras
    from raytag.models.crf import consistency

    config = BiLSTMConfig(embedding_dim=8, lstm_units=8, dropout=0.0, output="crf")
    rng = np.random.default_rng(0)
    # Clean word ids 2..11; the perturbed copy of every word is an unrelated id 12..21.
    clean_ids = rng.integers(2, 12, size=(16, 6)).astype(np.int32)
    noisy_ids = (clean_ids + 10).astype(np.int32)
    tags = (clean_ids % 3).astype(np.int32)
    mask = np.ones(clean_ids.shape, dtype=np.float32)
    data = tf.data.Dataset.from_tensors(({"word_ids": noisy_ids}, tags, {"word_ids": clean_ids, CLEAN_MASK: mask}))

    def gap(weight: float) -> float:
        keras.utils.set_random_seed(0)
        model = build_model(config, 22, 2, 3)
        compile_model(model, learning_rate=0.05)
        model.stability_weight = weight
        model.fit(data.repeat(60), epochs=1, verbose=0)
        return float(consistency(model({"word_ids": clean_ids}), model({"word_ids": noisy_ids}), mask))

    without, with_term = gap(0.0), gap(5.0)
    assert with_term < 0.2 * without
