"""Transformer tagger pieces without Ray: the subword stage, word-level prediction, artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from raytag.config import TransformerConfig
from raytag.models import transformer
from raytag.models.subwords import IGNORE_INDEX, tiny_wordpiece_tokenizer
from raytag.subword_stage import encode_windows
from raytag.tagger import TAGGER_FILE, TRANSFORMER_MODEL_DIR, TransformerTagger, load_tagger
from raytag.train.hf_loop import history_from_checkpoint, training_features
from tests.helpers import tiny_encoder

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SENTENCES = [["Ada", "lives", "in", "Paris", "."], ["Grace", "Hopper", "left", "Oslo", "."]]
TAGS = [[1, 0, 0, 3, 0], [1, 2, 0, 3, 0]]


def test_encode_windows_labels_every_word_once_across_windows() -> None:
    # "supercalifragilistic" is not in the vocabulary: it splits into one subword per character.
    tokenizer = tiny_wordpiece_tokenizer(["ada", "lives", "in", "paris"])
    words = ["Ada", "supercalifragilistic", "lives", "in", "Paris", "."] * 3
    tags = [1, 0, 0, 0, 3, 0] * 3
    batch = pa.table({"tokens": [words, ["Ada"]], "tag_ids": [tags, [1]]})
    out = encode_windows(batch, tokenizer, max_length=24, stride=1, label_all_subwords=False)
    counts = out.column("window_count").to_pylist()
    assert counts[0] > 1 and counts[1] == 1
    windows = out.column("window_input_ids").to_pylist()[0]
    labels = out.column("window_labels").to_pylist()[0]
    assert all(len(w) <= 24 for w in windows)
    # Each word's label appears exactly once over all windows, in word order.
    seen = [label for window in labels for label in window if label != IGNORE_INDEX]
    firsts = out.column("window_first_word").to_pylist()[0]
    lasts = out.column("window_last_word").to_pylist()[0]
    assert firsts[0] == 0 and lasts[-1] == len(words)
    assert all(b == a for a, b in zip(lasts, firsts[1:]))  # owned runs partition the sentence
    assert seen == tags


def test_label_all_subwords_repeats_the_word_label() -> None:
    tokenizer = tiny_wordpiece_tokenizer(["in"])
    batch = pa.table({"tokens": [["Oslo", "in"]], "tag_ids": [[3, 0]]})
    out = encode_windows(batch, tokenizer, max_length=32, stride=0, label_all_subwords=True)
    labels = out.column("window_labels").to_pylist()[0][0]
    assert labels == [IGNORE_INDEX, 3, 3, 3, 3, 0, IGNORE_INDEX]  # o ##s ##l ##o in


def test_training_features_come_one_per_window_in_a_stable_order() -> None:
    batch = pa.table({
        "window_input_ids": pa.array([[[2, 7, 3], [2, 8, 9, 3]], [[2, 5, 3]]], type=pa.list_(pa.list_(pa.int32()))),
        "window_labels": pa.array([[[-100, 1, -100], [-100, 0, 0, -100]], [[-100, 2, -100]]],
                                  type=pa.list_(pa.list_(pa.int32()))),
    })
    features = training_features([batch.slice(1), batch.slice(0, 1)])
    assert [f["input_ids"] for f in features] == [[2, 5, 3], [2, 7, 3], [2, 8, 9, 3]]


def _fit(model, batch: dict, steps: int) -> None:
    """Overfit ``model`` on one padded batch (seeded AdamW, lr 0.02)."""
    import torch

    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()


def _overfit(tmp_path: Path):
    encoder = tiny_encoder(tmp_path / "encoder", ["ada", "lives", "in", "paris", "grace", "hopper", "left", "oslo"])
    config = TransformerConfig(encoder=str(encoder), max_length=8, stride=1)
    tokenizer = transformer.load_tokenizer(encoder)
    model = transformer.build_model(config, LABELS)
    from raytag.models.subwords import encode_sentences

    windows = encode_sentences(tokenizer, SENTENCES, TAGS, config.max_length, config.stride)
    batch = transformer.pad_features([{"input_ids": w.input_ids, "labels": w.labels} for w in windows], 0)
    _fit(model, batch, steps=80)
    return config, tokenizer, model


def test_overfit_save_reload_identical_predictions(tmp_path) -> None:
    config, tokenizer, model = _overfit(tmp_path)
    # Sentences longer than max_length=8: predicted through windows.
    expected = transformer.word_probabilities(model, tokenizer, SENTENCES, config.max_length, config.stride)
    assert [list(p.argmax(-1)) for p in expected] == TAGS

    artifact = tmp_path / "artifact"
    model.save_pretrained(str(artifact / TRANSFORMER_MODEL_DIR))
    tokenizer.save_pretrained(str(artifact / TRANSFORMER_MODEL_DIR))
    meta = {"kind": "transformer", "labels": LABELS, "entity": True, "constrained_decoding": True,
            "max_length": config.max_length, "stride": config.stride}
    (artifact / TAGGER_FILE).write_text(json.dumps(meta))
    tagger = load_tagger(artifact)
    assert isinstance(tagger, TransformerTagger)
    got = transformer.word_probabilities(tagger.model, tagger.tokenizer, SENTENCES, config.max_length, config.stride)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    result = tagger.predict(["Grace Hopper left Oslo.", "", "Ada lives in Paris ."])
    assert [(e.entity_group, e.word, e.start, e.end) for e in result[0].entities] == [
        ("PER", "Grace Hopper", 0, 12), ("LOC", "Oslo", 18, 22)]
    assert result[1].tokens == [] and result[1].entities == []
    assert result[2].tags == ["B-PER", "O", "O", "B-LOC", "O"]
    assert all(0.0 < e.score <= 1.0 for e in result[0].entities)
    assert [t.tags for t in tagger.predict([SENTENCES[1]])] == [["B-PER", "I-PER", "O", "B-LOC", "O"]]

    from transformers import pipeline

    config_json = json.loads((artifact / TRANSFORMER_MODEL_DIR / "config.json").read_text())
    assert config_json["id2label"]["1"] == "B-PER"
    hf = pipeline("token-classification", model=str(artifact / TRANSFORMER_MODEL_DIR),
                  aggregation_strategy="simple", device="cpu")
    assert [s["entity_group"] for s in hf("grace hopper left oslo .")] == ["PER", "LOC"]


def test_tagger_refuses_mismatched_labels(tmp_path) -> None:
    config, tokenizer, model = _overfit(tmp_path)
    artifact = tmp_path / "artifact"
    model.save_pretrained(str(artifact / TRANSFORMER_MODEL_DIR))
    tokenizer.save_pretrained(str(artifact / TRANSFORMER_MODEL_DIR))
    meta = {"kind": "transformer", "labels": ["O", "B-X", "I-X", "B-Y", "I-Y"], "entity": True,
            "max_length": 8, "stride": 1}
    (artifact / TAGGER_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="differ"):
        load_tagger(artifact)


def test_history_from_checkpoint_merges_loss_and_dev_metrics(tmp_path) -> None:
    state = {"log_history": [
        {"loss": 1.5, "epoch": 1.0, "step": 10}, {"dev_f1": 0.5, "dev_score": 0.5, "epoch": 1.0, "step": 10},
        {"loss": 0.7, "epoch": 2.0, "step": 20}, {"dev_f1": 0.8, "dev_score": 0.8, "epoch": 2.0, "step": 20},
        {"train_loss": 1.1, "train_runtime": 3.0, "epoch": 2.0, "step": 20},
    ]}
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "trainer_state.json").write_text(json.dumps(state))
    assert history_from_checkpoint(tmp_path) == [
        {"step": 10, "epoch": 1.0, "train_loss": 1.5, "dev_f1": 0.5, "dev_score": 0.5},
        {"step": 20, "epoch": 2.0, "train_loss": 0.7, "dev_f1": 0.8, "dev_score": 0.8},
    ]


def test_resolve_encoder_finds_the_bundled_minilm() -> None:
    path = Path(transformer.resolve_encoder("bundled"))
    assert (path / "config.json").is_file()
    assert transformer.resolve_encoder("/some/dir") == "/some/dir"
    assert transformer.load_tokenizer(path).is_fast


def test_casing_token_types() -> None:
    from raytag.models.casing import TOKEN_TYPES, token_type

    names = {w: TOKEN_TYPES[token_type(w)] for w in
             ["bill", "Bill", "I", "EU", "NEW-YORK", "iPhone", "McDonald", "1996", "3-0", ",", "", "U.S.", "G7", "日本"]}
    assert names == {"bill": "other", "Bill": "title", "I": "title", "EU": "upper", "NEW-YORK": "upper",
                     "iPhone": "mixed", "McDonald": "mixed", "1996": "numeric", "3-0": "numeric", ",": "other",
                     "": "other", "U.S.": "upper", "G7": "numeric", "日本": "other"}


def test_casing_windows_carry_each_words_class_on_all_its_subwords() -> None:
    from raytag.models.subwords import encode_sentences

    tokenizer = tiny_wordpiece_tokenizer(["bill"])
    plain = encode_sentences(tokenizer, [["Bill", "OSLO", "paid"]], None, 32, 0)
    cased = encode_sentences(tokenizer, [["Bill", "OSLO", "paid"]], None, 32, 0, casing=True)
    assert plain[0].token_type_ids is None and "token_type_ids" not in plain[0].as_features()
    # [CLS] bill o ##s ##l ##o p ##a ##i ##d [SEP]
    assert cased[0].token_type_ids == [0, 1, 2, 2, 2, 2, 0, 0, 0, 0, 0]
    assert cased[0].input_ids == plain[0].input_ids


def test_casing_model_tells_words_apart_by_case_only_and_reloads(tmp_path) -> None:
    """The uncased tokenizer sees "bill" twice; only the casing input separates the name from the noun."""
    from raytag.models.subwords import encode_sentences

    sentences = [["Bill", "paid", "the", "bill"], ["the", "bill", "for", "Bill"]]
    tags = [[1, 0, 0, 0], [0, 0, 0, 1]]
    encoder = tiny_encoder(tmp_path / "encoder", ["bill", "paid", "the", "for"])
    config = TransformerConfig(encoder=str(encoder), max_length=16, stride=1, casing=True)
    tokenizer = transformer.load_tokenizer(encoder)
    model = transformer.build_model(config, LABELS)
    assert model.config.type_vocab_size == 5
    windows = encode_sentences(tokenizer, sentences, tags, config.max_length, config.stride, casing=True)
    batch = transformer.pad_features([w.as_features() for w in windows], 0)
    assert "token_type_ids" in batch
    _fit(model, batch, steps=60)
    expected = transformer.word_probabilities(model, tokenizer, sentences, 16, 1, casing=True)
    assert [list(p.argmax(-1)) for p in expected] == tags

    artifact = tmp_path / "artifact"
    model.save_pretrained(str(artifact / TRANSFORMER_MODEL_DIR))
    tokenizer.save_pretrained(str(artifact / TRANSFORMER_MODEL_DIR))
    meta = {"kind": "transformer", "labels": LABELS, "entity": True, "constrained_decoding": True,
            "max_length": 16, "stride": 1, "casing": True}
    (artifact / TAGGER_FILE).write_text(json.dumps(meta))
    tagger = load_tagger(artifact)
    assert [t.tags for t in tagger.predict(["Bill paid the bill", "the bill for Bill"])] == [
        ["B-PER", "O", "O", "O"], ["O", "O", "O", "B-PER"]]
    got = transformer.word_probabilities(tagger.model, tagger.tokenizer, sentences, 16, 1, casing=True)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    from transformers import pipeline

    # A plain pipeline loads it too (type_vocab_size 5) and runs; it sends type 0, so no casing signal.
    hf = pipeline("token-classification", model=str(artifact / TRANSFORMER_MODEL_DIR), device="cpu")
    assert isinstance(hf("bill paid the bill"), list) and hf.model.config.type_vocab_size == 5

    from raytag.onnx_export import export_onnx

    onnx_tagger = load_tagger(export_onnx(artifact, tmp_path / "onnx"))
    assert [t.tags for t in onnx_tagger.predict(["Bill paid the bill"])] == [["B-PER", "O", "O", "O"]]
    for a, b in zip(expected, onnx_tagger.word_probabilities(sentences)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_casing_needs_token_type_embeddings(tmp_path) -> None:
    from transformers import DistilBertConfig, DistilBertModel

    directory = tmp_path / "distil"
    DistilBertModel(DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32)).save_pretrained(
        str(directory))
    with pytest.raises(ValueError, match="token type embeddings"):
        transformer.build_model(TransformerConfig(encoder=str(directory), casing=True), LABELS)
