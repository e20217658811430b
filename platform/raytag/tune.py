"""Hyperparameter search with Ray Tune over raytag training jobs.

A search file names a base job, fixed overrides and a search space of dotted
job keys. Each trial is a whole Ray Train run of the overridden job (the Train V2
pattern: a Tune function trial that builds the trainer with ``TuneReportCallback``),
reporting dev metrics once per epoch to an ASHA scheduler. The best trial's job is
written out as a ready-to-run YAML and its best checkpoint registered.

The search file's schema and the job of each trial are in :mod:`raytag.tune_config`,
the search's outcome and results table in :mod:`raytag.tune_results`.

Search-space parsing and validation are plain Python; only :func:`run_search`
needs Ray.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from raytag.config import JobConfig, resolved
from raytag.errors import ConfigError
from raytag.train.seams import Seams
from raytag.tune_config import (Dimension, SchedulerConfig, SearchConfig, TuneJobConfig, base_job_data,
                                job_for_trial, load_search, parse_dimension)
from raytag.tune_results import SearchOutcome, results_table, trial_id, trial_status

# The search file and results helpers stay importable from here, the entry point of a search.
__all__ = ["Dimension", "SchedulerConfig", "SearchConfig", "SearchOutcome", "TuneJobConfig", "base_job_data",
           "dump_job", "job_for_trial", "load_search", "parse_dimension", "results_table", "run_search",
           "search_callbacks", "trial_id", "trial_resources", "trial_status"]

# A token CPU for the trial process (Tune needs a non-empty request): it only drives its
# Ray Train run, whose workers hold the real CPUs.
TRIAL_DRIVER_CPU = 0.01


def trial_resources(job: JobConfig, cluster_cpus: float, requested: int | None) -> tuple[float, int]:
    """CPUs per trial (its Ray Train workers) and how many trials may run at once.

    One CPU stays free for the Ray Data tasks that read each trial's dataset: trials
    that took every CPU would wait forever for their own reads.
    """
    per_trial = job.train.num_workers * job.train.cpus_per_worker
    if per_trial > cluster_cpus - 1 and cluster_cpus > 1:
        raise ConfigError(
            f"a trial's workers need {per_trial:g} CPUs but the cluster has {cluster_cpus:g} "
            "(one is kept for data loading); lower train.num_workers or train.cpus_per_worker in 'set'"
        )
    fits = max(1, math.floor((cluster_cpus - 1) / per_trial)) if cluster_cpus > 1 else 1
    return per_trial, min(fits, requested) if requested else fits


def dump_job(job: JobConfig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(resolved(job), sort_keys=False), encoding="utf-8")
    return path



def _domains(search: SearchConfig) -> dict[str, Any]:
    from ray import tune

    out: dict[str, Any] = {}
    for key, spec in search.space.items():
        d = parse_dimension(key, spec)
        if d.kind == "choice":
            out[key] = tune.choice(list(d.args))
        elif d.kind == "uniform":
            out[key] = tune.uniform(*d.args)
        elif d.kind == "loguniform":
            out[key] = tune.loguniform(*d.args)
        elif d.kind == "randint":
            out[key] = tune.randint(*d.args)
        else:
            out[key] = tune.quniform(*d.args)
    return out


@dataclass(frozen=True)
class TrialPlan:
    """What every trial shares, built once on the driver (typed models pickle into the trials)."""

    search: TuneJobConfig
    base_data: dict[str, Any]
    prepared_dir: str
    trial_storage: str
    seams: Seams | None = None


def _trial(params: dict[str, Any], plan: TrialPlan) -> None:
    """One trial: a Ray Train run of the overridden job, its reports forwarded to Tune."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from raytag.train.run import train

    name = f"{plan.search.name}-{tune.get_context().get_trial_id()}"
    job = job_for_trial(plan.search, params, trial_name=name, base_data=plan.base_data)
    job = job.model_copy(update={"train": job.train.model_copy(update={"storage_path": plan.trial_storage})})
    train(job, plan.prepared_dir, fresh=True, callbacks=[TuneReportCallback()], seams=plan.seams)


def search_callbacks(search: TuneJobConfig, base: JobConfig, trial_storage: str) -> list[Any]:
    """Tune callbacks of a search: epoch progress, and tracking as the base job's ``tracking`` says.

    Each trial is an MLflow run (Ray's ``MLflowLoggerCallback``, with the trial's whole
    job as params) and writes TensorBoard events into its trial directory (Ray's
    ``TBXLoggerCallback``).
    """
    from ray.tune.logger import TBXLoggerCallback

    from raytag.tracking import allow_file_store, flat_params, tracking_uri
    from raytag.tune_callbacks import TrialProgress, TrialTracker

    callbacks: list[Any] = [TrialProgress(base.train.epochs, base.train.max_steps_per_epoch)]
    if base.tracking.mlflow:
        uri = tracking_uri(base)
        allow_file_store(uri)
        params = flat_params(resolved(base))
        params["train.storage_path"] = trial_storage
        callbacks.append(TrialTracker(uri, base.tracking.experiment or search.name, params, search.name,
                                      tags={"raytag.search": search.name}))
    if base.tracking.tensorboard:
        callbacks.append(TBXLoggerCallback())
    return callbacks


def run_search(search: TuneJobConfig, base: JobConfig, prepared_dir: str | Path, *, fresh: bool = False,
               seams: Seams | None = None, listener: Any = None) -> SearchOutcome:
    """Run (or resume) the search on the connected Ray; export and register the best trial.

    An interrupted or partly failed search under the same storage resumes where it
    stopped (``Tuner.restore``, errored trials re-run) unless ``fresh``.
    ``seams`` are passed to every trial's training (tests only). ``listener``
    (:class:`raytag.tune_callbacks.TrialListener`) hears every trial's epochs, on this process.
    """
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator

    from raytag.artifact import register_checkpoint
    from raytag.corpus.prepared import PreparedCorpus
    from raytag.tune_callbacks import listening

    if not ray.is_initialized():
        raise RuntimeError("run_search() needs a Ray session; wrap the call in raytag.session.ray_session()")
    storage = search.storage_path or str((Path(base.workdir) / search.name / "tune").absolute())
    experiment = f"{storage.rstrip('/')}/{search.name}"
    per_trial, concurrent = trial_resources(base, ray.cluster_resources().get("CPU", 1.0),
                                            search.search.max_concurrent_trials)
    cfg = search.search
    # Tune runs each trial in its own directory: hand it absolute paths.
    for_trials = search.model_copy(update={"base": str(Path(search.base).absolute())})
    base_data = base_job_data(search)
    plan = TrialPlan(for_trials, base_data, str(Path(prepared_dir).absolute()), f"{storage.rstrip('/')}/trials",
                     seams)
    trainable = tune.with_parameters(_trial, plan=plan)
    # The trial process only drives its Ray Train run; the workers hold the CPUs.
    trainable = tune.with_resources(trainable, {"CPU": TRIAL_DRIVER_CPU})
    restored = not fresh and tune.Tuner.can_restore(experiment)
    if restored:
        tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_errored=True)
    else:
        scheduler = (
            ASHAScheduler(time_attr="training_iteration", max_t=base.train.epochs,
                          grace_period=cfg.scheduler.grace_period, reduction_factor=cfg.scheduler.reduction_factor)
            if cfg.scheduler.kind == "asha" else FIFOScheduler()
        )
        tuner = tune.Tuner(
            trainable,
            param_space=_domains(cfg),
            tune_config=tune.TuneConfig(
                metric=cfg.metric, mode=cfg.mode, num_samples=cfg.num_samples, scheduler=scheduler,
                # The generator itself caps concurrency (TuneConfig's cap ignores this search_alg).
                search_alg=BasicVariantGenerator(random_state=cfg.seed, max_concurrent=concurrent),
            ),
            run_config=tune.RunConfig(name=search.name, storage_path=storage, verbose=0,
                                      callbacks=search_callbacks(search, base, plan.trial_storage)),
        )
    with listening(listener):
        grid = tuner.fit()
    candidates = []
    for result in grid:
        frame = result.metrics_dataframe
        if frame is None or cfg.metric not in frame or "checkpoint_path" not in frame:
            continue
        scored = frame[frame[cfg.metric].notna() & frame["checkpoint_path"].notna()]
        if len(scored):
            index = scored[cfg.metric].idxmax() if cfg.mode == "max" else scored[cfg.metric].idxmin()
            candidates.append((result, scored.loc[index]))
    if not candidates:
        errors = [str(r.error).splitlines()[0] for r in grid if r.error][:3]
        raise RuntimeError(
            f"no trial of {search.name} reported a checkpointed {cfg.metric} (errors: {errors}); "
            "run the same search again to resume it"
        )
    pick = max if cfg.mode == "max" else min
    best, row = pick(candidates, key=lambda c: float(c[1][cfg.metric]))
    table = results_table(grid, cfg, planned_epochs=base.train.epochs, best=best)
    params = {k: best.config[k] for k in cfg.space}
    best_job = job_for_trial(search, params, trial_name=f"{search.name}-best", base_data=base_data)
    best_job = best_job.model_copy(update={"registry": best_job.registry.model_copy(
        update={"model_name": base.model_name()})})
    out = Path(base.workdir) / search.name
    out.mkdir(parents=True, exist_ok=True)
    best_file = dump_job(best_job, out / "best_job.yaml")
    table.to_csv(out / "results.csv", index=False)
    metrics = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and math.isfinite(float(v))}
    (out / "best.json").write_text(json.dumps({"params": params, "metrics": metrics,
                                               "checkpoint": row["checkpoint_path"]}, indent=2))
    registered = None
    if search.register_best:
        from ray.train import Checkpoint

        from raytag.train.kinds import adapter_for

        checkpoint = Checkpoint(row["checkpoint_path"])
        with checkpoint.as_directory() as directory:
            registered = register_checkpoint(
                best_job, PreparedCorpus(prepared_dir), directory, adapter_for(best_job).history(Path(directory)),
                {**metrics, **{f"param.{k}": v for k, v in params.items() if isinstance(v, (int, float))}},
                aliases=search.registry_aliases(), track_best=search.promote,
            )
        if base.tracking.mlflow:
            _link_best_trial(base, search, trial_id(best),
                             f"{registered.name}@v{registered.version}", registered.metrics)
    return SearchOutcome(experiment, table, params, metrics, best_file, registered, restored,
                         best_trial=trial_id(best), aliases=search.registry_aliases() if registered else ())


def _link_best_trial(base: JobConfig, search: TuneJobConfig, best_trial: str, ref: str, metrics: dict[str, Any]) -> None:
    """Tag the best trial's MLflow run with the registry version it became."""
    from raytag.tracking import TRIAL_ID_TAG, find_runs, link_model, tracking_uri

    uri = tracking_uri(base)
    for run in find_runs(uri, base.tracking.experiment or search.name, TRIAL_ID_TAG, best_trial)[:1]:
        link_model(uri, run.info.run_id, ref, metrics)
