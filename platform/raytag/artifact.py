"""Turn a training run's best checkpoint into a tagger artifact, evaluate it, register it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from raytag.config import JobConfig, resolved
from raytag.corpus.prepared import PreparedCorpus
from raytag.tagger import TAGGER_FILE, TRANSFORMER_MODEL_DIR, Tagger


def export_bilstm(job: JobConfig, corpus: PreparedCorpus, checkpoint_dir: str, history: list[dict], out: Path) -> Path:
    """Rebuild the model outside any strategy, load the checkpoint's weights, write the artifact."""
    from raytag.models import bilstm
    from raytag.train.keras_loop import WEIGHTS

    out.mkdir(parents=True, exist_ok=True)
    model = bilstm.build_model(job.model, len(corpus.words), len(corpus.chars), len(corpus.labels))
    model.load_weights(str(Path(checkpoint_dir) / WEIGHTS))
    bilstm.save_model(model, out, job.model)
    for name in ("words.json", "chars.json", "labels.json"):
        shutil.copyfile(corpus.directory / name, out / name)
    meta = {
        "kind": "bilstm",
        "labels": corpus.labels.items,
        "entity": corpus.entity,
        "constrained_decoding": job.train.constrained_decoding,
        "char_features": job.model.char_features,
        "max_word_length": job.model.max_word_length,
    }
    return _write_metadata(job, meta, history, out)


def _write_metadata(job: JobConfig, meta: dict[str, Any], history: list[dict], out: Path) -> Path:
    """The files every tagger artifact carries next to its model: tagger.json, config, curves."""
    from raytag.evaluate import plot_curves

    (out / TAGGER_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (out / "config.yaml").write_text(yaml.safe_dump(resolved(job), sort_keys=False), encoding="utf-8")
    (out / "history.json").write_text(json.dumps(history, indent=2), encoding="utf-8")
    if history:
        plot_curves(history, out / "curves.png")
    return out


def export_transformer(job: JobConfig, corpus: PreparedCorpus, checkpoint_dir: str, history: list[dict],
                       out: Path) -> Path:
    """Write the best checkpoint as a ``save_pretrained`` directory plus the Tagger files.

    ``out/model`` loads with ``transformers.pipeline("token-classification", model=...)``:
    its config carries the real label names and the tokenizer files sit next to it.
    """
    from transformers import AutoModelForTokenClassification

    from raytag.models.transformer import load_tokenizer
    from raytag.subword_stage import TOKENIZER_DIR
    from raytag.train.hf_loop import CHECKPOINT_DIR

    out.mkdir(parents=True, exist_ok=True)
    model = AutoModelForTokenClassification.from_pretrained(str(Path(checkpoint_dir) / CHECKPOINT_DIR))
    if [model.config.id2label[i] for i in range(model.config.num_labels)] != corpus.labels.items:
        raise RuntimeError(f"checkpoint {checkpoint_dir} has labels {model.config.id2label}, not the corpus's")
    tokenizer = load_tokenizer(corpus.directory / TOKENIZER_DIR)
    tokenizer.model_max_length = job.model.max_length
    model.save_pretrained(str(out / TRANSFORMER_MODEL_DIR))
    tokenizer.save_pretrained(str(out / TRANSFORMER_MODEL_DIR))
    shutil.copyfile(corpus.directory / "labels.json", out / "labels.json")
    meta = {
        "kind": "transformer",
        "labels": corpus.labels.items,
        "entity": corpus.entity,
        "constrained_decoding": job.train.constrained_decoding,
        "max_length": job.model.max_length,
        "stride": job.model.stride,
        "encoder": job.model.encoder,
        "model_dir": TRANSFORMER_MODEL_DIR,
    }
    return _write_metadata(job, meta, history, out)


def export(job: JobConfig, corpus: PreparedCorpus, checkpoint_dir: str, history: list[dict], out: Path) -> Path:
    """Export a best checkpoint as the tagger artifact of the job's model kind."""
    exporter = export_transformer if job.model.kind == "transformer" else export_bilstm
    return exporter(job, corpus, checkpoint_dir, history, out)


def evaluate_tagger(tagger: Tagger, corpus: PreparedCorpus, split: str, out: Path | None = None) -> dict[str, Any]:
    """Tag a prepared split with ``tagger`` and score it against the gold tags."""
    from raytag.evaluate import confusion_matrix, evaluation_report, plot_confusion_matrix, save_report

    table = corpus.table(split, columns=["tokens", "tags"])
    tokens = table.column("tokens").to_pylist()
    gold = table.column("tags").to_pylist()
    predicted = [s.tags for s in tagger.predict(tokens, batch_size=256)]
    report = evaluation_report(gold, predicted, entity=corpus.entity)
    report["split"] = split
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_report(report, out)
        labels = list(tagger.labels)
        plot_confusion_matrix(confusion_matrix(gold, predicted, labels), labels, out / "confusion.png")
    return report


def headline_metrics(report: dict[str, Any], prefix: str) -> dict[str, float]:
    """The few numbers a registry entry shows: F1/precision/recall or accuracy."""
    out = {f"{prefix}_score": float(report["score"]), f"{prefix}_accuracy": float(report["token_accuracy"])}
    if report["kind"] == "entity":
        for key in ("f1", "precision", "recall"):
            out[f"{prefix}_{key}"] = float(report["micro"][key])
    return out


def train_and_register(job: JobConfig, prepared_dir: str | Path, *, fresh: bool = False, **train_options: Any) -> Any:
    """Train on Ray, export the best checkpoint, evaluate it on the test split, register it.

    Returns the registry's ``ModelVersion``. Needs a Ray session for the training part.
    """
    from raytag.train.run import train

    corpus = PreparedCorpus(prepared_dir)
    outcome = train(job, corpus.directory, fresh=fresh, **train_options)
    return register_checkpoint(job, corpus, outcome.best_checkpoint, outcome.history, outcome.best_metrics)


def register_checkpoint(job: JobConfig, corpus: PreparedCorpus, checkpoint_dir: str, history: list[dict],
                        train_metrics: dict[str, Any]) -> Any:
    """Export a checkpoint as a tagger, evaluate it on the test split and publish it."""
    import tempfile

    from raytag.registry import Registry
    from raytag.tagger import load_tagger

    with tempfile.TemporaryDirectory() as tmp:
        artifact = export(job, corpus, checkpoint_dir, history, Path(tmp) / "artifact")
        metrics: dict[str, Any] = {k: v for k, v in train_metrics.items() if isinstance(v, (int, float))}
        tagger = load_tagger(artifact)
        if job.train.test_split in corpus.splits:
            report = evaluate_tagger(tagger, corpus, job.train.test_split, artifact / "evaluation")
            metrics.update(headline_metrics(report, "test"))
        best_metric = "test_score" if "test_score" in metrics else "dev_score"
        return Registry(job.registry.root).publish(
            job.model_name(), artifact, kind=job.model.kind, labels=corpus.labels.items, metrics=metrics,
            config=resolved(job), data_fingerprint=corpus.fingerprint, best_metric=best_metric,
        )
