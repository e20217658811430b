"""Progress on the console: rich bars on a terminal, one plain line per event otherwise.

On a terminal each epoch is printed above a live bar; in a log file or a pipe (a Ray
job's logs, CI) every epoch is one line that reads the same as on the terminal::

    epoch 2/5  train_loss=0.2314  dev_f1=0.7812  dev_precision=0.7700  dev_recall=0.7927  dev_accuracy=0.9512  41.3s
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from raytag.train.progress import EpochReport, RunInfo

# The metrics an epoch line shows, in this order, when the report has them.
SHOWN = ("train_loss", "dev_f1", "dev_precision", "dev_recall", "dev_accuracy")


def epoch_line(report: EpochReport, prefix: str = "") -> str:
    """One epoch as one line: ``[prefix]epoch E/N  key=value ...  seconds``."""
    parts = [f"{prefix}epoch {report.epoch}/{report.epochs}"]
    parts += [f"{key}={report.metrics[key]:.4f}" for key in SHOWN if key in report.metrics]
    if "epoch_seconds" in report.metrics:
        parts.append(f"{report.metrics['epoch_seconds']:.1f}s")
    return "  ".join(parts)


def _summary(report: EpochReport) -> str:
    return "  ".join(f"{key}={report.metrics[key]:.4f}" for key in ("train_loss", "dev_score") if key in report.metrics)


class _Display:
    """A rich progress display on a terminal, nothing live elsewhere; a context manager."""

    def __init__(self, console: Console, *columns: Any) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(*columns, console=console, transient=False) if self.live else None

    def __enter__(self) -> _Display:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()

    def line(self, text: str) -> None:
        """A line above the bars on a terminal; a plain line elsewhere."""
        self.console.print(escape(text), highlight=False, soft_wrap=True)


def _epoch_columns() -> tuple[Any, ...]:
    return (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("epochs"), TimeElapsedColumn(), TextColumn("{task.fields[summary]}"))


class EpochDisplay(_Display):
    """Progress of one training run (a :class:`raytag.train.progress.TrainListener`)."""

    def __init__(self, console: Console) -> None:
        super().__init__(console, *_epoch_columns())
        self.task: TaskID | None = None

    def run_started(self, run: RunInfo) -> None:
        how = "resuming" if run.resumed else "training"
        self.line(f"{how} run {run.key} ({run.run_dir})")
        if self.progress is not None:
            self.task = self.progress.add_task(run.key, total=run.job.train.epochs, summary="")

    def epoch_ended(self, report: EpochReport) -> None:
        self.line(epoch_line(report))
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=report.epoch, summary=_summary(report))


class TrialDisplay(_Display):
    """Progress of a search: a bar per trial on a terminal, a line per trial epoch elsewhere."""

    def __init__(self, console: Console) -> None:
        super().__init__(console, *_epoch_columns())
        self.tasks: dict[str, TaskID] = {}

    def trial_epoch(self, trial: str, report: EpochReport) -> None:
        self.line(epoch_line(report, prefix=f"trial {trial}  "))
        if self.progress is None:
            return
        if trial not in self.tasks:
            self.tasks[trial] = self.progress.add_task(f"trial {trial}", total=report.epochs, summary="")
        self.progress.update(self.tasks[trial], completed=report.epoch, summary=_summary(report))

    def trial_ended(self, trial: str, status: str) -> None:
        self.line(f"trial {trial}  {status}")
        if self.progress is not None and trial in self.tasks:
            self.progress.update(self.tasks[trial], summary=status)


class BatchDisplay(_Display):
    """Progress of batch prediction over ``files`` input files: a bar on a terminal, a line per shard elsewhere.

    Fed :class:`raytag.batch_predict.BatchSummary` after every written shard.
    """

    def __init__(self, console: Console, files: int) -> None:
        super().__init__(console, SpinnerColumn(), TextColumn("tagging"), BarColumn(), MofNCompleteColumn(),
                         TextColumn("files"), TimeElapsedColumn(), TextColumn("{task.fields[summary]}"))
        self.files = files
        self.shards = 0
        self.task = self.progress.add_task("tagging", total=files, summary="") if self.progress is not None else None

    def update(self, summary: Any) -> None:
        new = summary.shards[self.shards:]
        self.shards = len(summary.shards)
        # Shards are named part-<file>-<row> after their first record, in input order:
        # every file before the newest shard's is done.
        files_done = int(new[-1].split("-")[1]) if new else None
        totals = f"{summary.rows:,} rows  {summary.rejects:,} rejects  {summary.words_per_second:,.0f} words/s"
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, summary=totals, **({"completed": files_done} if files_done else {}))
        else:
            self.line(f"{new[-1] if new else '(rejects only)'}  {totals}")

    def finish(self, summary: Any) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=self.files)
