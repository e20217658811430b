"""Transformer fine-tuning on Ray Train (HF Trainer in TorchTrainer), recovery, artifact, Tagger API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raytag.artifact import train_and_register
from raytag.config import CorpusConfig, JobConfig, RegistryConfig, SplitConfig, TrainConfig, TransformerConfig
from raytag.corpus.prepared import PreparedCorpus
from raytag.prepare import prepare
from raytag.registry import Registry
from raytag.tagger import load_tagger
from raytag.train.seams import Fault, Seams
from tests.helpers import synthetic_conll, tiny_encoder, write

pytestmark = pytest.mark.slow  # trains models on Ray Train

OVERFIT = "\n".join(
    ["Ada B-PER\nlives O\nin O\nParis B-LOC\n. O\n"] * 24 + ["Grace B-PER\nHopper I-PER\nleft O\nOslo B-LOC\n"] * 24
)


def _job(tmp: Path, name: str, encoder: Path, corpus_path: Path, **train) -> JobConfig:
    return JobConfig(
        name=name, workdir=str(tmp / "runs"),
        corpus=CorpusConfig(format="conll", path=str(corpus_path)),
        split=SplitConfig(ratios={"train": 0.8, "dev": 0.1, "test": 0.1}),
        # A 12-subword window: the synthetic sentences are longer, so training and
        # evaluation go through several windows per sentence.
        model=TransformerConfig(encoder=str(encoder), max_length=12, stride=2, warmup_ratio=0.0),
        train=TrainConfig(**{"batch_size": 8, "learning_rate": 5e-3, "cpus_per_worker": 1, **train}),
        registry=RegistryConfig(root=str(tmp / "registry")),
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("transformer")
    corpus_path = write(tmp, "c.conll", synthetic_conll(120, seed=3))
    words = [line.split()[0] for line in corpus_path.read_text().splitlines() if line.strip()]
    encoder = tiny_encoder(tmp / "encoder", sorted(set(words))[:50])
    prepared = prepare(_job(tmp, "prep", encoder, corpus_path), tmp / "prepared").directory
    return tmp, encoder, corpus_path, prepared


def test_prepare_adds_windows_and_the_tokenizer(setup):
    _, _, _, prepared = setup
    corpus = PreparedCorpus(prepared)
    table = corpus.table("train", columns=["tokens", "window_input_ids", "window_labels", "window_count"])
    counts = table.column("window_count").to_pylist()
    assert max(counts) > 1, "no sentence needed more than one window at max_length=12"
    for ids in table.column("window_input_ids").to_pylist():
        assert all(len(w) <= 12 for w in ids)
    labelled = sum(sum(t != -100 for t in w) for ws in table.column("window_labels").to_pylist() for w in ws)
    assert labelled == sum(len(t) for t in table.column("tokens").to_pylist())  # every word labelled once
    assert (prepared / "tokenizer" / "tokenizer.json").is_file()
    assert corpus.manifest["stages"]["subwords"]["max_length"] == 12


def test_two_workers_recover_from_a_dead_worker_and_register(setup, tmp_path):
    tmp, encoder, corpus_path, prepared = setup
    job = _job(tmp_path, "two", encoder, corpus_path, num_workers=2, epochs=2, max_steps_per_epoch=4, max_failures=1)
    marker = tmp_path / "killed"
    heard = []

    class Listener:
        def run_started(self, run):
            pass

        def epoch_ended(self, report):
            heard.append(report)

    version = train_and_register(job, prepared, seams=Seams(fault=Fault(step=5, rank=1, marker=str(marker))),
                                 listeners=[Listener()])
    assert marker.exists(), "the injected failure never happened"
    # The driver heard both epochs (the Trainer's step and loss made our epoch and train_loss).
    assert [(r.epoch, r.epochs) for r in heard] == [(1, 2), (2, 2)]
    assert all(r.train_loss is not None and "dev_f1" in r.metrics for r in heard)
    artifact = Registry(job.registry.root).fetch("two")
    history = json.loads((artifact / "history.json").read_text())
    assert [h["step"] for h in history] == [4, 8]  # step 5 died; the restart resumed from step 4
    assert {"dev_f1", "dev_precision", "dev_recall"} <= set(version.metrics)
    assert "test_f1" in version.metrics and version.kind == "transformer"
    config = json.loads((artifact / "model" / "config.json").read_text())
    labels = PreparedCorpus(prepared).labels.items
    assert [config["id2label"][str(i)] for i in range(len(labels))] == labels
    assert (artifact / "curves.png").stat().st_size > 0


def test_overfit_save_reload_identical_predictions_and_hf_pipeline(ray_local, tmp_path, setup):
    _, encoder_dir, _, _ = setup
    path = write(tmp_path, "o.conll", OVERFIT)
    encoder = tiny_encoder(tmp_path / "enc", ["ada", "lives", "in", "paris", "grace", "hopper", "left", "oslo"])
    job = _job(tmp_path, "overfit", encoder, path, num_workers=1, cpus_per_worker=2, epochs=12, batch_size=8,
               learning_rate=1e-2)
    job = job.model_copy(update={"model": job.model.model_copy(update={"max_length": 32})})
    directory = prepare(job, tmp_path / "prepared").directory
    version = train_and_register(job, directory)
    assert version.metrics["dev_f1"] == 1.0 and version.metrics["test_f1"] == 1.0

    texts = ["Grace Hopper left Oslo .", "Ada lives in Paris ."]
    first = [s.to_dict() for s in load_tagger("overfit", job.registry.root).predict(texts)]
    again = [s.to_dict() for s in load_tagger("overfit@v1", job.registry.root).predict(texts)]
    assert first == again
    assert [e["entity_group"] for e in first[0]["entities"]] == ["PER", "LOC"]
    assert first[0]["entities"][0]["word"] == "Grace Hopper"
    assert first[0]["entities"][0]["start"] == 0 and first[0]["entities"][0]["end"] == 12

    from transformers import pipeline

    artifact = Registry(job.registry.root).fetch("overfit")
    tagger = pipeline("token-classification", model=str(artifact / "model"), aggregation_strategy="simple",
                      device="cpu")
    spans = tagger("grace hopper left oslo .")
    assert [s["entity_group"] for s in spans] == ["PER", "LOC"]

    # A text far longer than the 32-subword window: every word is still tagged, and
    # spans index the raw text. (Positions past those seen in training may tag differently.)
    long_text = " ".join(["Ada lives in Paris ."] * 20)
    result = load_tagger("overfit", job.registry.root).predict([long_text])[0]
    assert len(result.tokens) == 100
    assert [t.text for t in result.tokens[:5]] == ["Ada", "lives", "in", "Paris", "."]
    assert [(e.entity_group, e.word) for e in result.entities[:2]] == [("PER", "Ada"), ("LOC", "Paris")]
    assert all(long_text[e.start : e.end] == e.word for e in result.entities)
