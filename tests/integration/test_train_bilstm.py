"""BiLSTM training on Ray Train (2 CPU workers), recovery, resume, registry and Tagger API."""

from __future__ import annotations

from pathlib import Path

import pytest

from raytag.artifact import train_and_register
from raytag.config import (
    AugmentConfig,
    BiLSTMConfig,
    CorpusConfig,
    JobConfig,
    PrepareConfig,
    RegistryConfig,
    SplitConfig,
    TrainConfig,
)
from raytag.prepare import prepare
from raytag.registry import Registry
from raytag.tagger import load_tagger
from raytag.tracking import MODEL_VERSION_TAG, RUN_KEY_TAG, find_runs, tracking_uri
from raytag.train.run import RunFinished, train
from raytag.train.seams import Fault, Seams
from tests.helpers import GMB, synthetic_conll, write

pytestmark = pytest.mark.slow  # trains models on Ray Train

SMALL = BiLSTMConfig(embedding_dim=16, lstm_units=16, lstm_layers=1, dropout=0.0)


def _job(tmp_path: Path, name: str, corpus: CorpusConfig, **train) -> JobConfig:
    return JobConfig(
        name=name, workdir=str(tmp_path / "runs"), corpus=corpus,
        split=SplitConfig(ratios={"train": 0.8, "dev": 0.1, "test": 0.1}),
        model=SMALL, train=TrainConfig(**{"batch_size": 16, "learning_rate": 0.01, **train}),
        registry=RegistryConfig(root=str(tmp_path / "registry")),
    )


@pytest.fixture(scope="module")
def conll_corpus(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("bilstm")
    path = write(tmp, "c.conll", synthetic_conll(240, seed=5))
    job = _job(tmp, "prep", CorpusConfig(format="conll", path=str(path)))
    return prepare(job, tmp / "prepared").directory


def test_two_workers_identical_weights_and_recovery_from_a_dead_worker(ray_local, tmp_path, conll_corpus):
    job = _job(tmp_path, "two", CorpusConfig(format="conll", path="unused"), num_workers=2, epochs=3,
               max_failures=1, early_stopping_patience=None)
    marker = tmp_path / "killed"
    digests = tmp_path / "digests"
    digests.mkdir()
    seams = Seams(fault=Fault(epoch=1, rank=1, marker=str(marker)), debug_dir=str(digests))
    version = train_and_register(job, conll_corpus, seams=seams)
    assert marker.exists(), "the injected failure never happened"
    for epoch in (1, 2, 3):
        ranks = {p.read_text() for p in digests.glob(f"weights-rank*-epoch{epoch}.sha256")}
        assert len(list(digests.glob(f"weights-rank*-epoch{epoch}.sha256"))) == 2
        assert len(ranks) == 1, f"replicas diverged at epoch {epoch}"
    artifact = Registry(job.registry.root).fetch("two")
    import json

    history = json.loads((artifact / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]  # epoch 2 retrained after the restart, 1 from the checkpoint
    # The registered model is the epoch with the best dev score, and says so.
    best = max(history, key=lambda h: h["dev_score"])
    assert version.metrics["epoch"] == best["epoch"] and version.metrics["dev_f1"] == best["dev_f1"]
    assert (artifact / "curves.png").stat().st_size > 0
    assert (artifact / "evaluation" / "confusion.png").stat().st_size > 0
    # The registry's test F1 is the one in the saved evaluation report, not a number made up elsewhere.
    report = json.loads((artifact / "evaluation" / "report.json").read_text())
    assert version.metrics["test_f1"] == pytest.approx(report["micro"]["f1"]) and "dev_f1_argmax" in version.metrics


def test_two_workers_stay_identical_with_crf_casing_schedule_noise_and_context(ray_local, tmp_path, conll_corpus):
    # The CRF's own train step, the schedule, the per-worker noise, the frozen piece vectors
    # (re-encoded from the noisy spellings) and the document context (found by each shard
    # row's sentence id) must keep replicas in step, and so must the optimizer's weight
    # average (what each epoch reports and checkpoints).
    model = SMALL.model_copy(update={"char_features": "cnn", "casing_features": True, "output": "crf",
                                     "warmup_ratio": 0.2, "encoder_vectors": True, "context": 4})
    job = _job(tmp_path, "noisy", CorpusConfig(format="conll", path="unused"), num_workers=2, epochs=2,
               early_stopping_patience=None, lr_schedule="cosine", word_dropout=0.2,
               word_dropout_scope="rare", augment=AugmentConfig(sentences=0.3), weight_average=0.9)
    job = job.model_copy(update={"model": model})
    digests = tmp_path / "digests"
    digests.mkdir()
    outcome = train(job, conll_corpus, seams=Seams(debug_dir=str(digests)))
    assert [h["epoch"] for h in outcome.history] == [1, 2]
    assert all(0 < h["train_loss"] < 10 for h in outcome.history)
    for epoch in (1, 2):
        files = list(digests.glob(f"weights-rank*-epoch{epoch}.sha256"))
        assert len(files) == 2 and len({p.read_text() for p in files}) == 1, f"replicas diverged at epoch {epoch}"
    assert all(0 <= h["dev_f1"] <= 1 for h in outcome.history)  # dev evaluated with the piece ids


class Recorder:
    """A train listener that keeps what the driver heard."""

    def __init__(self) -> None:
        self.runs: list = []
        self.epochs: list = []

    def run_started(self, run) -> None:
        self.runs.append(run)

    def epoch_ended(self, report) -> None:
        self.epochs.append(report)


def test_a_run_resumes_reports_finished_and_is_tracked_while_a_changed_config_is_a_new_run(
        ray_local, tmp_path, conll_corpus):
    job = _job(tmp_path, "resume", CorpusConfig(format="conll", path="unused"), num_workers=1, epochs=2,
               max_failures=0, early_stopping_patience=None)
    # The worker dies at the start of epoch 2 with no restart left: the run stops after epoch 1's
    # checkpoint, unfinished, as when the driver dies.
    fault = Seams(fault=Fault(epoch=1, rank=0, marker=str(tmp_path / "killed"), delay_s=8))
    first = Recorder()
    with pytest.raises(Exception):
        train_and_register(job, conll_corpus, seams=fault, listeners=[first])
    assert [r.epoch for r in first.epochs] == [1] and not first.runs[0].resumed
    # The same config again: the same run, resumed from its checkpoint; only epoch 2 is trained.
    again = Recorder()
    version = train_and_register(job, conll_corpus, listeners=[again])
    [run] = again.runs
    assert run.resumed and run.key == first.runs[0].key and run.key.startswith("resume-")
    assert [(r.epoch, r.epochs) for r in again.epochs] == [(2, 2)]
    assert again.epochs[0].checkpoint and "dev_f1" in again.epochs[0].metrics and again.epochs[0].train_loss > 0
    # ... and once more: it reports the run finished and what it was registered as.
    with pytest.raises(RunFinished, match="already finished") as done:
        train(job, conll_corpus)
    assert done.value.record["registered"] == f"resume@v{version.version}"

    # One MLflow run (file store under the workdir) across both attempts: params, both epochs, the version.
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(job)
    [tracked] = find_runs(uri, "resume", RUN_KEY_TAG, run.key)
    assert tracked.info.status == "FINISHED" and tracked.data.tags[MODEL_VERSION_TAG] == f"resume@v{version.version}"
    assert tracked.data.params["train.epochs"] == "2" and tracked.data.params["model.lstm_units"] == "16"
    history = MlflowClient(uri).get_metric_history(tracked.info.run_id, "dev_f1")
    assert [m.step for m in history] == [1, 2]
    assert tracked.data.metrics["test_f1"] == pytest.approx(version.metrics["test_f1"])
    assert list((tmp_path / "runs" / "tensorboard" / run.key).glob("events.out.tfevents.*"))

    # A changed config is a new run next to the finished one, which stays as it was.
    changed = job.model_copy(update={"train": job.train.model_copy(update={"learning_rate": 0.02, "epochs": 1})})
    outcome = train(changed, conll_corpus)
    assert outcome.key != run.key and not outcome.resumed and [h["epoch"] for h in outcome.history] == [1]
    assert Path(run.run_dir, "raytag_completed.json").is_file() and Path(outcome.run_dir).parent == Path(run.run_dir).parent


def test_a_seeded_rerun_trains_the_same_weights_from_a_many_shard_split(ray_local, tmp_path):
    # Dozens of small shards whose read tasks finish in any order: the run must still see
    # its batches in one order, so a rerun of the same seed ends with the same weights.
    path = write(tmp_path, "c.conll", synthetic_conll(240, seed=7))
    job = _job(tmp_path, "again", CorpusConfig(format="conll", path=str(path)), num_workers=1, epochs=2,
               early_stopping_patience=None, word_dropout=0.2, augment=AugmentConfig(sentences=0.3))
    job = job.model_copy(update={"prepare": PrepareConfig(chunk_bytes=1024)})
    corpus = prepare(job, tmp_path / "prepared").directory
    assert len(list((corpus / "splits" / "train").glob("*.parquet"))) >= 10
    runs = []
    for attempt in ("first", "second"):
        digests = tmp_path / attempt
        digests.mkdir()
        train(job, corpus, fresh=True, seams=Seams(debug_dir=str(digests)))
        runs.append([(digests / f"weights-rank0-epoch{epoch}.sha256").read_text() for epoch in (1, 2)])
    assert runs[0] == runs[1]


def test_overfit_register_and_tag_raw_text(ray_local, tmp_path):
    sentences = "\n".join(["Ada B-PER\nlives O\nin O\nParis B-LOC\n. O\n"] * 30 + ["Grace B-PER\nHopper I-PER\nleft O\nOslo B-LOC\n"] * 30)
    path = write(tmp_path, "o.conll", sentences)
    job = _job(tmp_path, "overfit", CorpusConfig(format="conll", path=str(path)), num_workers=1, epochs=12,
               early_stopping_patience=None)
    directory = prepare(job, tmp_path / "p").directory
    version = train_and_register(job, directory)
    assert version.metrics["test_f1"] == 1.0
    tagger = load_tagger("overfit@latest", job.registry.root)
    first, second = tagger.predict(["Grace Hopper left Oslo", "Ada lives in  Paris."])
    assert [(e.entity_group, e.word, e.start, e.end) for e in first.entities] == [
        ("PER", "Grace Hopper", 0, 12), ("LOC", "Oslo", 18, 22)]
    # Offsets index the raw text, double space and attached full stop included.
    assert [(e.entity_group, e.word, e.start, e.end) for e in second.entities] == [
        ("PER", "Ada", 0, 3), ("LOC", "Paris", 14, 19)]
    assert all(0.5 < e.score <= 1.0 for e in first.entities + second.entities)

    # The version's card is written from what was recorded: data sizes, labels, scores.
    registry = Registry(job.registry.root)
    card = registry.card("overfit")
    splits = version.manifest["data"]["splits"]
    assert f"| test | {splits['test']['sentences']} | {splits['test']['tokens']} |" in card
    assert "`B-PER`" in card and f"| f1 | {version.metrics['dev_f1']:.4f} | 1.0000 |" in card
    # The SavedModel beside model.keras scores like the model raytag loads.
    import numpy as np
    import tensorflow as tf

    from raytag.models.bilstm import predict_proba

    inputs = {"word_ids": np.array([[2, 3, 4, 0], [5, 6, 7, 8]], np.int32)}
    serve = tf.saved_model.load(str(registry.fetch("overfit") / "saved_model")).signatures["serving_default"]
    np.testing.assert_allclose(serve(word_ids=tf.constant(inputs["word_ids"]))["scores"].numpy(),
                               predict_proba(tagger.model, inputs), atol=1e-5)


def test_pos_plain_tags(ray_local, tmp_path):
    gmb = write(tmp_path, "g.csv", GMB * 1, encoding="latin-1")
    text = GMB + "".join(GMB.splitlines(keepends=True)[1:]) * 10
    gmb.write_bytes(text.encode("latin-1"))
    job = _job(tmp_path, "pos", CorpusConfig(format="gmb_csv", path=str(gmb), encoding="latin-1", tag_column="POS",
                                             scheme="plain"), num_workers=1, epochs=2)
    version = train_and_register(job, prepare(job, tmp_path / "p").directory)
    assert "test_accuracy" in version.metrics and "test_f1" not in version.metrics
    [result] = load_tagger(str(Registry(job.registry.root).fetch("pos"))).predict([["Families", "of", "London"]])
    assert result.entities == [] and len(result.tags) == 3
    # The POS column became the label set (no IOB tags), in the corpus's own spelling.
    assert set(version.labels) == {"NNS", "IN", "VBN", "NNP", ".", ",", "JJ", "``"}
