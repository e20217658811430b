"""Evaluation metrics, text reports and plots for sequence taggers.

Entity tag sets are scored with :mod:`seqeval` in its default mode, which is
conlleval-compatible: a stray ``I-X`` opens an entity and an entity counts as
correct only when its type and both boundaries match exactly.  Plain tag sets
(POS) are scored per token.

Plots draw on :class:`matplotlib.figure.Figure` with an explicit Agg canvas so
that importing or using this module never switches pyplot's global backend;
matplotlib itself is imported lazily because serving code imports this module
without plotting anything.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "confusion_matrix",
    "entity_report",
    "evaluation_report",
    "format_report",
    "plot_confusion_matrix",
    "plot_curves",
    "save_report",
    "token_report",
]


def _check_aligned(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]
) -> tuple[list[list[str]], list[list[str]]]:
    """Copy both inputs to lists of lists, raising on any length mismatch."""
    if isinstance(y_true, str) or isinstance(y_pred, str):
        raise TypeError("y_true and y_pred must be sequences of tag sequences, not strings")
    y_true = [list(s) for s in y_true]
    y_pred = [list(s) for s in y_pred]
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true has {len(y_true)} sentences but y_pred has {len(y_pred)}"
        )
    if not y_true:
        raise ValueError("cannot evaluate zero sentences")
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        if len(t) != len(p):
            raise ValueError(
                f"sentence {i}: y_true has {len(t)} tags but y_pred has {len(p)}"
            )
    return y_true, y_pred


def _token_accuracy(y_true: list[list[str]], y_pred: list[list[str]]) -> tuple[float, int]:
    total = sum(len(s) for s in y_true)
    correct = sum(t == p for ts, ps in zip(y_true, y_pred) for t, p in zip(ts, ps))
    return (correct / total if total else 0.0), total


def _finite(x: Any) -> float:
    # seqeval's macro average is NaN when no entity type occurs at all; JSON
    # has no NaN, and 0.0 is what "nothing found of nothing" scores elsewhere.
    x = float(x)
    return x if math.isfinite(x) else 0.0


def _prf(row: dict) -> dict:
    return {
        "precision": _finite(row["precision"]),
        "recall": _finite(row["recall"]),
        "f1": _finite(row["f1-score"]),
        "support": int(row["support"]),
    }


def entity_report(y_true: list[list[str]], y_pred: list[list[str]]) -> dict:
    """Entity-level precision/recall/F1 per type plus micro/macro averages (seqeval).

    Also reports token accuracy.  Raises ``ValueError`` when the inputs do not
    line up sentence by sentence.
    """
    from seqeval.metrics import classification_report

    y_true, y_pred = _check_aligned(y_true, y_pred)
    with warnings.catch_warnings():
        # Empty averages warn through numpy; _finite() handles the NaN they give.
        warnings.simplefilter("ignore", RuntimeWarning)
        raw = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    accuracy, n_tokens = _token_accuracy(y_true, y_pred)
    averages = {"micro avg", "macro avg", "weighted avg"}
    micro = _prf(raw["micro avg"])
    return {
        "kind": "entity",
        "score": micro["f1"],
        "micro": micro,
        "macro": _prf(raw["macro avg"]),
        "weighted": _prf(raw["weighted avg"]),
        "per_type": {k: _prf(v) for k, v in sorted(raw.items()) if k not in averages},
        "token_accuracy": accuracy,
        "num_sentences": len(y_true),
        "num_tokens": n_tokens,
    }


def token_report(y_true: list[list[str]], y_pred: list[list[str]]) -> dict:
    """Token accuracy and per-gold-tag accuracy (recall) with support, for plain tag sets."""
    y_true, y_pred = _check_aligned(y_true, y_pred)
    accuracy, n_tokens = _token_accuracy(y_true, y_pred)
    support: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for ts, ps in zip(y_true, y_pred):
        for t, p in zip(ts, ps):
            support[t] += 1
            correct[t] += t == p
    per_tag = {
        tag: {"accuracy": correct[tag] / support[tag], "support": support[tag]}
        for tag in sorted(support)
    }
    return {
        "kind": "plain",
        "score": accuracy,
        "token_accuracy": accuracy,
        "per_tag": per_tag,
        "num_sentences": len(y_true),
        "num_tokens": n_tokens,
    }


def evaluation_report(
    y_true: list[list[str]], y_pred: list[list[str]], entity: bool
) -> dict:
    """:func:`entity_report` when ``entity`` else :func:`token_report`."""
    return entity_report(y_true, y_pred) if entity else token_report(y_true, y_pred)


def headline_metrics(report: dict[str, Any], prefix: str) -> dict[str, float]:
    """The few numbers a run reports and a registry entry shows: score, accuracy, and F1/P/R on entities."""
    out = {f"{prefix}_score": float(report["score"]), f"{prefix}_accuracy": float(report["token_accuracy"])}
    if report["kind"] == "entity":
        for key in ("f1", "precision", "recall"):
            out[f"{prefix}_{key}"] = float(report["micro"][key])
    return out


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """NaN and infinities as 0.0: Ray Train and Tune compare these numbers to pick checkpoints."""
    return {k: (v if math.isfinite(v) else 0.0) for k, v in metrics.items()}


def format_report(report: dict) -> str:
    """Render a report from :func:`evaluation_report` as a plain-text table."""
    kind = report.get("kind")
    lines = [
        f"kind: {kind}   score: {report['score']:.4f}   "
        f"token accuracy: {report['token_accuracy']:.4f}",
        f"sentences: {report['num_sentences']}   tokens: {report['num_tokens']}",
        "",
    ]
    if kind == "entity":
        rows = list(report["per_type"].items())
        width = max([len(k) for k, _ in rows] + [len("weighted avg")])
        header = (
            f"{'type':<{width}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'support':>8}"
        )
        lines += [header, "-" * len(header)]

        def row(name: str, r: dict) -> str:
            return (
                f"{name:<{width}}  {r['precision']:>9.4f}  {r['recall']:>9.4f}  "
                f"{r['f1']:>9.4f}  {r['support']:>8d}"
            )

        lines += [row(k, r) for k, r in rows]
        lines.append("-" * len(header))
        averages = [k for k in ("micro", "macro", "weighted") if k in report]
        lines += [row(f"{k} avg", report[k]) for k in averages]
    elif kind == "plain":
        rows = list(report["per_tag"].items())
        width = max([len(k) for k, _ in rows] + [len("tag")])
        header = f"{'tag':<{width}}  {'accuracy':>9}  {'support':>8}"
        lines += [header, "-" * len(header)]
        lines += [f"{k:<{width}}  {r['accuracy']:>9.4f}  {r['support']:>8d}" for k, r in rows]
    else:
        raise ValueError(f"unknown report kind {kind!r}; expected 'entity' or 'plain'")
    return "\n".join(lines) + "\n"


def confusion_matrix(
    y_true: list[list[str]], y_pred: list[list[str]], labels: Sequence[str]
) -> np.ndarray:
    """Token-level counts ``[gold, predicted]`` in the order of ``labels``."""
    y_true, y_pred = _check_aligned(y_true, y_pred)
    index = {label: i for i, label in enumerate(labels)}
    if len(index) != len(labels):
        raise ValueError("labels contains duplicates")
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for i, (ts, ps) in enumerate(zip(y_true, y_pred)):
        for t, p in zip(ts, ps):
            if t not in index or p not in index:
                missing = t if t not in index else p
                raise ValueError(f"sentence {i}: tag {missing!r} is not in labels")
            matrix[index[t], index[p]] += 1
    return matrix


def _new_figure(figsize: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Constrained layout fits long tick labels without the second render that
    # savefig(bbox_inches="tight") costs.
    fig = Figure(figsize=figsize, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_confusion_matrix(
    matrix: np.ndarray, labels: Sequence[str], path: str | Path
) -> Path:
    """Save a row-normalised confusion-matrix heatmap annotated with raw counts."""
    matrix = np.asarray(matrix)
    labels = list(labels)
    n = len(labels)
    if matrix.shape != (n, n):
        raise ValueError(f"matrix shape {matrix.shape} does not match {n} labels")
    row_sums = matrix.sum(axis=1, keepdims=True)
    # Rows of tags absent from the gold data stay 0 instead of dividing by zero.
    norm = np.divide(
        matrix, row_sums, out=np.zeros(matrix.shape, dtype=float), where=row_sums > 0
    )

    side = max(5.0, 0.6 * n + 2.0)
    fig = _new_figure((side + 1.0, side))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of gold row")
    ticks = np.arange(n)
    ax.set_xticks(ticks, labels=labels, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("Confusion matrix (row-normalised, counts in cells)")
    # Shrink counts as the grid grows so 17+ labels with 4-5 digit counts fit.
    fontsize = max(5.0, min(10.0, 140.0 / max(n, 1)))
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(
                    j, i, str(int(matrix[i, j])), ha="center", va="center",
                    fontsize=fontsize, color="white" if norm[i, j] > 0.5 else "black",
                )
    return _save(fig, path)


def plot_curves(history: list[dict], path: str | Path) -> Path:
    """Save per-epoch training curves: loss (``loss`` or ``train_loss``, ``val_loss``) and dev_f1/dev_accuracy panels.

    Each history entry is one epoch's metrics keyed by name, with ``epoch``;
    entries without ``epoch`` are numbered by position (1-based).  Metrics
    missing from some epochs are left as gaps.
    """
    history = list(history)
    if not history:
        raise ValueError("history is empty; nothing to plot")
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]

    def series(key: str) -> list[float] | None:
        if not any(h.get(key) is not None for h in history):
            return None
        return [float(h[key]) if h.get(key) is not None else math.nan for h in history]

    from matplotlib.ticker import MaxNLocator

    fig = _new_figure((11.0, 4.0))
    panels = (
        (fig.add_subplot(1, 2, 1), ("loss", "train_loss", "val_loss"), "loss"),
        (fig.add_subplot(1, 2, 2), ("dev_f1", "dev_accuracy"), "dev metric"),
    )
    for ax, keys, ylabel in panels:
        plotted = False
        for key in keys:
            values = series(key)
            if values is not None:
                ax.plot(epochs, values, marker="o", label=key)
                plotted = True
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {' / '.join(keys)} recorded", ha="center",
                    va="center", transform=ax.transAxes)
    fig.suptitle("Training curves")
    return _save(fig, path)


def save_report(report: dict, directory: str | Path) -> dict[str, Path]:
    """Write ``report.json`` and ``report.txt`` under ``directory``; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "report.json", "txt": directory / "report.txt"}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    paths["txt"].write_text(format_report(report), encoding="utf-8")
    return paths
