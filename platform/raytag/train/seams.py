"""Hooks that let tests break or observe a training run; the CLI never sets them.

They travel to the workers inside :class:`raytag.train.adapter.WorkerRun`, so no
other signature needs to know about them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Fault:
    """Kill worker ``rank`` once, at the start of ``epoch`` (BiLSTM) or after optimisation ``step``
    (transformer); ``marker`` records that it happened, so the restarted worker lives."""

    marker: str
    rank: int = 0
    epoch: int | None = None
    step: int | None = None
    # Seconds to live on first: a worker that exits right after reporting takes its last,
    # not yet collected report (and that checkpoint's registration) with it; Ray Train
    # collects reports every couple of seconds.
    delay_s: float = 0.0


@dataclass(frozen=True)
class Seams:
    fault: Fault | None = None
    # Every replica writes a digest of its weights here after every epoch.
    debug_dir: str | None = None

    def maybe_fail(self, rank: int, *, epoch: int | None = None, step: int | None = None) -> None:
        """Exit this worker process if the fault is due here and has not happened yet."""
        fault = self.fault
        if fault is None or rank != fault.rank:
            return
        if (epoch is None or epoch != fault.epoch) and (step is None or step != fault.step):
            return
        marker = Path(fault.marker)
        if marker.exists():
            return
        when = f"at epoch {epoch}" if epoch is not None else f"after step {step}"
        marker.write_text(f"worker {rank} killed {when}\n")
        if fault.delay_s:
            import time

            time.sleep(fault.delay_s)
        os._exit(1)

    def record_weights(self, weights: Iterable[Any], rank: int, epoch: int) -> None:
        """Write a digest of this replica's weights (tests compare replicas with it)."""
        if not self.debug_dir:
            return
        import numpy as np

        digest = hashlib.sha256()
        for weight in weights:
            digest.update(np.ascontiguousarray(weight).tobytes())
        Path(self.debug_dir, f"weights-rank{rank}-epoch{epoch}.sha256").write_text(digest.hexdigest())
