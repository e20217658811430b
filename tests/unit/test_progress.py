"""Progress output: epoch reports from either model kind, the plain epoch line, the displays off a terminal,
and streamed job logs (no Ray: fakes)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from raytag import jobs
from raytag.cli.progress import BatchDisplay, EpochDisplay, TrialDisplay, epoch_line
from raytag.config import JobConfig
from raytag.train.progress import EpochReport, RunInfo, epoch_report

KERAS = {"epoch": 2, "train_loss": 0.23141, "dev_score": 0.78123, "dev_f1": 0.78123, "dev_precision": 0.77,
         "dev_recall": 0.79271, "dev_accuracy": 0.95118, "dev_f1_argmax": 0.75, "epoch_seconds": 41.26}


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200), out


def test_the_bilstm_report_keeps_its_epoch_and_metrics():
    report = epoch_report(KERAS, epochs=5, steps_per_epoch=None, count=1, checkpoint="/c/1")
    assert (report.epoch, report.epochs, report.checkpoint) == (2, 5, "/c/1")
    assert report.train_loss == pytest.approx(0.23141) and report.metrics["dev_f1_argmax"] == 0.75


def test_the_transformer_report_is_normalised():
    # What RayTrainReportCallback reports: the Trainer's merged logs, fractional epoch, step, "loss".
    hf = {"loss": 0.5, "grad_norm": 1.2, "learning_rate": 1e-5, "epoch": 2.0, "step": 80, "dev_f1": 0.6,
          "dev_score": 0.6, "run_name": "x", "nan_metric": float("nan")}
    report = epoch_report(hf, epochs=3, steps_per_epoch=None, count=9)
    assert report.epoch == 2 and report.train_loss == 0.5 and "loss" not in report.metrics
    assert "run_name" not in report.metrics and "nan_metric" not in report.metrics
    # With max_steps_per_epoch the Trainer's epoch counts data passes, not our epochs: the step decides.
    assert epoch_report({**hf, "epoch": 0.37}, epochs=3, steps_per_epoch=40, count=9).epoch == 2
    assert epoch_report({"dev_score": 0.1}, epochs=3, steps_per_epoch=None, count=3).epoch == 3


def test_the_plain_epoch_line():
    report = epoch_report(KERAS, epochs=5, steps_per_epoch=None, count=1)
    assert epoch_line(report) == ("epoch 2/5  train_loss=0.2314  dev_f1=0.7812  dev_precision=0.7700  "
                                  "dev_recall=0.7927  dev_accuracy=0.9512  41.3s")
    plain = EpochReport(1, 3, {"train_loss": 1.0, "dev_accuracy": 0.5})
    assert epoch_line(plain, prefix="trial a_00001  ") == "trial a_00001  epoch 1/3  train_loss=1.0000  dev_accuracy=0.5000"


def test_off_a_terminal_training_prints_one_line_per_epoch_and_no_bar(tmp_path):
    console, out = _console()
    job = JobConfig(name="ner", corpus={"format": "conll", "path": "c"})
    with EpochDisplay(console) as display:
        assert display.progress is None
        display.run_started(RunInfo(job, "ner-0123abcd", str(tmp_path / "ner-0123abcd"), resumed=True))
        for epoch in (2, 3):
            display.epoch_ended(epoch_report({**KERAS, "epoch": epoch}, 3, None, epoch - 1))
    lines = out.getvalue().splitlines()
    assert lines[0] == f"resuming run ner-0123abcd ({tmp_path / 'ner-0123abcd'})"
    assert [line.split("  ")[0] for line in lines[1:]] == ["epoch 2/3", "epoch 3/3"]
    assert len(lines) == 3  # nothing else: no bar, no escape codes
    assert "\x1b" not in out.getvalue()


def test_on_a_terminal_the_epoch_lines_stay_above_a_bar(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    job = JobConfig(name="ner", corpus={"format": "conll", "path": "c"})
    with EpochDisplay(console) as display:
        display.run_started(RunInfo(job, "ner-0123abcd", "/r"))
        display.epoch_ended(epoch_report(KERAS, 5, None, 1))
        assert display.progress is not None
        task = display.progress.tasks[0]
        assert (task.total, task.completed) == (5, 2)
    assert "epoch 2/5" in out.getvalue()


def test_a_search_prints_each_trial_epoch_and_end():
    console, out = _console()
    with TrialDisplay(console) as display:
        display.trial_epoch("a_00000", EpochReport(1, 2, {"train_loss": 0.9, "dev_f1": 0.1}))
        display.trial_epoch("a_00001", EpochReport(1, 2, {"train_loss": 0.8, "dev_f1": 0.2}))
        display.trial_ended("a_00001", "ended")
    assert out.getvalue().splitlines() == [
        "trial a_00000  epoch 1/2  train_loss=0.9000  dev_f1=0.1000",
        "trial a_00001  epoch 1/2  train_loss=0.8000  dev_f1=0.2000",
        "trial a_00001  ended",
    ]


def test_batch_prediction_prints_a_line_per_shard():
    console, out = _console()
    summary = SimpleNamespace(shards=["part-00000-0000000000.jsonl"], rows=4, rejects=1, words_per_second=1234.4)
    with BatchDisplay(console, files=3) as display:
        display.update(summary)
        summary.shards.append("part-00002-0000000000.jsonl")
        summary.rows = 9
        display.update(summary)
        display.update(summary)  # a batch of rejects only: no new shard
    assert out.getvalue().splitlines() == [
        "part-00000-0000000000.jsonl  4 rows  1 rejects  1,234 words/s",
        "part-00002-0000000000.jsonl  9 rows  1 rejects  1,234 words/s",
        "(rejects only)  9 rows  1 rejects  1,234 words/s",
    ]


class FakeJobClient:
    """Logs arrive in pieces while the job runs; the status turns final a moment after the stream ends."""

    def __init__(self) -> None:
        self.statuses = ["RUNNING", "SUCCEEDED"]

    async def tail_job_logs(self, submission_id: str):
        for piece in ("epoch 1/2  train_loss=1.0\n", "epoch 2/2  train_loss=0.5\n"):
            yield piece

    def get_job_status(self, submission_id: str):
        return SimpleNamespace(value=self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0])


def test_submit_wait_streams_the_logs_as_they_come(monkeypatch):
    monkeypatch.setattr(jobs, "client", lambda address: FakeJobClient())
    monkeypatch.setattr(jobs.time, "sleep", lambda s: None)
    seen: list[str] = []
    assert jobs.follow("http://127.0.0.1:8265", "raysubmit_1", seen.append) == "SUCCEEDED"
    assert seen == ["epoch 1/2  train_loss=1.0\n", "epoch 2/2  train_loss=0.5\n"]
