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


@pytest.mark.parametrize("name", ["tune_gmb_bilstm.yaml", "tune_conll03_bilstm.yaml", "tune_conll03_transformer.yaml"])
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


# --- where the best trial is registered --------------------------------------------------------


def test_the_best_trial_gets_its_own_alias_unless_promoted(tmp_path):
    path = _search(tmp_path, {"train.learning_rate": {"loguniform": [0.001, 0.01]}})
    search, _ = load_search(path)
    assert (search.alias, search.promote, search.registry_aliases()) == ("tuned", False, ("tuned",))
    promoted, _ = load_search(path, ["promote=true"])
    assert promoted.registry_aliases() == ("tuned", "latest")
    for alias, message in (("latest", "moved only by promote"), ("best", "moved only by promote"),
                           ("v3", "looks like a version"), ("-x", "alias")):
        with pytest.raises(ConfigError, match=message):
            load_search(path, [f"alias={alias}"])


class _Labels:
    items = ["O", "B-PER", "I-PER"]


class _Corpus:
    splits: list[str] = []  # no test split: registration skips evaluation
    labels = _Labels()
    fingerprint = "f"

    def summary(self) -> dict:
        return {}


def _register(monkeypatch, tmp_path, base, dev_score, **options):
    """Register a (dummy) checkpoint the way a search's best trial is registered."""
    import raytag.artifact as artifact
    import raytag.tagger

    def export(job, corpus, checkpoint_dir, history, out):
        out.mkdir(parents=True)
        (out / "model.bin").write_text(f"{dev_score}")
        return out

    monkeypatch.setattr(artifact, "export", export)
    monkeypatch.setattr(raytag.tagger, "load_tagger", lambda path: None)
    return artifact.register_checkpoint(base, _Corpus(), tmp_path, [], {"dev_score": dev_score}, **options)


def test_a_tuned_model_never_moves_latest_or_best_unless_promoted(tmp_path, monkeypatch):
    from raytag.registry import Registry

    search, base = load_search(_search(tmp_path, {"train.learning_rate": {"loguniform": [0.001, 0.01]}}))
    base = base.model_copy(update={"registry": base.registry.model_copy(update={"root": str(tmp_path / "reg")})})
    name = base.model_name()
    _register(monkeypatch, tmp_path, base, 0.5)  # the base model, trained as usual
    registry = Registry(str(tmp_path / "reg"))
    assert registry.aliases(name) == {"latest": 1, "best": 1}
    # A better tuned model: only @tuned points at it; a Serve config on @latest keeps v1.
    _register(monkeypatch, tmp_path, base, 0.9, aliases=search.registry_aliases(), track_best=search.promote)
    assert registry.aliases(name) == {"latest": 1, "best": 1, "tuned": 2}
    assert registry.resolve(name).version == 1 and registry.resolve(f"{name}@tuned").version == 2
    # Promoted: latest moves, and best too since it scores higher.
    promoted, _ = load_search(_search(tmp_path, {"train.learning_rate": {"loguniform": [0.001, 0.01]}}),
                              ["promote=true"])
    _register(monkeypatch, tmp_path, base, 0.95, aliases=promoted.registry_aliases(), track_best=promoted.promote)
    assert registry.aliases(name) == {"latest": 3, "best": 3, "tuned": 3}


# --- the results table -------------------------------------------------------------------------


def _result(trial: str, scores: list[float], lr: float, error: bool = False):
    import pandas as pd
    from types import SimpleNamespace

    frame = pd.DataFrame({"dev_score": scores, "checkpoint_path": ["c"] * len(scores)}) if scores else None
    return SimpleNamespace(metrics={"trial_id": trial} if scores else {}, metrics_dataframe=frame,
                           config={"train.learning_rate": lr}, error="boom" if error else None,
                           path=f"/tune/s/_trial_{trial}_0_train.learning_rate={lr}_2026-01-01_00-00-00")


def test_results_table_tells_finished_from_early_stopped_and_marks_the_best():
    from raytag.tune import SearchConfig, results_table, trial_status

    assert [trial_status(4, 4, False), trial_status(2, 4, False), trial_status(0, 4, False),
            trial_status(1, 4, True)] == ["finished", "early-stopped", "no result", "error"]
    cfg = SearchConfig(space={"train.learning_rate": {"loguniform": [0.001, 0.01]}})
    finished = _result("ab12c_00000", [0.5, 0.7, 0.8, 0.75], 0.003)
    stopped = _result("ab12c_00001", [0.4, 0.45], 0.009)
    errored = _result("ab12c_00002", [0.6], 0.001, error=True)
    empty = _result("ab12c_00003", [], 0.002)
    table = results_table([stopped, errored, finished, empty], cfg, planned_epochs=4, best=finished)
    assert list(table["status"]) == ["finished", "error", "early-stopped", "no result"]
    assert list(table["best"]) == [True, False, False, False]
    assert list(table["trial"][:3]) == ["ab12c_00000", "ab12c_00002", "ab12c_00001"]
    assert list(table["epochs"]) == [4, 1, 2, 0]
    assert table["best_dev_score"][0] == 0.8 and table["last_dev_score"][0] == 0.75
    assert table["trial"][3].startswith("_trial_ab12c_00003")  # no result: named by its directory


def _frame(space: list[str], trials: int = 6):
    import pandas as pd

    rows = []
    for i in range(trials):
        rows.append({"trial": f"ab12c_{i:05d}", **{k: 0.000123 * (i + 1) for k in space}, "epochs": 8 - i,
                     "best_dev_score": 0.9 - i / 100, "last_dev_score": 0.8, "best": i == 0,
                     "status": "finished" if i % 2 == 0 else "early-stopped"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("params", [2, 3, 6])
def test_the_results_table_fits_80_columns_and_cuts_nothing(params):
    from rich.console import Console

    from raytag.cli._tune_table import results_view

    space = ["train.learning_rate", "model.lstm_units", "model.dropout", "train.batch_size",
             "model.char_features", "train.weight_decay"][:params]
    console = Console(width=80, record=True, color_system=None)
    console.print(results_view(_frame(space), "dev_score", "s: dev_score (max) per trial", space))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    lines = text.splitlines()
    best = [line for line in lines if "★" in line and "00000" in line]
    assert len(best) == 1 and "0.9000" in best[0] and "finished" in best[0]
    rows = [line for line in lines if "ab12c" not in line and " 0000" in line]
    assert sum("early-stopped" in line for line in rows) == 3
    for value in ("0.000123", "0.000246", "0.000738"):
        assert value in text
    if params == 6:  # too many for a column each: one name=value line per parameter
        assert "weight_decay=0.000123" in text


def test_raytag_tune_prints_the_table_and_where_the_model_went(tmp_path, monkeypatch):
    import contextlib

    from typer.testing import CliRunner

    import raytag.cli.cluster as cluster
    import raytag.prepare
    import raytag.tune
    from raytag.cli import app
    from raytag.registry import ModelVersion
    from raytag.tune import SearchOutcome

    seen = {}

    def fake_search(search, base, directory, fresh=False, listener=None):
        seen["promote"] = search.promote
        space = list(search.search.space)
        registered = ModelVersion(base.model_name(), 4, {}, "")
        return SearchOutcome("exp", _frame(space, 3), {"train.learning_rate": 0.000123}, {"dev_score": 0.9},
                             tmp_path / "best_job.yaml", registered, best_trial="ab12c_00000",
                             aliases=search.registry_aliases())

    monkeypatch.setattr(cluster, "job_session", lambda *a, **k: contextlib.nullcontext())
    monkeypatch.setattr(raytag.prepare, "ensure_prepared", lambda job, announce: tmp_path)
    monkeypatch.setattr(raytag.tune, "run_search", fake_search)
    path = _search(tmp_path, {"train.learning_rate": {"loguniform": [0.001, 0.01]}})
    result = CliRunner().invoke(app, ["tune", str(path)], terminal_width=80)
    assert result.exit_code == 0, result.output
    assert seen["promote"] is False
    lines = result.output.splitlines()
    table = lines[: next(i for i, line in enumerate(lines) if line.startswith("best: trial"))]
    assert len(table) >= 6 and max(len(line) for line in table) <= 80
    assert any("★" in line and "00000" in line for line in table)
    name = load_search(path)[1].model_name()
    assert (f"registered {name}@v4 as @tuned; {name}@latest and @best unchanged (promote with --promote, "
            f"or raytag models alias {name}@v4 latest)") in " ".join(result.output.split())
    promoted = CliRunner().invoke(app, ["tune", str(path), "--promote"], terminal_width=80)
    assert promoted.exit_code == 0, promoted.output
    assert seen["promote"] is True
    assert f"registered {name}@v4 as @tuned, @latest" in " ".join(promoted.output.split())
