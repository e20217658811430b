"""Search files without Ray: space parsing, validation against the base job, sizing, export."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from raytag.config import load_job
from raytag.errors import ConfigError
from raytag.jobfiles import load_any
from raytag.tune import dump_job, job_for_trial, load_search, parse_dimension, trial_resources

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["tune_gmb_bilstm.yaml", "tune_conll03_transformer.yaml"])
def test_shipped_search_files_validate(name):
    search, base = load_search(REPO / "jobs" / name)
    assert search.search.num_samples >= 8 and base.name
    assert load_any(REPO / "jobs" / name).name == search.name


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"loguniform": [0.0, 1.0]}, "positive"),
        ({"uniform": [1.0, 0.5]}, "low < high"),
        ({"choice": []}, "non-empty"),
        ({"normal": [0, 1]}, "unknown distribution"),
        ({"uniform": [0, 1], "choice": [1]}, "one distribution"),
        ({"randint": ["a", 3]}, "numbers"),
    ],
)
def test_bad_dimensions_are_explained(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_dimension("train.learning_rate", spec)


def _search(tmp_path, space, extra=None):
    data = {"name": "s", "base": str(REPO / "jobs" / "gmb_ner_bilstm.yaml"), "set": {"train.epochs": 2},
            "search": {"space": space, **(extra or {})}}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_point_of_the_space_must_make_a_valid_job(tmp_path):
    with pytest.raises(ConfigError, match="model.dropout"):
        load_search(_search(tmp_path, {"model.dropout": {"uniform": [0.0, 1.5]}}))
    with pytest.raises(ConfigError, match="model.lstm_unit"):
        load_search(_search(tmp_path, {"model.lstm_unit": {"choice": [8, 16]}}))
    with pytest.raises(ConfigError, match="char_features"):
        load_search(_search(tmp_path, {"model.char_features": {"choice": ["none", "lstm"]}}))


def test_trial_job_applies_fixed_and_sampled_values_and_exports(tmp_path):
    search, base = load_search(_search(tmp_path, {"train.learning_rate": {"loguniform": [0.001, 0.01]}}))
    assert base.train.epochs == 2
    job = job_for_trial(search, {"train.learning_rate": 0.004, "model.lstm_units": 48}, trial_name="s-1")
    assert (job.name, job.train.learning_rate, job.model.lstm_units, job.train.epochs) == ("s-1", 0.004, 48, 2)
    exported = load_job(dump_job(job, tmp_path / "best.yaml"))
    assert exported == job


def test_nested_set_overrides_mean_the_same_as_dotted_keys(tmp_path):
    path = _search(tmp_path, {"train.learning_rate": {"loguniform": [0.001, 0.01]}})
    search, base = load_search(path, ["set.train.max_steps_per_epoch=7"])
    assert base.train.max_steps_per_epoch == 7 and base.train.epochs == 2


def test_trial_resources_leave_a_cpu_for_data_loading(tmp_path):
    _, base = load_search(_search(tmp_path, {"train.learning_rate": {"loguniform": [0.001, 0.01]}}))
    one = base.model_copy(update={"train": base.train.model_copy(update={"num_workers": 1, "cpus_per_worker": 1})})
    assert trial_resources(one, 2, None) == (1, 1)
    assert trial_resources(one, 8, None) == (1, 7)
    assert trial_resources(one, 8, 3) == (1, 3)
    two = one.model_copy(update={"train": one.train.model_copy(update={"num_workers": 2})})
    with pytest.raises(ConfigError, match="need 2 CPUs"):
        trial_resources(two, 2, None)
