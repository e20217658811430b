"""Turn a training run's best checkpoint into a tagger artifact, evaluate it, register it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from raytag.artifact_files import CONFIG_FILE, CURVES_FILE, EVALUATION_DIR, HISTORY_FILE, TAGGER_FILE
from raytag.config import JobConfig, resolved
from raytag.corpus.prepared import PreparedCorpus
from raytag.evaluate import headline_metrics
from raytag.tagger import Tagger

__all__ = ["evaluate_tagger", "export", "headline_metrics", "register_checkpoint", "train_and_register"]


def export(job: JobConfig, corpus: PreparedCorpus, checkpoint_dir: str | Path, history: list[dict], out: Path) -> Path:
    """Export a best checkpoint as the tagger artifact of the job's model kind.

    The kind's adapter writes its model files; every artifact also carries
    ``tagger.json`` (kind, labels, decoding, then the kind's own keys), the resolved
    config and the training curves.
    """
    from raytag.evaluate import plot_curves
    from raytag.train.kinds import adapter_for

    adapter = adapter_for(job)
    out.mkdir(parents=True, exist_ok=True)
    own = adapter.export(job, corpus, Path(checkpoint_dir), out)
    meta = {
        "kind": adapter.kind,
        "labels": corpus.labels.items,
        "entity": corpus.entity,
        "constrained_decoding": job.train.constrained_decoding,
        **own,
    }
    (out / TAGGER_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (out / CONFIG_FILE).write_text(yaml.safe_dump(resolved(job), sort_keys=False), encoding="utf-8")
    (out / HISTORY_FILE).write_text(json.dumps(history, indent=2), encoding="utf-8")
    if history:
        plot_curves(history, out / CURVES_FILE)
    return out


def evaluate_tagger(tagger: Tagger, corpus: PreparedCorpus, split: str, out: Path | None = None) -> dict[str, Any]:
    """Tag a prepared split with ``tagger`` and score it against the gold tags.

    A tagger trained with document context tags each sentence with its document's.
    """
    from raytag.evaluate import confusion_matrix, evaluation_report, plot_confusion_matrix, save_report
    from raytag.tagged import predict_in_documents

    table = corpus.table(split, columns=["tokens", "tags"])
    tokens = table.column("tokens").to_pylist()
    gold = table.column("tags").to_pylist()
    documents = corpus.documents(split) if getattr(tagger, "context", 0) else list(range(len(tokens)))
    predicted = [s.tags for s in predict_in_documents(tagger, tokens, documents, batch_size=256)]
    report = evaluation_report(gold, predicted, entity=corpus.entity)
    report["split"] = split
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_report(report, out)
        labels = list(tagger.labels)
        plot_confusion_matrix(confusion_matrix(gold, predicted, labels), labels, out / "confusion.png")
    return report


def train_and_register(job: JobConfig, prepared_dir: str | Path, *, fresh: bool = False,
                       listeners: Sequence[Any] = (), **train_options: Any) -> Any:
    """Train on Ray, export the best checkpoint, evaluate it on the test split, register it.

    Returns the registry's ``ModelVersion``. Needs a Ray session for the training part.
    ``listeners`` (:class:`raytag.train.progress.TrainListener`) hear the run start and
    every epoch; the run is tracked in MLflow and TensorBoard as ``job.tracking`` says,
    and the finished run's record and MLflow run name the registered version.
    Raises :class:`raytag.train.run.RunFinished` when this job's run has already finished.
    """
    from raytag.tracking import RunTracker
    from raytag.train.run import record_registration, train

    corpus = PreparedCorpus(prepared_dir)
    tracking = job.tracking.mlflow or job.tracking.tensorboard
    tracker = RunTracker(job) if tracking else None
    try:
        outcome = train(job, corpus, fresh=fresh, listeners=[*listeners, *([tracker] if tracker else [])],
                        **train_options)
        version = register_checkpoint(job, corpus, outcome.best_checkpoint, outcome.history, outcome.best_metrics)
    except BaseException:
        if tracker is not None:
            tracker.failed()
        raise
    ref = f"{version.name}@v{version.version}"
    record_registration(outcome.run_dir, ref)
    if tracker is not None:
        tracker.finished(ref, version.metrics)
    return version


def register_checkpoint(job: JobConfig, corpus: PreparedCorpus, checkpoint_dir: str | Path, history: list[dict],
                        train_metrics: dict[str, Any], *, aliases: Sequence[str] = ("latest",),
                        track_best: bool = True) -> Any:
    """Export a checkpoint as a tagger, evaluate it on the test split and publish it.

    The new version gets ``aliases``; with ``track_best`` it also takes ``best`` when it
    beats the current best's score (a tuned variant passes neither, so refs to the
    model's ``latest`` and ``best`` keep what they served).
    """
    import tempfile

    from raytag.registry import Registry
    from raytag.tagger import load_tagger

    with tempfile.TemporaryDirectory() as tmp:
        artifact = export(job, corpus, checkpoint_dir, history, Path(tmp) / "artifact")
        metrics: dict[str, Any] = {k: v for k, v in train_metrics.items() if isinstance(v, (int, float))}
        tagger = load_tagger(artifact)
        if job.train.test_split in corpus.splits:
            report = evaluate_tagger(tagger, corpus, job.train.test_split, artifact / EVALUATION_DIR)
            metrics.update(headline_metrics(report, "test"))
        best_metric = "test_score" if "test_score" in metrics else "dev_score"
        return Registry(job.registry.root).publish(
            job.model_name(), artifact, kind=job.model.kind, labels=corpus.labels.items, metrics=metrics,
            config=resolved(job), data_fingerprint=corpus.fingerprint, aliases=tuple(aliases),
            best_metric=best_metric if track_best else None, data=corpus.summary(),
        )
