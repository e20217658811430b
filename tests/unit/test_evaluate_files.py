"""Evaluating taggers on labelled files and robustness reports (no Ray, no prepared corpus)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from raytag.corpus.readers import ReaderOptions, read_corpus
from raytag.evaluate import evaluation_report
from raytag.evaluate_files import (
    EvaluationError,
    evaluate_files,
    infer_format,
    parse_label_map,
    read_labelled,
    reader_options,
)
from raytag.perturb import PerturbError
from raytag.robustness import format_robustness, robustness_report
from tests.helpers import CONLL, GMB, NER_LABELS, publish_bilstm, write

LOCATIONS = ("Paris", "Lima", "Oslo")


class RuleTagger:
    """Case-sensitive stand-in for a model: known cities are LOC, other capitalised words PER."""

    labels = NER_LABELS
    entity = True
    kind = "rule"

    def predict(self, inputs, batch_size=64):
        out = []
        for tokens in inputs:
            tags, prev = [], None
            for token in tokens:
                if token in LOCATIONS:
                    kind = "LOC"
                elif token[:1].isupper():
                    kind = "PER"
                else:
                    kind = None
                tags.append("O" if kind is None else f"{'I' if prev == kind else 'B'}-{kind}")
                prev = kind
            out.append(SimpleNamespace(tags=tags))
        return out


def sentences(n: int, seed: int = 0, orgs: bool = False) -> list[tuple[list[str], list[str]]]:
    """Sentences the rule tagger gets right, optionally with ORG entities it cannot know."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tokens, tags = [], []
        for _ in range(rng.randint(2, 9)):
            roll = rng.random()
            if roll < 0.2:
                tokens.append(rng.choice(LOCATIONS))
                tags.append("B-LOC")
                tokens.append(rng.choice(["said", "and", "."]))  # keeps adjacent entities apart
                tags.append("O")
            elif roll < 0.4:
                for j in range(rng.randint(1, 2)):
                    tokens.append(rng.choice(["Ada", "Grace", "Turing", "Hopper"]))
                    tags.append("B-PER" if j == 0 else "I-PER")
                tokens.append("met")
                tags.append("O")
            elif orgs and roll < 0.5:
                tokens.append("acme")
                tags.append("B-ORG")
            else:
                tokens.append(rng.choice(["the", "report", "of", "in", "visited", "42"]))
                tags.append("O")
        out.append((tokens, tags))
    return out


def to_conll(data, bioes: bool = False) -> str:
    lines = []
    for tokens, tags in data:
        for i, (t, g) in enumerate(zip(tokens, tags)):
            if bioes and g != "O":
                ends = i + 1 == len(tags) or not tags[i + 1].startswith("I-")
                g = {("B", True): "S", ("B", False): "B", ("I", True): "E", ("I", False): "I"}[(g[0], ends)] + g[1:]
            lines.append(f"{t} NN {g}")
        lines.append("")
    return "\n".join(lines) + "\n"


def to_jsonl(data) -> str:
    return "".join(json.dumps({"tokens": t, "tags": g}) + "\n" for t, g in data)


@pytest.fixture(scope="module")
def bilstm(tmp_path_factory):
    from raytag.tagger import load_tagger

    registry = tmp_path_factory.mktemp("registry")
    publish_bilstm(registry, "tiny")
    return str(registry), load_tagger("tiny", str(registry))


def direct_report(tagger, path: Path, options: ReaderOptions, org_to_o: bool = False) -> dict:
    """What scoring the same sentences straight from the reader gives (what a prepared split holds)."""
    read = read_corpus(str(path), options)
    gold = [[("O" if org_to_o and g.endswith("-ORG") else g) for g in s.tags] for s in read.sentences]
    predicted = [s.tags for s in tagger.predict([s.tokens for s in read.sentences], batch_size=256)]
    return evaluation_report(gold, predicted, entity=tagger.entity)


def core(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("files", "model", "label_map", "robustness")}


def test_file_report_equals_direct_scoring_across_formats_and_schemes(tmp_path):
    data = sentences(40, seed=1, orgs=True)
    conll = write(tmp_path, "a.conll", to_conll(data))
    tagger = RuleTagger()
    report = evaluate_files(tagger, [conll], label_map={"ORG": "O"})
    expected = direct_report(tagger, conll, ReaderOptions("conll"), org_to_o=True)
    assert core(report) == expected
    assert report["score"] == pytest.approx(1.0)  # ORG mapped away, the rest is what the rules find
    # The same data as BIOES CoNLL and as JSONL is converted to the same IOB2 and scores the same.
    bioes = write(tmp_path, "b.txt", to_conll(data, bioes=True))
    jsonl = write(tmp_path, "c.jsonl", to_jsonl(data))
    for path in (bioes, jsonl):
        assert core(evaluate_files(tagger, [path], label_map={"ORG": "O"})) == expected
    assert evaluate_files(tagger, [bioes], label_map={"ORG": "O"})["files"][0]["scheme"] == "bioes"
    # Several files are concatenated in order.
    both = evaluate_files(tagger, [conll, jsonl], label_map={"ORG": "O"})
    assert both["num_sentences"] == 80 and [f["format"] for f in both["files"]] == ["conll", "jsonl"]


def test_bilstm_file_evaluation_writes_outputs_and_matches_direct_scoring(tmp_path, bilstm, monkeypatch):
    import raytag.tagger

    registry, tagger = bilstm
    loaded = []

    def load_once(ref, registry_root=None):
        # The fixture already loaded this very registry entry; loading a model costs seconds.
        loaded.append((ref, registry_root))
        return tagger

    monkeypatch.setattr(raytag.tagger, "load_tagger", load_once)
    path = write(tmp_path, "d.conll", to_conll(sentences(25, seed=2)))
    report = evaluate_files("tiny", [path], tmp_path / "out", registry_root=registry, perturb="case,ocr", seed=3)
    assert loaded == [("tiny", registry)]
    assert core(report) == direct_report(tagger, path, ReaderOptions("conll"))
    assert report["model"] == "tiny" and report["files"][0]["sentences"] == 25
    assert set(report["robustness"]["kinds"]) == {"case", "ocr"}
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    text = (tmp_path / "out" / "report.txt").read_text()
    assert "micro avg" in text and "robustness: rate 0.1" in text and "\nocr " in text
    assert (tmp_path / "out" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_labels_are_named_with_their_first_location(tmp_path):
    path = write(tmp_path, "f.conll", CONLL)
    with pytest.raises(EvaluationError) as err:
        evaluate_files(RuleTagger(), [path])
    message = str(err.value)
    assert "'B-ORG' (1 tokens, first at" in message and "f.conll:3" in message
    assert "'B-MISC'" in message and "f.conll:5" in message
    assert "'B-PER'" not in message.split("Model labels")[0]
    # Mapping the unknown types onto model types (or O) makes the file score.
    report = evaluate_files(RuleTagger(), [path], label_map="ORG=LOC,MISC=O")
    assert report["per_type"]["LOC"]["support"] == 2 and "ORG" not in report["per_type"]


def test_type_and_full_tag_label_maps_on_gmb_csv(tmp_path):
    path = write(tmp_path, "g.csv", GMB)
    assert infer_format(path) == "gmb_csv"
    mapping = {"geo": "LOC", "gpe": "LOC", "B-per": "B-PER", "I-per": "I-PER"}
    report = evaluate_files(RuleTagger(), [path], label_map=mapping)
    assert report["per_type"]["LOC"]["support"] == 2 and report["per_type"]["PER"]["support"] == 1
    assert report["label_map"] == mapping
    # "Mr. Bush" is one PER for the rules too; "London" is not a known city, so it is a wrong PER.
    assert report["per_type"]["PER"]["recall"] == 1.0 and report["per_type"]["LOC"]["recall"] == 0.0


def test_label_map_parsing_and_bad_targets(tmp_path):
    assert parse_label_map("PERSON=PER, MISC=O") == {"PERSON": "PER", "MISC": "O"}
    mapping_file = write(tmp_path, "m.json", json.dumps({"B-PERSON": "B-PER"}))
    assert parse_label_map(str(mapping_file)) == {"B-PERSON": "B-PER"}
    with pytest.raises(EvaluationError, match="'PERSON' is not of the form"):
        parse_label_map("PERSON")
    with pytest.raises(EvaluationError, match=r"bad\.json:1: label map is not valid JSON"):
        parse_label_map(str(write(tmp_path, "bad.json", "{oops")))
    path = write(tmp_path, "f.conll", CONLL)
    # A type maps to a type, not to a prefixed tag; targets must exist in the model.
    with pytest.raises(EvaluationError, match="targets unknown to the model: ORG=B-LOC, MISC=MISC"):
        evaluate_files(RuleTagger(), [path], label_map={"ORG": "B-LOC", "MISC": "MISC"})


def test_reader_options_from_cli_values(tmp_path):
    path = write(tmp_path, "f.conll", CONLL)
    chunks = read_labelled([path], reader_options("conll", columns="word,pos,chunk,ner", tag_column="chunk"))
    assert chunks.tags[0] == ["B-NP", "B-VP", "B-NP", "I-NP", "O"]
    assert reader_options("conll", tag_column="-2").tag_column == -2
    names = ("a.jsonl.gz", "b.csv", "c.txt", "d.zip")
    assert [infer_format(p) for p in names] == ["jsonl", "gmb_csv", "conll", "conll"]
    with pytest.raises(PerturbError, match="unknown perturbation kind 'blur'"):
        evaluate_files(RuleTagger(), [path], perturb="case,blur")
    with pytest.raises(EvaluationError, match="unknown corpus format 'xml'"):
        reader_options("xml")


def test_robustness_report_scores_each_kind_against_clean():
    data = sentences(60, seed=4)
    tagger = RuleTagger()
    result = robustness_report(tagger, data, "case,keyboard,truncate-entities,typos", rate=1.0, seed=0)
    assert result["metric"] == "f1" and result["clean"]["score"] == pytest.approx(1.0)
    for kind, r in result["kinds"].items():
        assert r["drop"] == pytest.approx(result["clean"]["score"] - r["score"])
        assert r["perturbed_tokens"] > 0
        # Every kind breaks the case-sensitive exact-match rules somewhere at rate 1.
        assert r["drop"] > 0.1, kind
    # Truncated cities are no longer known cities: the rules call them PER.
    assert result["kinds"]["truncate-entities"]["recall"] < 0.8
    assert robustness_report(tagger, data, "all", rate=0.0)["kinds"]["ocr"]["drop"] == 0.0
    lowered = robustness_report(tagger, data, ["case"], rate=1.0, unit="sentence", seed=1)
    assert lowered["kinds"]["case"]["score"] < result["clean"]["score"]
    table = format_robustness(result).splitlines()
    assert table[3].startswith("clean") and table[4].split()[0] == "case" and len(table) == 8
