"""Run identity: the run key of a job, and how a run starts (new, resumed, finished, fresh). No Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from raytag.config import JobConfig, apply_overrides, build
from raytag.train.identity import NOT_IDENTITY, config_hash, run_key
from raytag.train.run import CONFIG_FILE, DONE_MARKER, RunFinished, open_run, record_registration

DATA = "f" * 64


def _job(tmp_path: Path, *overrides: str) -> JobConfig:
    base = {"name": "ner", "workdir": str(tmp_path / "runs"), "corpus": {"format": "conll", "path": "c.conll"}}
    return build(JobConfig, apply_overrides(base, overrides), "test")


def _finish(run_dir: str) -> None:
    Path(run_dir, DONE_MARKER).write_text(json.dumps({"best_checkpoint": f"{run_dir}/checkpoint_0"}))


# --- the key ----------------------------------------------------------------------------------


def test_the_key_is_the_job_name_and_a_short_stable_hash(tmp_path):
    key = run_key(_job(tmp_path), DATA)
    name, digest = key.rsplit("-", 1)
    assert name == "ner" and len(digest) == 8 and int(digest, 16) >= 0
    assert run_key(_job(tmp_path), DATA) == key  # the same config, the same key, in any process


@pytest.mark.parametrize("override", ["train.learning_rate=0.02", "train.epochs=6", "model.lstm_units=64",
                                      "train.num_workers=4", "train.seed=1", "model.kind=transformer"])
def test_what_changes_the_result_changes_the_key(tmp_path, override):
    assert config_hash(_job(tmp_path, override), DATA) != config_hash(_job(tmp_path), DATA)


# A value for every field the hash leaves out (a new entry in NOT_IDENTITY needs one here).
LEFT_OUT = {"train.storage_path": "s3://bucket/runs", "train.max_failures": "3", "train.cpus_per_worker": "2",
            "train.use_gpu": "true"}


def test_every_field_left_out_is_checked():
    assert set(NOT_IDENTITY) == set(LEFT_OUT)


@pytest.mark.parametrize("override", ["registry.root=elsewhere", "ray.address=ray://head:10001", "ray.num_cpus=8",
                                      "tracking.mlflow=false", "tracking.tracking_uri=http://mlflow:5000",
                                      "workdir=other", "prepare.num_workers=8", "prepare.output_dir=p",
                                      *(f"{k}={v}" for k, v in LEFT_OUT.items())])
def test_where_results_go_and_how_the_run_is_driven_keep_the_key(tmp_path, override):
    assert config_hash(_job(tmp_path, override), DATA) == config_hash(_job(tmp_path), DATA)


def test_other_data_is_another_run(tmp_path):
    assert config_hash(_job(tmp_path), DATA) != config_hash(_job(tmp_path), "0" * 64)
    # Without a fingerprint the corpus settings stand in for the data.
    assert config_hash(_job(tmp_path, "split.seed=1"), None) != config_hash(_job(tmp_path), None)


# --- how a run starts -------------------------------------------------------------------------


def test_a_new_run_gets_its_own_directory_with_the_resolved_job(tmp_path):
    run = open_run(_job(tmp_path), DATA)
    assert not run.resumed and not run.restarted
    assert Path(run.run_dir).name == run.key and Path(run.run_dir).parent == tmp_path / "runs" / "ner" / "ray_results"
    saved = yaml.safe_load(Path(run.run_dir, CONFIG_FILE).read_text())
    assert saved["name"] == "ner" and saved["train"]["learning_rate"] == 0.001


def test_a_changed_config_starts_a_new_run_and_keeps_the_finished_one(tmp_path):
    first = open_run(_job(tmp_path), DATA)
    _finish(first.run_dir)
    changed = open_run(_job(tmp_path, "train.learning_rate=0.02"), DATA)
    assert changed.key != first.key and not changed.resumed
    assert Path(first.run_dir, DONE_MARKER).is_file()


def test_the_same_config_resumes_an_unfinished_run_and_reports_a_finished_one(tmp_path):
    first = open_run(_job(tmp_path), DATA)
    Path(first.run_dir, "checkpoint_0").mkdir()  # what a driver that died leaves
    again = open_run(_job(tmp_path, "registry.root=elsewhere"), DATA)  # not part of the identity
    assert again.resumed and again.run_dir == first.run_dir
    assert Path(first.run_dir, "checkpoint_0").is_dir()
    _finish(first.run_dir)
    record_registration(first.run_dir, "ner@v3")
    with pytest.raises(RunFinished, match=f"run {first.key} already finished.*registered as ner@v3") as info:
        open_run(_job(tmp_path), DATA)
    assert info.value.record["registered"] == "ner@v3" and info.value.run_dir == first.run_dir


def test_fresh_deletes_only_the_run_of_the_same_config(tmp_path):
    first = open_run(_job(tmp_path), DATA)
    _finish(first.run_dir)
    other = open_run(_job(tmp_path, "train.learning_rate=0.02"), DATA)
    _finish(other.run_dir)
    restarted = open_run(_job(tmp_path, "train.learning_rate=0.02"), DATA, fresh=True)
    assert restarted.restarted and not restarted.resumed and restarted.run_dir == other.run_dir
    assert not Path(other.run_dir, DONE_MARKER).exists() and Path(other.run_dir, CONFIG_FILE).is_file()
    assert Path(first.run_dir, DONE_MARKER).is_file(), "--fresh deleted another config's run"
