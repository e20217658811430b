"""Experiment tracking of training runs: an MLflow run and TensorBoard event files per run.

Written from the driver, which hears every epoch from Ray Train's controller
(:mod:`raytag.train.relay`): Ray Train V2 no longer takes Ray Tune's logger callbacks,
and the driver is the one process that sees a local tracking store on every cluster.
(``raytag tune`` uses Ray Tune's own ``MLflowLoggerCallback`` and TensorBoard logger,
see :mod:`raytag.tune_callbacks`.)

An MLflow run gets the resolved job config as params (dotted keys), the epoch metrics
with the epoch as step, the run key and directory as tags, and, once registered, the
model version (tag ``raytag.model_version``) and its test metrics. A resumed training
run continues its MLflow run and its TensorBoard folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytag.config import JobConfig, resolved

if TYPE_CHECKING:
    from raytag.train.progress import EpochReport, RunInfo

logger = logging.getLogger(__name__)

RUN_KEY_TAG = "raytag.run_key"
MODEL_VERSION_TAG = "raytag.model_version"
TRIAL_ID_TAG = "raytag.trial_id"


def tracking_uri(job: JobConfig) -> str:
    """The MLflow tracking URI of ``job``: as configured, a path made a ``file:`` URI, default ``<workdir>/mlruns``."""
    uri = job.tracking.tracking_uri or str(Path(job.workdir) / "mlruns")
    # "databricks" is MLflow's one tracking URI without a scheme; anything else without one is a path.
    if "://" in uri or uri.startswith(("file:", "databricks")):
        return uri
    return Path(uri).absolute().as_uri()


def allow_file_store(uri: str) -> None:
    """Let MLflow open a local file store (it refuses one unless asked since MLflow 3.7).

    The file store needs no database and no server, which is what a default that works
    out of the box wants; point ``tracking.tracking_uri`` at a server or database for more.
    """
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


def tensorboard_root(job: JobConfig) -> Path:
    return Path(job.tracking.tensorboard_dir or Path(job.workdir) / "tensorboard")


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as MLflow params: dotted keys, lists as JSON, everything a string."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_params(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return out


def mlflow_client(uri: str) -> Any:
    """An MLflow client of ``uri`` (a local file store allowed)."""
    from mlflow.tracking import MlflowClient

    allow_file_store(uri)
    return MlflowClient(tracking_uri=uri)


def experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment is not None else client.create_experiment(name)


def find_runs(uri: str, experiment: str, tag: str, value: str) -> list[Any]:
    """The MLflow runs of ``experiment`` whose ``tag`` is ``value``, newest first."""
    client = mlflow_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return list(client.search_runs([found.experiment_id], filter_string=f"tags.`{tag}` = '{value}'",
                                   order_by=["attributes.start_time DESC"]))


def link_model(uri: str, run_id: str, ref: str, metrics: dict[str, Any] | None = None) -> None:
    """Tag an MLflow run with the registry version it became, and log that version's test metrics."""
    from mlflow.entities import Metric

    client = mlflow_client(uri)
    client.set_tag(run_id, MODEL_VERSION_TAG, ref)
    now = int(time.time() * 1000)
    numbers = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()
               if k.startswith("test_") and isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers:
        client.log_batch(run_id, metrics=numbers)


class RunTracker:
    """A :class:`raytag.train.progress.TrainListener` that records a training run in MLflow and TensorBoard.

    Call :meth:`finished` with the registered version, or :meth:`failed`, at the end.
    """

    def __init__(self, job: JobConfig) -> None:
        self.job = job
        self.uri = tracking_uri(job) if job.tracking.mlflow else None
        self.experiment = job.tracking.experiment or job.name
        self.run_id: str | None = None
        self.tensorboard_dir: Path | None = None
        self._writer: Any = None

    def run_started(self, run: RunInfo) -> None:
        if self.uri is not None:
            self.run_id = self._mlflow_run(run)
        if self.job.tracking.tensorboard:
            from tensorboardX import SummaryWriter

            self.tensorboard_dir = tensorboard_root(self.job) / run.key
            if not run.resumed:  # events of a deleted run of this key would mix with the new ones
                shutil.rmtree(self.tensorboard_dir, ignore_errors=True)
            # Event files are named by the second they open in: a resumed run's must not replace the earlier one.
            self._writer = SummaryWriter(logdir=str(self.tensorboard_dir), filename_suffix=f".{uuid.uuid4().hex[:8]}")

    def _mlflow_run(self, run: RunInfo) -> str:
        client = mlflow_client(self.uri or "")
        if run.resumed:
            for earlier in find_runs(self.uri or "", self.experiment, RUN_KEY_TAG, run.key)[:1]:
                if earlier.info.status != "FINISHED":
                    client.update_run(earlier.info.run_id, status="RUNNING")
                    return earlier.info.run_id
        created = client.create_run(experiment_id(client, self.experiment), run_name=run.key, tags={
            RUN_KEY_TAG: run.key, "raytag.job": self.job.name, "raytag.run_dir": run.run_dir,
            "raytag.model_kind": self.job.model.kind,
        })
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flat_params(resolved(self.job)).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            client.log_batch(created.info.run_id, params=params[start:start + 100])
        return created.info.run_id

    def epoch_ended(self, report: EpochReport) -> None:
        values = {k: v for k, v in report.metrics.items() if k != "epoch"}
        if self.run_id is not None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            mlflow_client(self.uri or "").log_batch(
                self.run_id, metrics=[Metric(k, v, now, report.epoch) for k, v in values.items()])
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, value, report.epoch)
            self._writer.flush()

    def finished(self, ref: str | None = None, metrics: dict[str, Any] | None = None) -> None:
        """End the run as finished; ``ref`` (``name@vN``) is the version it was registered as."""
        if self.run_id is not None:
            if ref is not None:
                link_model(self.uri or "", self.run_id, ref, metrics)
            mlflow_client(self.uri or "").set_terminated(self.run_id, "FINISHED")
        self._close()

    def failed(self) -> None:
        if self.run_id is not None:
            try:
                mlflow_client(self.uri or "").set_terminated(self.run_id, "FAILED")
            except Exception:  # noqa: BLE001 - the training error is the one to report
                logger.warning("could not mark MLflow run %s failed", self.run_id, exc_info=True)
        self._close()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
