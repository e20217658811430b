"""The results table ``raytag tune`` prints: one row per trial, readable in 80 columns.

Parameters are headed by the last part of their dotted key (``learning_rate`` for
``train.learning_rate``) unless two keys share it; values keep 3 significant digits;
trial ids lose the prefix every trial of the search shares. The full table, with
whole keys and ids, is saved as ``results.csv``.
"""

from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.table import Table

BEST_MARK = "★"


def _short_keys(keys: list[str]) -> dict[str, str]:
    last = [k.rsplit(".", 1)[-1] for k in keys]
    # Underscores become spaces so a narrow terminal can wrap a header between words.
    return {k: (short if last.count(short) == 1 else k).replace("_", " ") for k, short in zip(keys, last, strict=True)}


def _short_ids(ids: list[str]) -> dict[str, str]:
    """``a1b2c_00003`` → ``00003`` when every trial shares ``a1b2c_`` (one search's trials do)."""
    prefixes = {i.rpartition("_")[0] for i in ids}
    if len(prefixes) == 1 and all("_" in i for i in ids):
        return {i: i.rpartition("_")[2] for i in ids}
    return {i: i for i in ids}


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _score(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def results_view(table: Any, metric: str, title: str, space: list[str], width: int = 80) -> Table:
    """A rich table of ``tune.results_table``'s frame: best trial first and marked ★.

    Parameters get a column each while they fit in ``width``; otherwise one column holds
    every trial's ``name=value`` lines, so no value is ever cut.
    """
    # Narrow gaps (one padding space beside the box's blank separator) leave room for the values.
    view = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, title_justify="left",
                 caption=f"{BEST_MARK} picked and registered · early-stopped: ended before its last epoch "
                         "(ASHA, or the job's early stopping)",
                 caption_justify="left")
    rows = table.to_dict("records")
    headers = _short_keys(space)
    cells = {key: [_cell(row.get(key)) for row in rows] for key in space}
    ids = _short_ids([str(t) for t in table["trial"]])
    # Fixed columns: trial, epochs, best, last, status, and two characters between columns.
    fixed = max((len(i) for i in ids.values()), default=5) + 2 + 6 + 6 + 6 + len("early-stopped") + 2 * 5
    needed = sum(max([len(w) for w in headers[k].split()] + [len(c) for c in cells[k]]) + 2 for k in space)
    stacked = fixed + needed > width
    view.add_column("trial", no_wrap=True)
    if stacked:
        view.add_column("parameters", no_wrap=True)
    else:
        for key in space:
            view.add_column(headers[key], justify="right")
    view.add_column("epochs", justify="right")
    view.add_column("best", justify="right")
    view.add_column("last", justify="right")
    view.add_column("status", no_wrap=True)
    for index, row in enumerate(rows):
        best = bool(row.get("best"))
        values = [cells[key][index] for key in space]
        if stacked:
            values = ["\n".join(f"{headers[k].replace(' ', '_')}={v}" for k, v in zip(space, values, strict=True))]
        view.add_row(
            f"{BEST_MARK if best else ' '} {ids[str(row['trial'])]}",
            *values,
            str(row["epochs"]),
            _score(row[f"best_{metric}"]),
            _score(row[f"last_{metric}"]),
            str(row["status"]),
            style="bold green" if best else None,
            end_section=stacked,  # a blank line between trials that take several lines
        )
    return view
