"""Ray Tune callbacks of a search: progress to a driver-side listener, trials to MLflow.

Both run in the process that calls ``Tuner.fit()``. Tune pickles its run config, these
callbacks included, to restore a search, so they hold plain data only: the live
listener is looked up at call time (:func:`listening`), never pickled.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.tune import Callback

from raytag.tracking import TRIAL_ID_TAG, find_runs, mlflow_client
from raytag.train.progress import EpochReport, epoch_report


class TrialListener(Protocol):
    def trial_epoch(self, trial: str, report: EpochReport) -> None: ...

    def trial_ended(self, trial: str, status: str) -> None: ...


_LISTENER: TrialListener | None = None


@contextmanager
def listening(listener: TrialListener | None) -> Iterator[None]:
    """Route :class:`TrialProgress` events to ``listener`` while the search runs."""
    global _LISTENER
    kept, _LISTENER = _LISTENER, listener
    try:
        yield
    finally:
        _LISTENER = kept


class TrialProgress(Callback):
    """Each trial's epoch reports and its end, to the listener of :func:`listening`."""

    def __init__(self, epochs: int, steps_per_epoch: int | None) -> None:
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if _LISTENER is None:
            return
        epochs = int(trial.config.get("train.epochs", self.epochs))
        count = int(result.get("training_iteration", 0))
        _LISTENER.trial_epoch(trial.trial_id, epoch_report(result, epochs, self.steps_per_epoch, count))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _LISTENER is not None:
            _LISTENER.trial_ended(trial.trial_id, "ended")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _LISTENER is not None:
            _LISTENER.trial_ended(trial.trial_id, "failed")


class TrialTracker(MLflowLoggerCallback):
    """Ray's MLflow logger, with each trial's whole resolved job as its params.

    ``base_params`` is the base job (search overrides applied) flattened; a trial's own
    point of the space (dotted job keys) and its run name override it. Every run is
    tagged with its trial id, so the registered best trial can be found afterwards, and
    a restored search continues the runs of its trials.
    """

    def __init__(self, tracking_uri: str, experiment_name: str, base_params: dict[str, str], search_name: str,
                 tags: dict[str, str] | None = None) -> None:
        super().__init__(tracking_uri=tracking_uri, experiment_name=experiment_name, tags=tags)
        self.base_params = base_params
        self.search_name = search_name

    def log_trial_start(self, trial: Any) -> None:
        if trial in self._trial_runs:
            return
        # A restored search re-runs its unfinished trials: each continues its own MLflow run.
        for earlier in find_runs(self.tracking_uri, self.experiment_name, TRIAL_ID_TAG, trial.trial_id)[:1]:
            self._trial_runs[trial] = earlier.info.run_id
            mlflow_client(self.tracking_uri).update_run(earlier.info.run_id, status="RUNNING")
            return
        name = f"{self.search_name}-{trial.trial_id}"
        tags = {**self.tags, "trial_name": str(trial), TRIAL_ID_TAG: trial.trial_id}
        run = self.mlflow_util.start_run(tags=tags, run_name=name)
        self._trial_runs[trial] = run.info.run_id
        params = {**self.base_params, **{k: str(v) for k, v in trial.config.items()}, "name": name}
        self.mlflow_util.log_params(run_id=run.info.run_id, params_to_log=params)
