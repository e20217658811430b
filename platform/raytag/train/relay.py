"""Epoch reports from Ray Train's controller to listeners on the driver, as they happen.

Ray Train V2 calls run callbacks in its controller actor, not in the driver that
called ``fit()``, and ``fit()`` returns only when the run ends. :class:`EpochRelay`
puts every report on a Ray queue (a zero-CPU actor) and :func:`relayed` drains it on a
driver thread into the listeners: the same route Ray's own ``TuneReportCallback`` takes
into a Tune trial.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ray.train import UserCallback

from raytag.train.progress import TrainListener, epoch_report

logger = logging.getLogger(__name__)
POLL_S = 0.5


class EpochRelay(UserCallback):
    """Runs in the controller: forwards rank 0's metrics and the checkpoint path of each report."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        self.queue.put({"metrics": dict(metrics[0]) if metrics else {},
                        "checkpoint": checkpoint.path if checkpoint is not None else None})


@contextmanager
def relayed(listeners: Sequence[TrainListener], epochs: int, steps_per_epoch: int | None) -> Iterator[EpochRelay]:
    """An :class:`EpochRelay` for the run config while a driver thread feeds ``listeners``.

    On exit every report already queued is delivered before the queue actor goes.
    A listener that raises is logged and skipped: progress output never fails a run.
    """
    from ray.util.queue import Empty, Queue

    queue = Queue(actor_options={"num_cpus": 0})
    done = threading.Event()
    seen = 0

    def deliver(item: dict[str, Any]) -> None:
        nonlocal seen
        seen += 1
        report = epoch_report(item["metrics"], epochs, steps_per_epoch, seen, item["checkpoint"])
        for listener in listeners:
            try:
                listener.epoch_ended(report)
            except Exception:  # noqa: BLE001 - see the docstring
                logger.warning("progress listener %s failed", type(listener).__name__, exc_info=True)

    def pump() -> None:
        while True:
            try:
                item = queue.get(timeout=POLL_S)
            except Empty:
                if done.is_set():
                    return
                continue
            except Exception:  # noqa: BLE001 - the queue actor is gone (Ray shutting down)
                return
            deliver(item)

    thread = threading.Thread(target=pump, name="raytag-epoch-relay", daemon=True)
    thread.start()
    try:
        yield EpochRelay(queue)
    finally:
        done.set()
        thread.join(timeout=30)
        queue.shutdown()
