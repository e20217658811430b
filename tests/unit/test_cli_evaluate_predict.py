"""`raytag evaluate` on labelled files and `raytag predict` without Ray (texts, and batch input errors)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from raytag.cli import app
from raytag.evaluate_files import evaluate_files
from tests.helpers import publish_bilstm, synthetic_conll, write

runner = CliRunner()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    publish_bilstm(root, "tiny")
    return str(root)


def _invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.slow  # loads and runs the tagger several times (over 10 s on 2 busy cores)
def test_evaluate_labelled_files_with_a_label_map(registry, tmp_path):
    # The tiny tagger knows PER and LOC: ORG must be mapped away.
    a = write(tmp_path, "a.conll", synthetic_conll(12, seed=1))
    b = write(tmp_path, "b.conll", synthetic_conll(8, seed=2))
    out = tmp_path / "report"
    result = _invoke("evaluate", "tiny", str(tmp_path / "*.conll"), "--registry", registry, "--label-map", "ORG=O",
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "report.json").read_text())
    expected = evaluate_files("tiny", [a, b], registry_root=registry, label_map={"ORG": "O"})
    assert saved["num_sentences"] == 20 == expected["num_sentences"]
    assert saved["score"] == pytest.approx(expected["score"])
    assert [f["sentences"] for f in saved["files"]] == [12, 8]
    assert f"{saved['score']:.4f}" in result.output
    assert f"report written to {out / 'report.txt'} (with report.json and confusion.png)" in result.output
    assert (out / "confusion.png").is_file()


def test_evaluate_without_a_map_names_the_unknown_label_and_where(registry, tmp_path):
    path = write(tmp_path, "a.conll", "Acme NNP B-NP B-ORG\nsaid NN B-NP O\n")
    result = _invoke("evaluate", "tiny", str(path), "--registry", registry, "--out", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert "error: labels the model does not know: 'B-ORG' (1 tokens, first at" in result.output
    assert f"{path}:1" in result.output


@pytest.mark.slow  # loads and runs the tagger several times (over 10 s on 2 busy cores)
def test_evaluate_columns_by_name_and_perturbations(registry, tmp_path):
    path = write(tmp_path, "a.txt", synthetic_conll(10, seed=3).replace("-ORG", "-LOC"))
    out = tmp_path / "r"
    result = _invoke("evaluate", "tiny", str(path), "--registry", registry, "--format", "conll",
                     "--columns", "word,pos,chunk,ner", "--tag-column", "ner", "--perturb", "case,typos",
                     "--perturb-rate", "0.5", "--seed", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report["robustness"]["kinds"]) == {"case", "typos"}
    assert "typos" in result.output and "typos" in (out / "report.txt").read_text()
    # The chunk column holds no entity tags the model knows, so naming it must fail.
    wrong = _invoke("evaluate", "tiny", str(path), "--registry", registry, "--format", "conll",
                    "--columns", "word,pos,chunk,ner", "--tag-column", "chunk", "--out", str(out / "x"))
    assert wrong.exit_code == 2 and "error:" in wrong.output


def test_evaluate_bad_perturbation_and_file_options_on_a_prepared_corpus(registry, tmp_path):
    path = write(tmp_path, "a.conll", synthetic_conll(3).replace("-ORG", "-LOC"))
    bad = _invoke("evaluate", "tiny", str(path), "--registry", registry, "--perturb", "sideways")
    assert bad.exit_code == 2 and "sideways" in bad.output
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "manifest.json").write_text("{}")
    mixed = _invoke("evaluate", "tiny", str(prepared), "--registry", registry, "--perturb", "case")
    assert mixed.exit_code == 2
    assert "is a prepared corpus: --format, --columns" in mixed.output


@pytest.mark.slow  # loads and runs the tagger several times (over 10 s on 2 busy cores)
def test_predict_without_out_still_tags_texts(registry):
    result = _invoke("predict", "tiny", "Ada lives in Paris", "hello", "--registry", registry, "--tokens")
    assert result.exit_code == 0, result.output
    decoder = json.JSONDecoder()
    text, objects = result.output.strip(), []
    while text:
        obj, end = decoder.raw_decode(text)
        objects.append(obj)
        text = text[end:].strip()
    assert [o["text"] for o in objects] == ["Ada lives in Paris", "hello"]
    assert [len(o["tokens"]) for o in objects] == [4, 1]


def test_predict_batch_input_errors_end_before_ray(registry, tmp_path):
    # Ray is refused in unit tests: each of these must fail on the driver first.
    missing = _invoke("predict", "tiny", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o"), "--registry", registry)
    assert missing.exit_code == 2 and "none.txt: no such file" in missing.output
    text = write(tmp_path, "in.txt", "a\n")
    unknown = _invoke("predict", "nobody", str(text), "--out", str(tmp_path / "o"), "--registry", registry)
    assert unknown.exit_code == 2 and "error:" in unknown.output and "nobody" in unknown.output
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.jsonl").write_text("{}\n")
    busy = _invoke("predict", "tiny", str(text), "--out", str(full), "--registry", registry)
    assert busy.exit_code == 2 and "output directory is not empty" in busy.output
    fmt = _invoke("predict", "tiny", str(text), "--out", str(tmp_path / "o2"), "--format", "xml", "--registry", registry)
    assert fmt.exit_code == 2 and "unknown input format 'xml'" in fmt.output
