"""Build and run the Ray Train job for a job config; resume interrupted runs.

A run is keyed by the job's name and a hash of what decides its result
(:mod:`raytag.train.identity`) and kept under ``train.storage_path`` (a local path or
an S3 URI) in a directory of that name. Re-running the same job resumes its run from
the latest checkpoint if the driver died, or reports it finished; a changed job starts
a run of its own beside the earlier ones. ``fresh=True`` deletes the run of this very
key first, never another one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from raytag.config import JobConfig, resolved
from raytag.corpus.prepared import PreparedCorpus
from raytag.environment import worker_env
from raytag.errors import ConfigError
from raytag.train.adapter import History, WorkerRun
from raytag.train.identity import run_key
from raytag.train.kinds import adapter_for
from raytag.train.progress import RunInfo, TrainListener
from raytag.train.seams import Seams

DONE_MARKER = "raytag_completed.json"
# Ray Train keeps the checkpoints best by this metric.
SCORE_KEY = "dev_score"
# The resolved job a run was started with, beside its checkpoints.
CONFIG_FILE = "raytag_job.yaml"


class RunFinished(ConfigError):
    """The run of this job's key has already finished; ``record`` is its completion record."""

    def __init__(self, key: str, run_dir: str, record: dict[str, Any]) -> None:
        registered = record.get("registered")
        note = f", registered as {registered}" if registered else ""
        super().__init__(f"run {key} already finished ({run_dir}{note}); pass fresh=True (--fresh) to train "
                         "this same config again, or change the config to start another run")
        self.key, self.run_dir, self.record = key, run_dir, record


@dataclass
class TrainOutcome:
    """What a finished run produced: the best checkpoint's directory and the curves."""

    run_dir: str
    best_checkpoint: str
    best_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False
    key: str = ""


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


def _read_json(path: str) -> dict[str, Any]:
    fs, inner = _filesystem(path)
    with fs.open_input_stream(inner) as stream:
        return json.loads(stream.read().decode("utf-8"))


def _write_text(path: str, text: str) -> None:
    fs, inner = _filesystem(path)
    with fs.open_output_stream(inner) as out:
        out.write(text.encode("utf-8"))


def run_dir_of(job: JobConfig, data_fingerprint: str | None) -> tuple[str, str]:
    """The run key of ``job`` on the data ``data_fingerprint`` names and the directory Ray Train keeps that run in."""
    key = run_key(job, data_fingerprint)
    return key, f"{storage_path(job).rstrip('/')}/{key}"


def open_run(job: JobConfig, data_fingerprint: str | None, *, fresh: bool = False) -> RunInfo:
    """Decide how the run of ``job`` starts, before any Ray work: new, resumed or (``fresh``) over again.

    Raises :class:`RunFinished` when that run has finished and ``fresh`` is false. With
    ``fresh`` only this key's directory is deleted; runs of other configs stay. A new run
    directory gets the resolved job (:data:`CONFIG_FILE`), so a hash can be traced back.
    """
    key, run_dir = run_dir_of(job, data_fingerprint)
    resumed, restarted = _exists(run_dir), False
    if resumed and (fresh or _exists(f"{run_dir}/{DONE_MARKER}")):
        if not fresh:
            raise RunFinished(key, run_dir, _read_json(f"{run_dir}/{DONE_MARKER}"))
        fs, inner = _filesystem(run_dir)
        fs.delete_dir(inner)
        resumed, restarted = False, True
    if not resumed:
        fs, inner = _filesystem(run_dir)
        fs.create_dir(inner, recursive=True)
        _write_text(f"{run_dir}/{CONFIG_FILE}", yaml.safe_dump(resolved(job), sort_keys=False))
    return RunInfo(job, key, run_dir, resumed=resumed, restarted=restarted)


def record_registration(run_dir: str, ref: str) -> None:
    """Note in a finished run's completion record which registry version it became."""
    marker = f"{run_dir}/{DONE_MARKER}"
    _write_text(marker, json.dumps({**_read_json(marker), "registered": ref}))


def train(
    job: JobConfig,
    prepared: PreparedCorpus | str | Path,
    *,
    fresh: bool = False,
    seams: Seams | None = None,
    callbacks: list[Any] | None = None,
    listeners: Sequence[TrainListener] = (),
) -> TrainOutcome:
    """Train ``job.model`` on a prepared corpus with Ray Train (needs a Ray session).

    Raises :class:`RunFinished` when the run of this job's key has finished (unless
    ``fresh``). ``listeners`` hear, on this process, when the run starts and each epoch's
    metrics as the workers report them. ``seams`` lets tests kill a worker or collect
    weight digests (see :mod:`raytag.train.seams`); the CLI never sets them.
    ``callbacks`` are Ray Train run callbacks (Tune passes its ``TuneReportCallback``).
    """
    import ray

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

    info = open_run(job, corpus.fingerprint, fresh=fresh)
    for listener in listeners:
        listener.run_started(info)

    run = WorkerRun(job, str(corpus.directory.absolute()), seams or Seams())
    with ExitStack() as stack:
        run_callbacks = list(callbacks or [])
        if listeners:
            from raytag.train.relay import relayed

            run_callbacks.append(stack.enter_context(
                relayed(listeners, job.train.epochs, job.train.max_steps_per_epoch)))
        result = _fit(job, adapter, corpus, run, info.key, run_callbacks)
    if result.error is not None:
        raise result.error
    best = max(result.best_checkpoints or [], key=lambda cm: cm[1].get(SCORE_KEY, float("-inf")), default=None)
    if best is None:
        raise RuntimeError(f"run {info.run_dir} reported no checkpoint")
    checkpoint, metrics = best
    history = checkpoint_history(job, result.checkpoint or checkpoint)
    _write_text(f"{info.run_dir}/{DONE_MARKER}", json.dumps({"key": info.key, "best_checkpoint": checkpoint.path,
                                                             "best_metrics": metrics}))
    return TrainOutcome(info.run_dir, checkpoint.path, dict(metrics), history, info.resumed, info.key)


def _fit(job: JobConfig, adapter: Any, corpus: PreparedCorpus, run: WorkerRun, key: str, callbacks: list[Any]) -> Any:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig

    trainer = adapter.trainer(
        adapter.worker_loop(),
        run,
        # Read before the workers take their CPUs: on a small cluster (2 CPUs, 2 workers)
        # streaming reads would otherwise wait forever for a free CPU.
        _read_in_order(corpus, adapter.train_columns(job)),
        ScalingConfig(
            num_workers=job.train.num_workers,
            use_gpu=job.train.use_gpu,
            resources_per_worker={"CPU": job.train.cpus_per_worker, **({"GPU": 1} if job.train.use_gpu else {})},
        ),
        RunConfig(
            name=key,
            storage_path=storage_path(job),
            failure_config=FailureConfig(max_failures=job.train.max_failures),
            checkpoint_config=CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=SCORE_KEY, checkpoint_score_order="max"
            ),
            worker_runtime_env={"env_vars": worker_env(job.train.use_gpu, adapter.worker_env(job))},
            callbacks=callbacks,
        ),
    )
    return trainer.fit()


def _read_in_order(corpus: PreparedCorpus, columns: list[str]) -> Any:
    # Blocks in shard order, not in the order their read tasks finish: a seeded run then
    # sees the same sentences in the same batches every time.
    from raytag.session import ordered_data

    with ordered_data():
        return read_split(corpus, "train", columns).materialize()


def read_split(corpus: PreparedCorpus, split: str, columns: list[str] | None = None) -> Any:
    """A Ray Data dataset over a prepared split's shards (needs a Ray session)."""
    import ray.data

    return ray.data.read_parquet(corpus.shard_paths(split), columns=columns)


def checkpoint_history(job: JobConfig, checkpoint: Any) -> History:
    """The per-epoch curves stored in a Ray Train checkpoint of ``job``'s model kind."""
    with checkpoint.as_directory() as directory:
        return adapter_for(job).history(Path(directory))
