"""What the driver learns while a training run goes: the run it is, then each epoch's metrics.

Listeners (the CLI's progress display, the experiment tracker) implement
:class:`TrainListener`; :func:`raytag.train.run.train` calls them on the driver, fed by
:mod:`raytag.train.relay` from Ray Train's controller. Plain Python, no Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class RunInfo:
    """A run about to start: its key (``<job>-<hash>``), directory, and how it starts."""

    job: Any  # raytag.config.JobConfig (typed loosely: pydantic models in frozen dataclasses)
    key: str
    run_dir: str
    # Continues from an earlier attempt's checkpoint.
    resumed: bool = False
    # An earlier run of the same key was deleted (``--fresh``) to start over.
    restarted: bool = False


@dataclass(frozen=True)
class EpochReport:
    """One epoch's report as every worker made it (rank 0's numbers), normalised across model kinds."""

    epoch: int
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None

    @property
    def train_loss(self) -> float | None:
        return self.metrics.get("train_loss")


class TrainListener(Protocol):
    def run_started(self, run: RunInfo) -> None: ...

    def epoch_ended(self, report: EpochReport) -> None: ...


def epoch_report(raw: dict[str, Any], epochs: int, steps_per_epoch: int | None, count: int,
                 checkpoint: str | None = None) -> EpochReport:
    """An :class:`EpochReport` from the metrics a worker passed to ``ray.train.report``.

    The BiLSTM loop reports ``epoch`` (1-based) and ``train_loss``; the Hugging Face
    Trainer reports its fractional ``epoch``, ``step`` and ``loss``. ``count`` (reports
    seen so far, this one included) is the epoch when neither says.
    """
    epoch = raw.get("epoch")
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        number = epoch
    elif steps_per_epoch and isinstance(raw.get("step"), (int, float)):
        number = round(raw["step"] / steps_per_epoch)
    elif isinstance(epoch, float) and math.isfinite(epoch):
        number = round(epoch)
    else:
        number = count
    metrics = {k: float(v) for k, v in raw.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
    if "train_loss" not in metrics and "loss" in metrics:
        metrics["train_loss"] = metrics.pop("loss")
    metrics["epoch"] = float(number)
    return EpochReport(number, epochs, metrics, checkpoint)
