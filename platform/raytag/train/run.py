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

from raytag.config import JobConfig
from raytag.corpus.prepared import PreparedCorpus
from raytag.environment import worker_env
from raytag.errors import ConfigError
from raytag.train.adapter import History, WorkerRun
from raytag.train.kinds import adapter_for
from raytag.train.seams import Seams

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
    prepared: PreparedCorpus | str | Path,
    *,
    fresh: bool = False,
    seams: Seams | None = None,
    callbacks: list[Any] | None = None,
) -> TrainOutcome:
    """Train ``job.model`` on a prepared corpus with Ray Train (needs a Ray session).

    ``seams`` lets tests kill a worker or collect weight digests (see
    :mod:`raytag.train.seams`); the CLI never sets them. ``callbacks`` are Ray Train
    run callbacks (Tune passes its ``TuneReportCallback``).
    """
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig

    if not ray.is_initialized():
        raise RuntimeError("train() needs a Ray session; wrap the call in raytag.session.ray_session()")
    corpus = prepared if isinstance(prepared, PreparedCorpus) else PreparedCorpus(prepared)
    for split in ("train", job.train.dev_split):
        if split not in corpus.splits:
            raise ConfigError(
                f"{corpus.directory} has no {split!r} split (splits: {', '.join(corpus.splits)}); "
                "prepare it with split.ratios such as {train: 0.81, dev: 0.09, test: 0.1}"
            )
    adapter = adapter_for(job)
    adapter.check_prepared(corpus, job)

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
    run = WorkerRun(job, str(corpus.directory.absolute()), seams or Seams())
    trainer = adapter.trainer(
        adapter.worker_loop(),
        run,
        # Read before the workers take their CPUs: on a small cluster (2 CPUs, 2 workers)
        # streaming reads would otherwise wait forever for a free CPU.
        read_split(corpus, "train", adapter.train_columns(job)).materialize(),
        ScalingConfig(
            num_workers=job.train.num_workers,
            use_gpu=job.train.use_gpu,
            resources_per_worker={"CPU": job.train.cpus_per_worker, **({"GPU": 1} if job.train.use_gpu else {})},
        ),
        RunConfig(
            name=job.name,
            storage_path=storage,
            failure_config=FailureConfig(max_failures=job.train.max_failures),
            checkpoint_config=CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=score_key, checkpoint_score_order="max"
            ),
            worker_runtime_env={"env_vars": worker_env(job.train.use_gpu, adapter.worker_env(job))},
            callbacks=callbacks or None,
        ),
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    best = max(result.best_checkpoints or [], key=lambda cm: cm[1].get(score_key, float("-inf")), default=None)
    if best is None:
        raise RuntimeError(f"run {run_dir} reported no checkpoint")
    checkpoint, metrics = best
    history = checkpoint_history(job, result.checkpoint or checkpoint)
    fs, inner = _filesystem(f"{run_dir}/{DONE_MARKER}")
    with fs.open_output_stream(inner) as out:
        out.write(json.dumps({"best_checkpoint": checkpoint.path, "best_metrics": metrics}).encode())
    return TrainOutcome(run_dir, checkpoint.path, dict(metrics), history, resumed)


def read_split(corpus: PreparedCorpus, split: str, columns: list[str] | None = None) -> Any:
    """A Ray Data dataset over a prepared split's shards (needs a Ray session)."""
    import ray.data

    return ray.data.read_parquet(corpus.shard_paths(split), columns=columns)


def checkpoint_history(job: JobConfig, checkpoint: Any) -> History:
    """The per-epoch curves stored in a Ray Train checkpoint of ``job``'s model kind."""
    with checkpoint.as_directory() as directory:
        return adapter_for(job).history(Path(directory))
