"""Model kinds as adapters: one registry per side, typed runs across the Ray boundary, the test seams."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from raytag.config import MODEL_KINDS, BiLSTMConfig, CorpusConfig, JobConfig, TrainConfig, TransformerConfig
from raytag.errors import ConfigError
from raytag.evaluate import finite, headline_metrics
from raytag.tagger import TAGGERS
from raytag.train.adapter import WorkerRun, typed_model
from raytag.train.kinds import ADAPTERS, adapter_for
from raytag.train.seams import Fault, Seams

PACKAGE = Path(__file__).resolve().parents[2] / "platform" / "raytag"
CORPUS = CorpusConfig(format="conll", path="x.txt")


def _job(model=None, **train) -> JobConfig:
    return JobConfig(name="t", corpus=CORPUS, model=model or BiLSTMConfig(), train=TrainConfig(**train))


def test_every_kind_has_a_config_an_adapter_and_a_tagger():
    assert set(MODEL_KINDS) == set(ADAPTERS) == set(TAGGERS)
    for kind, adapter in ADAPTERS.items():
        assert adapter.kind == kind and TAGGERS[kind].kind == kind


def test_the_job_picks_its_adapter_and_its_prepare_stages():
    assert adapter_for(_job()).kind == "bilstm"
    assert adapter_for(_job()).prepare_stages(_job()) == []
    transformer = _job(TransformerConfig(encoder="/nowhere"))
    assert adapter_for(transformer).kind == "transformer"
    assert adapter_for(transformer).worker_env(transformer)["USE_TF"] == "0"
    with pytest.raises(ConfigError, match="no adapter"):
        adapter_for("crf")


def test_typed_model_refuses_another_kind():
    assert typed_model(_job(), BiLSTMConfig).kind == "bilstm"
    with pytest.raises(TypeError, match="TransformerConfig"):
        typed_model(_job(), TransformerConfig)


def test_a_worker_run_crosses_a_process_boundary_typed():
    run = WorkerRun(_job(epochs=2), "/data/prepared", Seams(fault=Fault(marker="/tmp/m", epoch=1)))
    back = WorkerRun.from_loop_config(pickle.loads(pickle.dumps(run.loop_config())))
    assert back == run and isinstance(back.job, JobConfig) and back.job.train.epochs == 2
    with pytest.raises(TypeError, match="not a WorkerRun"):
        WorkerRun.from_loop_config({"run": {"job": {}}})


def test_batch_size_below_num_workers_is_a_config_error():
    with pytest.raises(ValueError, match="batch_size must be at least num_workers"):
        TrainConfig(num_workers=4, batch_size=2)
    assert TrainConfig(num_workers=4, batch_size=4).batch_size == 4


def test_no_branching_on_the_model_kind_outside_the_adapters():
    # ``x.kind == "bilstm"`` / ``isinstance(m, TransformerConfig)`` belong in an adapter module only.
    kinds = set(MODEL_KINDS)
    configs = {"BiLSTMConfig", "TransformerConfig"}
    allowed = {PACKAGE / "train" / "adapter.py", PACKAGE / "config.py"}
    offenders = []
    for file in PACKAGE.rglob("*.py"):
        if file in allowed:
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(
                isinstance(c, ast.Constant) and c.value in kinds for c in [node.left, *node.comparators]
            ):
                offenders.append(f"{file.relative_to(PACKAGE)}:{node.lineno}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance"
                    and any(isinstance(a, ast.Name) and a.id in configs for a in ast.walk(node))):
                offenders.append(f"{file.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, offenders


def test_seams_kill_only_where_and_when_asked(tmp_path):
    marker = tmp_path / "killed"
    seams = Seams(fault=Fault(marker=str(marker), rank=1, epoch=2))
    seams.maybe_fail(0, epoch=2)  # another rank
    seams.maybe_fail(1, epoch=1)  # another epoch
    seams.maybe_fail(1, step=2)  # a step, not an epoch
    Seams().maybe_fail(1, epoch=2)  # no fault at all
    assert not marker.exists()
    marker.write_text("already happened")
    seams.maybe_fail(1, epoch=2)  # the restarted worker lives


def test_seams_record_weight_digests(tmp_path):
    import numpy as np

    Seams().record_weights([np.ones(3)], rank=0, epoch=1)  # no directory: nothing written
    seams = Seams(debug_dir=str(tmp_path))
    seams.record_weights([np.ones(3)], rank=0, epoch=1)
    seams.record_weights([np.ones(3)], rank=1, epoch=1)
    seams.record_weights([np.zeros(3)], rank=0, epoch=2)
    digests = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert digests["weights-rank0-epoch1.sha256"] == digests["weights-rank1-epoch1.sha256"]
    assert digests["weights-rank0-epoch2.sha256"] != digests["weights-rank0-epoch1.sha256"]


def test_headline_metrics_for_entities_and_tokens():
    entity = {"kind": "entity", "score": 0.5, "token_accuracy": 0.9,
              "micro": {"f1": 0.5, "precision": float("nan"), "recall": 0.25}}
    assert finite(headline_metrics(entity, "dev")) == {
        "dev_score": 0.5, "dev_accuracy": 0.9, "dev_f1": 0.5, "dev_precision": 0.0, "dev_recall": 0.25}
    assert headline_metrics({"kind": "plain", "score": 0.8, "token_accuracy": 0.8}, "test") == {
        "test_score": 0.8, "test_accuracy": 0.8}
