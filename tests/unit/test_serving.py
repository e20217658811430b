"""Serving pieces without Ray: request models, settings, API keys, the shipped Serve configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from raytag.serving.auth import NoApiKeys, authorized, load_keys
from raytag.serving.deploy import APP_IMPORT_PATH, app_config
from raytag.serving.schemas import TagRequest
from raytag.serving.settings import ServeSettings, deployment_name

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
    assert settings.models[0].user_config("r") == {"ref": "ner@prod", "registry_root": "r", "max_batch_size": 32,
                                                   "batch_wait_timeout_s": 0.01}
    assert settings.ingress_limits().max_text_chars == 10_000
    assert deployment_name("ner") == "tagger-ner"
    with pytest.raises(ValidationError, match="unique"):
        ServeSettings.model_validate({"models": [{"name": "a", "ref": "x"}, {"name": "a", "ref": "y"}]})
    with pytest.raises(ValidationError):
        ServeSettings.model_validate({"models": []})
    with pytest.raises(ValidationError, match="max_batch_size"):
        ServeSettings.model_validate({"models": [{"name": "a", "ref": "x", "max_batch_size": 0}]})
    with pytest.raises(ValidationError, match="extra"):
        ServeSettings.model_validate({"models": [{"name": "a", "ref": "x", "replicas": 3}]})


@pytest.mark.parametrize("path", sorted((REPO / "serve").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_serve_configs_are_valid(path: Path) -> None:
    from ray.serve.schema import ServeDeploySchema

    data = yaml.safe_load(path.read_text())
    ServeDeploySchema.parse_obj(data)
    for application in data["applications"]:
        assert application["import_path"] == APP_IMPORT_PATH
        settings = ServeSettings.model_validate(application["args"])
        names = {deployment_name(m.name) for m in settings.models} | {"Ingress"}
        assert {d["name"] for d in application.get("deployments", [])} <= names
    assert data["http_options"]["host"] == "127.0.0.1"


def test_app_config_binds_loopback_by_default() -> None:
    config = app_config({"models": [{"name": "a", "ref": "a"}]})
    assert config["http_options"] == {"host": "127.0.0.1", "port": 8000}
    with pytest.raises(ValidationError):
        app_config({"models": []})
