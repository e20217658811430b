"""``train.weight_average``: the optimizer's moving average of the BiLSTM's weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from raytag.config import BiLSTMConfig, JobConfig, TrainConfig, TransformerConfig, load_job
from raytag.errors import ConfigError

CORPUS = {"format": "conll", "path": "x.conll"}


@pytest.mark.parametrize("value", ["-0.1", "1", "1.5"])
def test_a_decay_outside_0_1_names_its_field(tmp_path: Path, value: str) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: j\ncorpus: {format: conll, path: x.conll}\n")
    with pytest.raises(ConfigError, match="train.weight_average"):
        load_job(job, [f"train.weight_average={value}"])


def test_weight_average_is_a_bilstm_option() -> None:
    with pytest.raises(ValueError, match="train.weight_average applies to model.kind 'bilstm' only"):
        JobConfig(name="j", corpus=CORPUS, model=TransformerConfig(), train=TrainConfig(weight_average=0.99))
    job = JobConfig(name="j", corpus=CORPUS, train=TrainConfig(weight_average=0.99))
    assert job.train.weight_average == 0.99 and TrainConfig().weight_average == 0.0


@pytest.mark.parametrize("output", ["softmax", "crf"])
def test_the_average_follows_every_step_with_a_warmed_up_decay(output: str) -> None:
    """Recomputed from the weights after every step: ``a ← d·a + (1−d)·w`` with
    ``d = min(decay, (1 + t) / (10 + t))``, from the built weights. The CRF model trains
    through its own train step, which must update the average too."""
    from raytag.models.bilstm import build_model, compile_model, keras
    from raytag.models.weight_average import AveragingAdam, averaged_weights

    decay, steps = 0.6, 30  # the warm-up rules the first 12 steps, the decay the rest
    keras.utils.set_random_seed(0)
    model = build_model(BiLSTMConfig(embedding_dim=8, lstm_units=8, dropout=0.0, output=output), 20, 2, 3)
    compile_model(model, learning_rate=0.05, average_decay=decay)
    assert isinstance(model.optimizer, AveragingAdam)
    rng = np.random.default_rng(0)
    words = rng.integers(2, 20, size=(steps * 4, 5)).astype(np.int32)
    tags = (words % 3).astype(np.int32)
    trajectory: list[list[np.ndarray]] = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_: trajectory.append(model.get_weights()))
    expected = model.get_weights()
    model.fit({"word_ids": words}, tags, batch_size=4, shuffle=False, verbose=0, callbacks=[record])
    assert len(trajectory) == steps
    trainable = {id(v) for v in model.trainable_variables}
    is_trained = [id(v) in trainable for v in model.weights]
    for t, weights in enumerate(trajectory):
        d = min(decay, (1 + t) / (10 + t))
        expected = [d * a + (1 - d) * w if trained else w for a, w, trained in zip(expected, weights, is_trained)]
    trained = model.get_weights()
    with averaged_weights(model):
        inside = model.get_weights()
        averaged_scores = model.predict({"word_ids": words[:4]}, verbose=0)
    for got, want in zip(inside, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert max(float(np.abs(a - b).max()) for a, b in zip(inside, trained)) > 1e-3
    # Afterwards the model holds its trained weights again, and training goes on from them.
    for got, want in zip(model.get_weights(), trained, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.allclose(averaged_scores, model.predict({"word_ids": words[:4]}, verbose=0))


def test_without_an_average_the_block_changes_nothing() -> None:
    from raytag.models.bilstm import build_model, compile_model
    from raytag.models.weight_average import AveragingAdam, averaged_weights

    model = build_model(BiLSTMConfig(embedding_dim=4, lstm_units=4), 10, 2, 3)
    compile_model(model, learning_rate=0.01)
    assert not isinstance(model.optimizer, AveragingAdam)
    before = model.get_weights()
    with averaged_weights(model):
        for got, want in zip(model.get_weights(), before, strict=True):
            np.testing.assert_array_equal(got, want)
