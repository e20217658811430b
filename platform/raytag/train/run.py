"""Build and run the Ray Train job for a job config; resume interrupted runs.

A run is named after the job and kept under ``train.storage_path`` (a local path or
an S3 URI). Re-running a job whose driver died resumes from its latest checkpoint;
re-running a finished job needs ``fresh=True``, which starts over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raytag.config import JobConfig, resolved
from raytag.corpus.prepared import PreparedCorpus
from raytag.errors import ConfigError

DONE_MARKER = "raytag_completed.json"


@dataclass
class TrainOutcome:
    """What a finished run produced: the best checkpoint's directory and the curves."""

    run_dir: str
    best_checkpoint: str
    best_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False


def storage_path(job: JobConfig) -> str:
    if job.train.storage_path:
        return job.train.storage_path
    return str((Path(job.workdir) / job.name / "ray_results").absolute())


def _filesystem(path: str) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    if "://" in path:
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), path


def _exists(path: str) -> bool:
    import pyarrow.fs as pafs

    fs, inner = _filesystem(path)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def train(
    job: JobConfig,
    prepared_dir: str | Path,
    *,
    fresh: bool = False,
    fault_injection: dict[str, Any] | None = None,
    debug_dir: str | None = None,
    callbacks: list[Any] | None = None,
) -> TrainOutcome:
    """Train ``job.model`` on a prepared corpus with Ray Train (needs a Ray session).

    ``fault_injection`` (``{"epoch", "rank", "marker"}``) kills one worker once at the
    start of that epoch, and ``debug_dir`` collects a digest of every replica's weights
    after every epoch; both exist for tests and are never set by the CLI. ``callbacks``
    are Ray Train run callbacks (Tune passes its ``TuneReportCallback``).
    """
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig

    if not ray.is_initialized():
        raise RuntimeError("train() needs a Ray session; wrap the call in raytag.session.ray_session()")
    corpus = PreparedCorpus(prepared_dir)
    for split in ("train", job.train.dev_split):
        if split not in corpus.splits:
            raise ConfigError(
                f"{corpus.directory} has no {split!r} split (splits: {', '.join(corpus.splits)}); "
                "prepare it with split.ratios such as {train: 0.81, dev: 0.09, test: 0.1}"
            )
    if job.train.batch_size < job.train.num_workers:
        raise ConfigError("train.batch_size must be at least train.num_workers (it is the global batch size)")

    storage = storage_path(job)
    run_dir = f"{storage.rstrip('/')}/{job.name}"
    resumed = _exists(run_dir)
    if resumed and (fresh or _exists(f"{run_dir}/{DONE_MARKER}")):
        if not fresh:
            raise ConfigError(f"run {run_dir} already finished; pass fresh=True (--fresh) to train again")
        fs, inner = _filesystem(run_dir)
        fs.delete_dir(inner)
        resumed = False

    score_key = "dev_score"
    trainer_class, train_loop, dataset_options = _framework(job, corpus)
    trainer = trainer_class(
        train_loop,
        train_loop_config={
            "job": resolved(job),
            "prepared_dir": str(corpus.directory.absolute()),
            "fault_injection": fault_injection,
            "debug_dir": debug_dir,
        },
        scaling_config=ScalingConfig(
            num_workers=job.train.num_workers,
            use_gpu=job.train.use_gpu,
            resources_per_worker={"CPU": job.train.cpus_per_worker, **({"GPU": 1} if job.train.use_gpu else {})},
        ),
        run_config=RunConfig(
            name=job.name,
            storage_path=storage,
            failure_config=FailureConfig(max_failures=job.train.max_failures),
            checkpoint_config=CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=score_key, checkpoint_score_order="max"
            ),
            worker_runtime_env={"env_vars": _worker_env(job)},
            callbacks=callbacks or None,
        ),
        **dataset_options,
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    best = max(result.best_checkpoints or [], key=lambda cm: cm[1].get(score_key, float("-inf")), default=None)
    if best is None:
        raise RuntimeError(f"run {run_dir} reported no checkpoint")
    checkpoint, metrics = best
    history = _history(job, result.checkpoint or checkpoint)
    fs, inner = _filesystem(f"{run_dir}/{DONE_MARKER}")
    with fs.open_output_stream(inner) as out:
        out.write(json.dumps({"best_checkpoint": checkpoint.path, "best_metrics": metrics}).encode())
    return TrainOutcome(run_dir, checkpoint.path, dict(metrics), history, resumed)


def _framework(job: JobConfig, corpus: PreparedCorpus) -> tuple[Any, Any, dict[str, Any]]:
    """The trainer class, per-worker loop and dataset options for the job's model kind."""
    # Datasets are read before the workers take their CPUs: on a small cluster (2 CPUs,
    # 2 workers) streaming reads would otherwise wait forever for a free CPU.
    if job.model.kind == "transformer":
        from ray.train import DataConfig
        from ray.train.torch import TorchTrainer

        from raytag.subword_stage import WINDOW_COLUMNS
        from raytag.train.hf_loop import train_loop as hf_train_loop

        if "subwords" not in corpus.manifest.get("stages", {}):
            raise ConfigError(
                f"{corpus.directory} has no subword windows; prepare it with this transformer job's config"
            )
        train_set = corpus.dataset("train", columns=list(WINDOW_COLUMNS[:2])).materialize()
        # Every worker reads the whole split; the HF Trainer's distributed sampler shards it.
        return TorchTrainer, hf_train_loop, {"datasets": {"train": train_set},
                                             "dataset_config": DataConfig(datasets_to_split=[])}
    from ray.train.tensorflow import TensorflowTrainer

    from raytag.train.keras_loop import train_loop as keras_train_loop

    train_set = corpus.dataset("train", columns=["word_ids", "tag_ids", "tokens"]).materialize()
    return TensorflowTrainer, keras_train_loop, {"datasets": {"train": train_set}}


def _worker_env(job: JobConfig) -> dict[str, str]:
    # Keras 3 breaks under MultiWorkerMirroredStrategy; tf-keras needs this before TF loads.
    env = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    if not job.train.use_gpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    if job.model.kind == "transformer":
        # Keep transformers/datasets from importing TensorFlow into the PyTorch workers.
        env.update(USE_TF="0", USE_TORCH="1", TOKENIZERS_PARALLELISM="false")
    return env


def checkpoint_history(job: JobConfig, checkpoint: Any) -> list[dict[str, Any]]:
    """The per-epoch curves stored in a checkpoint of ``job``'s model kind."""
    return _history(job, checkpoint)


def _history(job: JobConfig, checkpoint: Any) -> list[dict[str, Any]]:
    with checkpoint.as_directory() as directory:
        if job.model.kind == "transformer":
            from raytag.train.hf_loop import history_from_checkpoint

            return history_from_checkpoint(directory)
        from raytag.train.keras_loop import STATE

        return json.loads((Path(directory) / STATE).read_text())["history"]
