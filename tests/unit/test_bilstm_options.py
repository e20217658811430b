"""The BiLSTM's casing features and CRF output: training, saving, reloading, the Tagger."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from raytag.config import BiLSTMConfig
from raytag.corpus.vocab import Vocabulary
from raytag.models.bilstm import (
    build_model,
    compile_model,
    decode_outputs,
    encode_batch,
    is_crf,
    keras,
    load_model,
    predict_outputs,
    save_model,
    transition_scores,
)
from raytag.models.casing import casing_ids
from raytag.models.crf import CRFTagger, crf_log_likelihood
from raytag.tagger import BiLSTMTagger

# "may" is a month only when capitalised, and only casing tells the unknown "Zog" (a name)
# from the unknown "zog" (not one): the casing feature has work to do.
CORPUS = [
    ("Ada lives in Paris .", "B-PER O O B-LOC O"),
    ("Grace Hopper left Oslo in May", "B-PER I-PER O B-LOC O B-MISC"),
    ("they may leave Paris", "O O O B-LOC"),
    ("the EU said in May", "O B-ORG O O B-MISC"),
    ("Ada Lovelace met the EU", "B-PER I-PER O O B-ORG"),
    ("Zog left", "B-PER O"),
    ("zog left", "O O"),
]
TOKENS = [s.split() for s, _ in CORPUS]
GOLD = [t.split() for _, t in CORPUS]
WORDS = Vocabulary.build(Counter(w for s in TOKENS for w in s if w.lower() != "zog"), lowercase=True)
CHARS = Vocabulary.build(Counter(c for s in TOKENS for w in s for c in w))
LABELS = Vocabulary.labels(sorted({t for tags in GOLD for t in tags}))
CONFIG = BiLSTMConfig(embedding_dim=16, lstm_units=16, lstm_layers=1, dropout=0.0, char_features="cnn",
                      char_embedding_dim=8, char_units=8, max_word_length=6, casing_features=True,
                      casing_embedding_dim=4, output="crf")


def encode(config: BiLSTMConfig = CONFIG):
    return encode_batch([WORDS.encode(s) for s in TOKENS], TOKENS, CHARS if config.char_features != "none" else None,
                        config.max_word_length, [LABELS.encode(t) for t in GOLD], casing=config.casing_features)


def tags(model: keras.Model, inputs) -> list[list[str]]:
    probs, emissions = predict_outputs(model, inputs)
    paths = decode_outputs(probs, emissions, transition_scores(model), [len(s) for s in TOKENS], LABELS.items, True)
    return [[LABELS.items[i] for i in path] for path in paths]


def assert_tags_like_the_model(tagger, sentences, probs, paths, labels: Vocabulary) -> None:
    """The Tagger's tags are the model's decoded paths and its token scores the model's probabilities."""
    results = tagger.predict(sentences)
    assert [r.tags for r in results] == [[labels.items[i] for i in path] for path in paths]
    for result, row in zip(results, probs):
        scores = [t.score for t in result.tokens]
        np.testing.assert_allclose(scores, row[np.arange(len(scores)), labels.encode(result.tags)], atol=1e-5)


@pytest.fixture(scope="module")
def fitted() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build_model(CONFIG, len(WORDS), len(CHARS), len(LABELS))
    compile_model(model, learning_rate=0.03)
    inputs, labels = encode()
    for _ in range(4):
        model.fit(inputs, labels, batch_size=len(CORPUS), epochs=40, verbose=0)
        if tags(model, inputs) == GOLD:
            break
    return model


def test_model_reads_casing_and_ends_in_a_crf() -> None:
    model = build_model(CONFIG, len(WORDS), len(CHARS), len(LABELS))
    assert isinstance(model, CRFTagger) and is_crf(model)
    assert sorted(model.input_names) == ["casing_ids", "char_ids", "word_ids"]
    plain = build_model(CONFIG.model_copy(update={"output": "softmax", "char_features": "none"}), len(WORDS),
                        len(CHARS), len(LABELS))
    assert not is_crf(plain) and transition_scores(plain) is None
    assert sorted(plain.input_names) == ["casing_ids", "word_ids"]
    inputs, _ = encode(CONFIG.model_copy(update={"char_features": "none"}))
    assert inputs["casing_ids"][0, : len(TOKENS[0])].tolist() == casing_ids(TOKENS[0])
    # Casing reaches the prediction: the same word ids with another casing tag differently.
    other = {**inputs, "casing_ids": np.where(inputs["casing_ids"] > 0, 1, 0).astype(np.int32)}
    assert np.abs(predict_outputs(plain, other)[0] - predict_outputs(plain, inputs)[0]).max() > 1e-4


@pytest.mark.slow  # shares the fitted model
def test_crf_loss_is_the_paths_negative_log_likelihood_per_real_token(fitted) -> None:
    inputs, labels = encode()
    emissions = fitted(inputs, training=False)
    mask = inputs["word_ids"] != 0
    loss = float(fitted.crf_loss(inputs, tf.constant(labels), emissions))
    layer = fitted.get_layer("crf")
    log_lik = crf_log_likelihood(emissions, labels, mask, layer.transitions, layer.start, layer.end).numpy()
    assert loss == pytest.approx(-log_lik.sum() / mask.sum(), rel=1e-5)
    garbage = labels.copy()
    garbage[~mask] = len(LABELS) - 1
    assert float(fitted.crf_loss(inputs, tf.constant(garbage), emissions)) == pytest.approx(loss, rel=1e-6)
    # Marginals are probabilities at real positions.
    probs, _ = predict_outputs(fitted, inputs)
    np.testing.assert_allclose(probs.sum(-1)[mask], 1.0, atol=1e-5)


@pytest.mark.slow  # fits a model
def test_overfit_save_reload_and_tag_identically(fitted, tmp_path: Path) -> None:
    inputs, _ = encode()
    assert tags(fitted, inputs) == GOLD
    before_probs, before_emissions = predict_outputs(fitted, inputs)
    directory = save_model(fitted, tmp_path / "artifact", CONFIG)
    info = json.loads((directory / "model_config.json").read_text())
    assert info["output"] == "crf" and info["config"]["casing_features"] is True
    loaded = load_model(directory)
    assert isinstance(loaded, CRFTagger)
    assert loaded.optimizer.iterations.numpy() == fitted.optimizer.iterations.numpy() > 0
    probs, emissions = predict_outputs(loaded, inputs)
    np.testing.assert_allclose(probs, before_probs, atol=1e-6)
    np.testing.assert_allclose(emissions, before_emissions, atol=1e-6)
    np.testing.assert_array_equal(transition_scores(loaded).pairwise, transition_scores(fitted).pairwise)
    assert np.abs(transition_scores(fitted).pairwise).max() > 0.1  # the transitions did learn

    # The Tagger computes the casing from the raw words and decodes with the transitions.
    WORDS.save(directory / "words.json")
    CHARS.save(directory / "chars.json")
    LABELS.save(directory / "labels.json")
    meta = {"kind": "bilstm", "labels": LABELS.items, "entity": True, "constrained_decoding": True,
            "char_features": "cnn", "max_word_length": CONFIG.max_word_length, "casing_features": True,
            "output": "crf"}
    (directory / "tagger.json").write_text(json.dumps(meta))
    tagger = BiLSTMTagger(directory, device="cpu")
    results = tagger.predict(TOKENS, batch_size=3)
    assert [r.tags for r in results] == GOLD
    for result, row, words in zip(results, before_probs, TOKENS):
        scores = [t.score for t in result.tokens]
        np.testing.assert_allclose(scores, row[np.arange(len(words)), LABELS.encode(result.tags)], atol=1e-5)
    [text] = tagger.predict(["Grace Hopper left Oslo in May"])
    assert [(e.entity_group, e.word) for e in text.entities] == [("PER", "Grace Hopper"), ("LOC", "Oslo"),
                                                                  ("MISC", "May")]


def test_exported_artifact_tags_like_the_model(tmp_path: Path) -> None:
    from raytag.artifact import export
    from raytag.config import JobConfig, TrainConfig
    from raytag.tagger import load_tagger
    from tests.helpers import hand_prepared_corpus

    names = {"Ada": "B-PER", "Hopper": "I-PER", "Paris": "B-LOC"}
    rows = [["Ada", "Hopper", "visited", "Paris", "."], ["the", "EU", "met", "in", "PARIS"]]
    corpus = hand_prepared_corpus(tmp_path / "prepared", {"train": rows, "dev": rows}, lambda w: names.get(w, "O"))
    job = JobConfig(name="j", corpus={"format": "conll", "path": "x.conll"}, model=CONFIG,
                    train=TrainConfig(constrained_decoding=False))
    keras.utils.set_random_seed(3)
    model = build_model(CONFIG, len(corpus.words), len(corpus.chars), len(corpus.labels))
    layer = model.get_layer("crf")
    layer.transitions.assign(np.random.default_rng(0).normal(size=layer.transitions.shape))
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    model.save_weights(str(checkpoint / "weights.h5"))

    out = export(job, corpus, checkpoint, [], tmp_path / "artifact")
    meta = json.loads((out / "tagger.json").read_text())
    assert (meta["casing_features"], meta["output"], meta["constrained_decoding"]) == (True, "crf", False)
    # Unseen words and another casing than in training: the Tagger must encode them as training did.
    sentences = rows + [["ADA", "visited", "paris", "Zurich"]]
    inputs, _ = encode_batch([corpus.words.encode(s) for s in sentences], sentences, corpus.chars,
                             CONFIG.max_word_length, casing=True)
    probs, emissions = predict_outputs(model, inputs)
    paths = decode_outputs(probs, emissions, transition_scores(model), [len(s) for s in sentences],
                           corpus.labels.items, constrained=False)
    assert_tags_like_the_model(load_tagger(out, device="cpu"), sentences, probs, paths, corpus.labels)


def test_encoder_vectors_are_the_frozen_mean_of_a_words_pieces_for_seen_and_unseen_words() -> None:
    from raytag.models.word_pieces import WordPieces, bundled_piece_vectors

    config = CONFIG.model_copy(update={"encoder_vectors": True, "max_word_pieces": 3})
    model = build_model(config, len(WORDS), len(CHARS), len(LABELS))
    assert sorted(model.input_names) == ["casing_ids", "char_ids", "piece_ids", "word_ids"]
    layer = model.get_layer("word_pieces")
    assert not layer.trainable_weights and layer.non_trainable_weights  # frozen, but saved
    table = bundled_piece_vectors()
    pieces = WordPieces.bundled(config.max_word_pieces)
    # "Zurich" is not in the vocabulary; "Schwarzenegger" has more pieces than are kept.
    sentences = [["Paris", "Zurich", "Schwarzenegger"], ["paris"]]
    assert len(pieces.ids("Schwarzenegger")) == 3 and pieces.ids("Paris") == pieces.ids("paris")
    inputs, _ = encode_batch([WORDS.encode(s) for s in sentences], sentences, CHARS, config.max_word_length,
                             casing=True, pieces=pieces)
    assert inputs["piece_ids"].shape == (2, 3, 3) and (inputs["piece_ids"][1, 1:] == 0).all()
    vectors = layer(tf.constant(inputs["piece_ids"])).numpy()
    for i, sentence in enumerate(sentences):
        for j, word in enumerate(sentence):
            np.testing.assert_allclose(vectors[i, j], table[pieces.ids(word)].mean(axis=0), atol=1e-6)
    # Training moves every weight but the table.
    before = layer.table.get_weights()[0].copy()
    compile_model(model, learning_rate=0.05)
    batch, labels = encode_batch([WORDS.encode(s) for s in TOKENS], TOKENS, CHARS, config.max_word_length,
                                 [LABELS.encode(t) for t in GOLD], casing=True, pieces=pieces)
    embedding = model.get_layer("word_embedding").get_weights()[0].copy()
    model.fit(batch, labels, batch_size=len(TOKENS), epochs=2, verbose=0)
    np.testing.assert_array_equal(layer.table.get_weights()[0], before)
    assert np.abs(model.get_layer("word_embedding").get_weights()[0] - embedding).max() > 0


def test_exported_artifact_with_encoder_vectors_tags_like_the_model_without_the_encoder(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    from raytag.artifact import export
    from raytag.config import JobConfig, TrainConfig
    from raytag.models import subwords
    from raytag.models.word_pieces import TOKENIZER_FILE, WordPieces
    from raytag.tagger import load_tagger
    from tests.helpers import hand_prepared_corpus

    config = CONFIG.model_copy(update={"encoder_vectors": True})
    names = {"Ada": "B-PER", "Hopper": "I-PER", "Paris": "B-LOC"}
    rows = [["Ada", "Hopper", "visited", "Paris", "."], ["the", "EU", "met", "in", "PARIS"]]
    corpus = hand_prepared_corpus(tmp_path / "prepared", {"train": rows, "dev": rows}, lambda w: names.get(w, "O"))
    job = JobConfig(name="j", corpus={"format": "conll", "path": "x.conll"}, model=config, train=TrainConfig())
    keras.utils.set_random_seed(4)
    model = build_model(config, len(corpus.words), len(corpus.chars), len(corpus.labels))
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    model.save_weights(str(checkpoint / "weights.h5"))
    out = export(job, corpus, checkpoint, [], tmp_path / "artifact")
    meta = json.loads((out / "tagger.json").read_text())
    assert meta["encoder_vectors"] is True and (out / TOKENIZER_FILE).is_file()

    sentences = rows + [["Wolfgang", "visited", "Zurich", "Schwarzenegger"]]
    inputs, _ = encode_batch([corpus.words.encode(s) for s in sentences], sentences, corpus.chars,
                             config.max_word_length, casing=True, pieces=WordPieces.bundled(config.max_word_pieces))
    probs, emissions = predict_outputs(model, inputs)
    paths = decode_outputs(probs, emissions, transition_scores(model), [len(s) for s in sentences],
                           corpus.labels.items, constrained=True)

    # The artifact carries its tokenizer and table: tagging works with the encoder package gone.
    def gone() -> Path:
        raise FileNotFoundError("no encoder package")

    monkeypatch.setattr(subwords, "bundled_encoder_path", gone)
    assert_tags_like_the_model(load_tagger(out, device="cpu"), sentences, probs, paths, corpus.labels)

    # The model card's stock-TensorFlow recipe runs as printed on this artifact (chars, casing,
    # pieces, CRF) and scores like raytag: a CRF's SavedModel returns its emission scores.
    from raytag.model_card import render_card

    card = render_card({"name": "j", "version": 1, "kind": "bilstm", "labels": corpus.labels.items, "metrics": {},
                        "config": {}}, {str(p.relative_to(out)): p for p in out.rglob("*") if p.is_file()}, "/reg")
    code = card.split("With TensorFlow alone")[1].split("```python\n")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - the card's own snippet
    tokens = namespace["tokens"]
    expected, _ = encode_batch([corpus.words.encode(tokens)], [tokens], corpus.chars, config.max_word_length,
                               casing=True, pieces=WordPieces.load(out, config.max_word_pieces))
    np.testing.assert_allclose(namespace["scores"], predict_outputs(model, expected)[1][0], atol=1e-5)
