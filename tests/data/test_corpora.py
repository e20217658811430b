"""Full corpora through the Ray Data pipeline: counts must match the published ones."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raytag.config import load_job
from raytag.prepare import prepare

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.data


def test_gmb_ner_counts(ray_local, tmp_path):
    manifest = prepare(load_job(REPO / "jobs" / "gmb_ner.yaml"), tmp_path / "ner").manifest
    assert manifest["totals"] == {"sentences": 47_959, "tokens": 1_048_575}
    assert len(manifest["labels"]) == 17
    assert manifest["scheme"]["source"] == "iob2"
    train, test = manifest["splits"]["train"], manifest["splits"]["test"]
    assert (train["sentences"], test["sentences"]) == (43_163, 4_796)
    assert sum(sum(s["tags"].values()) for s in (train, test)) == 1_048_575
    assert train["tags"]["O"] + test["tags"]["O"] == 887_908
    assert manifest["vocab"]["words"] <= 35_000
    # No sentence lost tokens: the longest sentence keeps all 104.
    lengths = pq.read_table(tmp_path / "ner" / "splits", columns=["length"]).column("length").to_pylist()
    assert max(lengths) == 104 and sum(lengths) == 1_048_575


def test_gmb_pos_counts_and_same_split_as_ner(ray_local, tmp_path):
    manifest = prepare(load_job(REPO / "jobs" / "gmb_pos.yaml"), tmp_path / "pos").manifest
    assert manifest["totals"] == {"sentences": 47_959, "tokens": 1_048_575}
    assert len(manifest["labels"]) == 42
    assert manifest["scheme"] == {"source": "plain", "stored": "plain"}
    assert manifest["splits"]["test"]["sentences"] == 4_796


def test_conll2003_counts(ray_local, tmp_path, conll03_dir):
    job = load_job(REPO / "jobs" / "conll03_ner.yaml", [
        f"corpus.splits.{name}={conll03_dir / (name + '.txt')}" for name in ("train", "dev", "test")
    ])
    manifest = prepare(job, tmp_path / "conll").manifest
    sizes = {name: (s["sentences"], s["tokens"]) for name, s in manifest["splits"].items()}
    assert sizes == {"train": (14_041, 203_621), "dev": (3_250, 51_362), "test": (3_453, 46_435)}
    assert len(manifest["labels"]) == 9
    assert manifest["errors"]["skipped_sentences"] == 0
