"""What a search produced: the best trial's outcome and the table of every trial."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raytag.tune_config import SearchConfig

__all__ = ["EARLY_STOPPED", "ERROR", "FINISHED", "NO_RESULT", "SearchOutcome", "results_table", "trial_id",
           "trial_status"]

# Status of a trial in the results table.
FINISHED, EARLY_STOPPED, ERROR, NO_RESULT = "finished", "early-stopped", "error", "no result"


@dataclass
class SearchOutcome:
    directory: str
    table: Any  # pandas DataFrame: one row per trial
    best_params: dict[str, Any]
    best_metrics: dict[str, Any]
    best_job_file: Path
    registered: Any = None
    restored: bool = False
    best_trial: str = ""
    aliases: tuple[str, ...] = ()


def trial_id(result: Any) -> str:
    """Tune's id of a trial (``a1b2c_00003``), else its directory name."""
    found = (result.metrics or {}).get("trial_id")
    return str(found) if found else str(result.path).rstrip("/").rsplit("/", 1)[-1]


def trial_status(epochs: int, planned_epochs: int, errored: bool) -> str:
    """``finished`` (every planned epoch ran), ``early-stopped`` (fewer: ASHA stopped it, or
    the job's own early stopping), ``error`` or ``no result``."""
    if errored:
        return ERROR
    if epochs == 0:
        return NO_RESULT
    return FINISHED if epochs >= planned_epochs else EARLY_STOPPED


def results_table(grid: Any, cfg: SearchConfig, planned_epochs: int, best: Any = None) -> Any:
    """One row per trial, best first: id, parameters, epochs run, best and last metric,
    status and whether it is the trial the search picked (``best``)."""
    import pandas as pd

    rows = []
    for result in grid:
        history = result.metrics_dataframe
        values = history[cfg.metric].dropna() if history is not None and cfg.metric in history else []
        top = (max(values) if cfg.mode == "max" else min(values)) if len(values) else float("nan")
        planned = int(result.config.get("train.epochs", planned_epochs))
        rows.append({
            "trial": trial_id(result),
            **{k: result.config.get(k) for k in cfg.space},
            "epochs": len(values),
            f"best_{cfg.metric}": top,
            f"last_{cfg.metric}": float(values.iloc[-1]) if len(values) else float("nan"),
            "status": trial_status(len(values), planned, bool(result.error)),
            "best": best is not None and trial_id(result) == trial_id(best),
        })
    table = pd.DataFrame(rows)
    return table.sort_values(f"best_{cfg.metric}", ascending=cfg.mode == "min",
                             na_position="last").reset_index(drop=True)
