"""Experiment tracking from the driver: an MLflow run (local file store) and TensorBoard events per run. No Ray."""

from __future__ import annotations

import struct
from pathlib import Path

from raytag.config import JobConfig, TrackingConfig
from raytag.tracking import MODEL_VERSION_TAG, RUN_KEY_TAG, RunTracker, find_runs, flat_params, tracking_uri
from raytag.train.progress import EpochReport, RunInfo


def _job(tmp_path: Path, **tracking) -> JobConfig:
    return JobConfig(name="ner", workdir=str(tmp_path / "runs"), corpus={"format": "conll", "path": "c.conll"},
                     tracking=TrackingConfig(**tracking))


def _epoch(epoch: int) -> EpochReport:
    return EpochReport(epoch, 2, {"epoch": float(epoch), "train_loss": 1.0 / epoch, "dev_f1": 0.3 * epoch})


def _scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars in a folder's TensorBoard event files (TFRecord framing: length, crc, event, crc)."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, list[tuple[int, float]]] = {}
    for file in sorted(directory.glob("events.out.tfevents.*")):
        data = file.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, round(value.simple_value, 6)))
    return {tag: sorted(points) for tag, points in out.items()}  # files opened in the same second sort either way


def test_a_run_is_recorded_with_params_epoch_metrics_events_and_its_registered_version(tmp_path):
    job = _job(tmp_path)
    run_dir = str(tmp_path / "runs" / "ner" / "ray_results" / "ner-0123abcd")
    tracker = RunTracker(job)
    tracker.run_started(RunInfo(job, "ner-0123abcd", run_dir))
    tracker.epoch_ended(_epoch(1))
    tracker.epoch_ended(_epoch(2))
    tracker.finished("ner@v4", {"test_f1": 0.61, "dev_f1": 0.6, "epoch": 2})

    uri = tracking_uri(job)
    assert uri == (tmp_path / "runs" / "mlruns").as_uri()  # the default: a file store under the workdir
    [run] = find_runs(uri, "ner", RUN_KEY_TAG, "ner-0123abcd")
    assert run.info.status == "FINISHED" and run.info.run_name == "ner-0123abcd"
    assert run.data.params == flat_params(job.model_dump(mode="json"))
    assert run.data.params["train.learning_rate"] == "0.001" and run.data.params["model.kind"] == "bilstm"
    assert run.data.tags[MODEL_VERSION_TAG] == "ner@v4" and run.data.tags["raytag.run_dir"] == run_dir
    from mlflow.tracking import MlflowClient

    history = MlflowClient(uri).get_metric_history(run.info.run_id, "dev_f1")
    assert [(m.step, round(m.value, 6)) for m in history] == [(1, 0.3), (2, 0.6)]
    assert run.data.metrics["test_f1"] == 0.61 and "epoch" not in run.data.metrics

    events = _scalars(tmp_path / "runs" / "tensorboard" / "ner-0123abcd")
    assert events["dev_f1"] == [(1, 0.3), (2, 0.6)] and events["train_loss"] == [(1, 1.0), (2, 0.5)]


def test_a_resumed_run_continues_its_mlflow_run_and_events(tmp_path):
    job = _job(tmp_path, tracking_uri=str(tmp_path / "store"), tensorboard_dir=str(tmp_path / "tb"))
    first = RunTracker(job)
    first.run_started(RunInfo(job, "ner-0123abcd", "/r"))
    first.epoch_ended(_epoch(1))
    first.failed()
    again = RunTracker(job)
    again.run_started(RunInfo(job, "ner-0123abcd", "/r", resumed=True))
    again.epoch_ended(_epoch(2))
    again.finished()
    assert again.run_id == first.run_id
    [run] = find_runs(tracking_uri(job), "ner", RUN_KEY_TAG, "ner-0123abcd")
    assert run.info.status == "FINISHED" and MODEL_VERSION_TAG not in run.data.tags
    assert _scalars(tmp_path / "tb" / "ner-0123abcd")["dev_f1"] == [(1, 0.3), (2, 0.6)]
    # Started over (--fresh): a new MLflow run, and the deleted run's events are gone.
    fresh = RunTracker(job)
    fresh.run_started(RunInfo(job, "ner-0123abcd", "/r", restarted=True))
    fresh.epoch_ended(_epoch(1))
    fresh.finished()
    assert fresh.run_id != first.run_id
    assert len(find_runs(tracking_uri(job), "ner", RUN_KEY_TAG, "ner-0123abcd")) == 2
    assert _scalars(tmp_path / "tb" / "ner-0123abcd")["dev_f1"] == [(1, 0.3)]


def test_tracking_can_be_switched_off(tmp_path):
    job = _job(tmp_path, mlflow=False, tensorboard=False)
    tracker = RunTracker(job)
    tracker.run_started(RunInfo(job, "ner-0123abcd", "/r"))
    tracker.epoch_ended(_epoch(1))
    tracker.finished("ner@v1")
    assert tracker.run_id is None and not (tmp_path / "runs").exists()


def test_tracking_uri_forms(tmp_path):
    assert tracking_uri(_job(tmp_path, tracking_uri="http://mlflow:5000")) == "http://mlflow:5000"
    assert tracking_uri(_job(tmp_path, tracking_uri="sqlite:///m.db")) == "sqlite:///m.db"
    assert tracking_uri(_job(tmp_path, tracking_uri="databricks")) == "databricks"
    assert tracking_uri(_job(tmp_path, tracking_uri="rel/store")) == (Path.cwd() / "rel" / "store").as_uri()
    assert flat_params({"a": {"b": 1, "c": [1, 2], "d": None, "e": {}}}) == {"a.b": "1", "a.c": "[1, 2]", "a.d": "None",
                                                                         "a.e": "{}"}
