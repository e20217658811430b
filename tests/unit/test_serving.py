"""Serving pieces without Ray: request models, settings, API keys, the shipped Serve configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from raytag.serving.auth import NoApiKeys, authorized, load_keys
from raytag.errors import ConfigError
from raytag.serving.deploy import APP_IMPORT_PATH, app_config, load_config
from raytag.serving.schemas import TagRequest
from raytag.serving.settings import ModelDeployment, RuntimeConfig, ServeSettings, deployment_name

REPO = Path(__file__).resolve().parents[2]


def test_tag_request_takes_exactly_one_input_kind() -> None:
    assert TagRequest(text="a b").inputs() == ["a b"]
    assert TagRequest(texts=["a", ""]).inputs() == ["a", ""]
    assert TagRequest(tokens=[["a", "b"]]).inputs() == [["a", "b"]]
    for bad in ({}, {"text": "a", "texts": ["b"]}, {"text": "a", "unknown": 1}, {"text": 3}, {"tokens": ["ab"]}):
        with pytest.raises(ValidationError):
            TagRequest.model_validate(bad)


def test_keys_from_env_and_file_compared_exactly(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KEYS_UNDER_TEST", " alpha , beta,")
    secret = tmp_path / "keys"
    secret.write_text("# comment\ngamma\n\n")
    keys = load_keys("KEYS_UNDER_TEST", str(secret))
    assert keys == [b"alpha", b"beta", b"gamma"]
    assert authorized("Bearer beta", keys) and authorized("bearer gamma", keys)
    for header in (None, "", "beta", "Basic beta", "Bearer", "Bearer bet", "Bearer betaa", "Bearer # comment"):
        assert not authorized(header, keys)


def test_serving_refuses_to_start_without_a_key(monkeypatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEYS", raising=False)
    with pytest.raises(NoApiKeys, match="NO_SUCH_KEYS"):
        load_keys("NO_SUCH_KEYS", None)


def test_settings_validate_models_and_limits() -> None:
    settings = ServeSettings.model_validate({"models": [{"name": "ner", "ref": "ner@prod"}]})
    model = settings.models[0]
    assert model.runtime("r") == RuntimeConfig(ref="ner@prod", registry_root="r", max_batch_size=32,
                                               batch_wait_timeout_s=0.0, max_wait_s=1.0, device="cpu")
    assert settings.ingress_limits().max_text_chars == 10_000 and settings.ingress_limits().docs == "private"
    assert deployment_name("ner") == "tagger-ner"
    with pytest.raises(ValidationError, match="unique"):
        ServeSettings.model_validate({"models": [{"name": "a", "ref": "x"}, {"name": "a", "ref": "y"}]})
    with pytest.raises(ValidationError):
        ServeSettings.model_validate({"models": []})
    with pytest.raises(ValidationError, match="max_batch_size"):
        ServeSettings.model_validate({"models": [{"name": "a", "ref": "x", "max_batch_size": 0}]})
    with pytest.raises(ValidationError, match="extra"):
        ServeSettings.model_validate({"models": [{"name": "a", "ref": "x", "replicas": 3}]})
    with pytest.raises(ValidationError, match="exceeds max_replicas"):
        ServeSettings.model_validate({"models": [{"name": "a", "ref": "x", "autoscaling": {"max_replicas": 1}}]})
    with pytest.raises(ValidationError, match="device"):
        ServeSettings.model_validate({"models": [{"name": "a", "ref": "x", "device": "tpu"}]})
    with pytest.raises(ValidationError, match="docs"):
        ServeSettings.model_validate({"models": [{"name": "a", "ref": "x"}], "docs": "secret"})


def test_admission_limits_derive_from_the_model_settings() -> None:
    cpu = ModelDeployment(name="a", ref="a", max_batch_size=16)
    options = cpu.deployment_options(retry_after_s=2)
    # One batch running and three filling per replica; one batch more waits in each caller.
    assert options["max_ongoing_requests"] == 64 and options["max_queued_requests"] == 16
    assert options["backpressure_config"] == {"status_code": 503, "retry_after_s": 2}
    assert options["autoscaling_config"]["min_replicas"] == 2  # a lost replica leaves one serving
    assert options["health_check_period_s"] <= 2 and options["health_check_timeout_s"] <= 5
    assert options["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.0}
    gpu = ModelDeployment(name="b", ref="b", num_gpus=1)
    assert gpu.batch_size == 128 and gpu.runtime("r").device == "auto"
    assert cpu.batch_size == 16 and cpu.runtime("r").device == "cpu"  # no GPU asked: never pick one up
    explicit = ModelDeployment(name="c", ref="c", max_ongoing_requests=5, max_queued_requests=7)
    assert (explicit.ongoing_limit, explicit.queued_limit) == (5, 7)
    two = ServeSettings(models=[cpu, explicit])
    # The multi-model ingress holds what its models can hold: ongoing × max replicas + queued, summed.
    assert two.ingress_options()["max_ongoing_requests"] == (64 * 2 + 16) + (5 * 2 + 7)


def test_user_config_is_validated_and_merged() -> None:
    base = ModelDeployment(name="a", ref="a@v1").runtime("/reg")
    assert base.merged({"ref": "a@v2"}).ref == "a@v2" and base.merged(None) == base
    assert base.merged({"ref": "a@v2"}).registry_root == "/reg"
    with pytest.raises(ValidationError, match="extra"):
        base.merged({"reference": "a@v2"})
    with pytest.raises(ValidationError, match="max_batch_size"):
        base.merged({"max_batch_size": 0})


def test_request_rejects_lone_surrogates_and_states_the_one_of_rule() -> None:
    for bad in ({"text": "a\ud800"}, {"texts": ["ok", "\udfff"]}, {"tokens": [["ok", "x\ud800"]]}):
        with pytest.raises(ValidationError, match="lone surrogate"):
            TagRequest.model_validate(bad)
    schema = TagRequest.model_json_schema()
    assert schema["oneOf"] == [{"required": ["text"]}, {"required": ["texts"]}, {"required": ["tokens"]}]


@pytest.mark.parametrize("path", sorted((REPO / "serve").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_serve_configs_are_valid(path: Path) -> None:
    data = load_config(path)
    for application in data["applications"]:
        assert application["import_path"] == APP_IMPORT_PATH
        assert not application.get("deployments"), "per-model settings belong in args.models[]"
    assert data["http_options"]["host"] == "127.0.0.1"


def _write(tmp_path: Path, application_extra: dict) -> Path:
    config = app_config({"models": [{"name": "a", "ref": "a"}, {"name": "b", "ref": "b"}]})
    config["applications"][0].update(application_extra)
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_config_loader_validates_what_it_says(tmp_path: Path) -> None:
    ok = _write(tmp_path, {"deployments": [{"name": "tagger-a", "user_config": {"ref": "a@v2"}}]})
    assert load_config(ok)["applications"][0]["deployments"][0]["user_config"] == {"ref": "a@v2"}
    cases = [
        ({"deployments": [{"name": "tagger-a", "autoscaling_config": {"min_replicas": 1}}]},
         r"deployments\[0\] \(tagger-a\).*args.models.*unexpected: autoscaling_config"),
        ({"deployments": [{"name": "tagger-zzz", "user_config": {"ref": "x"}}]}, r"tagger-a, tagger-b"),
        ({"deployments": [{"name": "tagger-b", "user_config": {"max_batch_size": -1}}]},
         r"deployments\[0\].user_config.*max_batch_size"),
        ({"args": {"models": [{"name": "a", "ref": "a", "num_cpus": -1}]}}, r"applications\[0\].args.*num_cpus"),
        ({"args": {"registry_root": "${NO_SUCH_VARIABLE_X}", "models": [{"name": "a", "ref": "a"}]}},
         r"applications\[0\].args.*NO_SUCH_VARIABLE_X"),
        ({"route_prefix": 7}, r"route_prefix"),
    ]
    for extra, pattern in cases:
        with pytest.raises(ConfigError, match="(?s)" + pattern):
            load_config(_write(tmp_path, extra))
    # The application's runtime_env variables are the ones build_app will see.
    env = _write(tmp_path, {"args": {"registry_root": "${REG_FROM_APP}", "models": [{"name": "a", "ref": "a"}]},
                            "runtime_env": {"env_vars": {"REG_FROM_APP": "s3://bucket/registry"}}})
    load_config(env)


def test_app_config_binds_loopback_by_default() -> None:
    config = app_config({"models": [{"name": "a", "ref": "a"}]})
    assert config["http_options"] == {"host": "127.0.0.1", "port": 8000}
    with pytest.raises(ValidationError):
        app_config({"models": []})


def test_replica_refuses_what_it_could_not_start_within_max_wait() -> None:
    import asyncio

    from raytag.serving.slot import ModelSlot

    slot = ModelSlot(ModelDeployment(name="a", ref="a", max_wait_s=0.5).runtime("/reg"))
    slot._seconds_per_text = 0.01  # as measured from recent batches
    slot._pending = 60  # texts admitted and not finished: 0.6 s of work ahead
    assert slot.expected_wait_s() == pytest.approx(0.6)
    assert asyncio.run(slot.tag(["Berkeley"], with_tokens=False)) is None
    assert slot.stats()["refused"] == 1 and slot.stats()["pending"] == 60
    slot._pending = 40  # 0.4 s ahead: admitted (it would now wait for the model)
    assert slot.expected_wait_s() < slot.config.max_wait_s
