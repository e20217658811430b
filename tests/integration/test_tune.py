"""Ray Tune over BiLSTM training on a 2-CPU local Ray: ASHA search, best export, restore."""

from __future__ import annotations

import pytest
import yaml

from raytag.config import load_job
from raytag.prepare import prepare
from raytag.registry import Registry
from raytag.tracking import MODEL_VERSION_TAG, TRIAL_ID_TAG, find_runs, tracking_uri
from raytag.train.seams import Fault, Seams
from raytag.tune import load_search, run_search
from tests.helpers import synthetic_conll, write

pytestmark = pytest.mark.slow  # runs Tune searches


def _files(tmp):
    corpus = write(tmp, "c.conll", synthetic_conll(160, seed=9))
    base = {
        "name": "tiny", "workdir": str(tmp / "runs"),
        "corpus": {"format": "conll", "path": str(corpus)},
        "split": {"ratios": {"train": 0.8, "dev": 0.1, "test": 0.1}},
        "model": {"embedding_dim": 8, "lstm_units": 8, "lstm_layers": 1},
        "train": {"num_workers": 1, "cpus_per_worker": 1, "epochs": 2, "batch_size": 16,
                  "early_stopping_patience": None},
        "registry": {"root": str(tmp / "registry")},
    }
    (tmp / "base.yaml").write_text(yaml.safe_dump(base))
    search = {
        "name": "tiny_search", "base": str(tmp / "base.yaml"),
        "set": {"train.max_steps_per_epoch": 3},
        "search": {"space": {"train.learning_rate": {"loguniform": [0.001, 0.05]},
                             "model.lstm_units": {"choice": [8, 16]}},
                   "num_samples": 1, "scheduler": {"kind": "asha", "grace_period": 1}},
    }
    (tmp / "search.yaml").write_text(yaml.safe_dump(search))
    return tmp / "search.yaml"


def test_search_resumes_after_a_failed_trial_and_registers_the_best(ray_local, tmp_path):
    search, base = load_search(_files(tmp_path))
    directory = prepare(base, tmp_path / "prepared").directory
    marker = tmp_path / "killed"
    # The trial loses its worker in its first epoch and errors (max_failures=0): the search ends
    # unfinished, like one whose driver was interrupted. (A 2-trial ASHA search runs in tests/e2e.)
    with pytest.raises(RuntimeError, match="resume"):
        run_search(search, base, directory, seams=Seams(fault=Fault(epoch=0, rank=0, marker=str(marker))))
    assert marker.exists()
    heard: list = []

    class Listener:
        def trial_epoch(self, trial, report):
            heard.append((trial, report.epoch, report.epochs, "dev_score" in report.metrics))

        def trial_ended(self, trial, status):
            heard.append((trial, status))

    resumed = run_search(search, base, directory, listener=Listener())
    assert resumed.restored
    assert len(resumed.table) == 1 and list(resumed.table["status"]) == ["finished"]
    assert resumed.table["epochs"].max() == 2 and list(resumed.table["best"]) == [True]
    # The exported best job validates, carries the best parameters and names the base model.
    best = load_job(resumed.best_job_file)
    assert best.train.learning_rate == resumed.best_params["train.learning_rate"]
    assert best.model.lstm_units == resumed.best_params["model.lstm_units"]
    assert best.train.max_steps_per_epoch == 3
    assert resumed.registered is not None and resumed.registered.name == "tiny"
    # Under its own alias only: refs to tiny (@latest) and tiny@best never switch to a tuned model.
    registry = Registry(str(tmp_path / "registry"))
    assert registry.aliases("tiny") == {"tuned": 1} and resumed.aliases == ("tuned",)
    version = registry.resolve("tiny@tuned")
    assert "test_f1" in version.metrics and "dev_score" in version.metrics
    assert (tmp_path / "runs" / "tiny_search" / "results.csv").is_file()
    # The restored search still reports to this driver, epoch by epoch.
    [trial] = {h[0] for h in heard}
    assert heard == [(trial, 1, 2, True), (trial, 2, 2, True), (trial, "ended")]
    # Each trial is an MLflow run (file store under the base workdir) with its whole job as params,
    # and the best one names the registered version; TensorBoard events sit in the trial directory.
    uri = tracking_uri(base)
    [run] = find_runs(uri, "tiny_search", TRIAL_ID_TAG, trial)
    assert run.data.tags[MODEL_VERSION_TAG] == "tiny@v1"
    assert float(run.data.params["train.learning_rate"]) == pytest.approx(resumed.best_params["train.learning_rate"])
    assert run.data.params["train.max_steps_per_epoch"] == "3" and run.data.params["corpus.format"] == "conll"
    assert "dev_score" in run.data.metrics
    assert list((tmp_path / "runs" / "tiny_search" / "tune").rglob("events.out.tfevents.*"))
