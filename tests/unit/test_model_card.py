"""Model cards by kind: what each says about loading, data and limitations."""

from __future__ import annotations

import json
from pathlib import Path

from raytag.model_card import FEW_MENTIONS, render_card

REPORT = {"kind": "entity", "split": "test", "per_type": {
    "PER": {"precision": 0.9, "recall": 0.8, "f1": 0.847, "support": 420},
    "MISC": {"precision": 0.5, "recall": 0.2, "f1": 0.2857, "support": 12},
}}


def manifest(kind: str, **extra) -> dict:
    return {"name": "ner", "version": 3, "kind": kind, "labels": ["O", "B-PER", "I-PER"],
            "metrics": {"test_f1": 0.75}, "config": {}, "data_fingerprint": "fp", "created_at": "2026-01-01",
            "raytag_version": "0.1.0", **extra}


def files(tmp_path: Path, tagger: dict, *extra: str, report: dict | None = None) -> dict[str, Path]:
    out = {"tagger.json": tmp_path / "tagger.json"}
    out["tagger.json"].write_text(json.dumps(tagger))
    if report is not None:
        out["evaluation/report.json"] = tmp_path / "report.json"
        out["evaluation/report.json"].write_text(json.dumps(report))
    for rel in extra:
        out[rel] = tmp_path / "empty"
        out[rel].write_bytes(b"")
    return out


def test_bilstm_card_shows_the_stock_tensorflow_route_with_its_inputs(tmp_path):
    tagger = {"kind": "bilstm", "entity": True, "char_features": "cnn", "max_word_length": 17}
    card = render_card(manifest("bilstm"), files(tmp_path, tagger, "saved_model/saved_model.pb"), "/reg")
    assert "load_tagger('ner@v3', registry_root='/reg')" in card
    assert 'tf.saved_model.load("artifact/saved_model")' in card
    assert "char_ids = np.zeros((1, len(tokens), 17), np.int32)" in card  # the artifact's own width
    assert "pipeline(" not in card and "subwords" not in card
    assert "character features still see their spelling" in card.split("## Limitations")[1]
    word_only = render_card(manifest("bilstm"), files(tmp_path, {**tagger, "char_features": "none"},
                                                      "saved_model/saved_model.pb"), "/reg")
    assert "char_ids" not in word_only and "word_ids" in word_only
    # An artifact written before SavedModels existed offers no route it does not have.
    assert "saved_model" not in render_card(manifest("bilstm"), files(tmp_path, tagger), "/reg")


def test_transformer_card_shows_the_hugging_face_pipeline(tmp_path):
    tagger = {"kind": "transformer", "entity": True, "max_length": 64, "stride": 8}
    card = render_card(manifest("transformer"), files(tmp_path, tagger, "model/config.json"), "s3://bucket/reg")
    assert 'pipeline("token-classification", model="artifact/model", aggregation_strategy="simple")' in card
    assert "registry_root='s3://bucket/reg'" in card
    assert "longer than 64 subwords" in card


def test_limitations_name_rare_and_weak_types_from_the_report(tmp_path):
    card = render_card(manifest("bilstm"), files(tmp_path, {"kind": "bilstm", "entity": True}, report=REPORT), "r")
    limitations = card.split("## Limitations")[1]
    assert f"Fewer than {FEW_MENTIONS} test mentions of MISC" in limitations
    assert "F1 below 0.5 for MISC" in limitations and "PER" not in limitations
    assert "| MISC | 0.5000 | 0.2000 | 0.2857 | 12 |" in card


def test_an_onnx_variant_card_says_what_it_was_exported_from(tmp_path):
    source = {"corpus": {"format": "conll", "path": "train.conll"}, "model": {"kind": "transformer"}}
    config = {"runtime": "onnx", "quantize": "int8", "opset": 17, "source": "ner@v2", "source_config": source}
    tagger = {"kind": "transformer", "runtime": "onnx", "entity": True, "max_length": 32}
    card = render_card(manifest("transformer", config=config, metrics={}),
                       files(tmp_path, tagger, "model.onnx", "tokenizer/tokenizer.json"), "r")
    assert "onnx export (opset 17, int8 weights) of `ner@v2`" in card
    assert "No metrics were recorded" in card and "`train.conll`" in card
    assert "pipeline(" not in card  # the variant has no save_pretrained directory


def test_cli_prints_the_card_and_refuses_unknown_models(tmp_path):
    from typer.testing import CliRunner

    from raytag.cli import app
    from raytag.registry import Registry

    artifact = tmp_path / "artifact"
    artifact.mkdir()
    files(artifact, {"kind": "bilstm", "entity": True})
    root = str(tmp_path / "registry")
    Registry(root).publish("ner", artifact, kind="bilstm", labels=["O", "B-LOC"], metrics={"test_f1": 0.625},
                           config={}, data_fingerprint="fp")
    shown = CliRunner().invoke(app, ["models", "card", "ner@latest", "--registry", root])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == Registry(root).card("ner") and "| f1 |  | 0.6250 |" in shown.stdout
    missing = CliRunner().invoke(app, ["models", "card", "nope", "--registry", root])
    assert missing.exit_code == 2 and missing.stderr.startswith("error: ") and "nope" in missing.stderr
