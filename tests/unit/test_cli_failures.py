"""Failures a new user meets around the core, each one `error:` line naming its cause, without Ray.

Serving without an API key or with an unknown model (refused before anything is deployed),
Serve configs through `raytag validate`, an unknown split in `evaluate`, an address where no
cluster answers, and a cluster that refuses this client's token. The implicit-start guard of
conftest fails any of these tests that reaches `ray.init`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from raytag.cli import app

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NO_KEY = ("no API key configured: set RAYTAG_API_KEYS (comma-separated) or api_keys_file; "
          "clients then send 'Authorization: Bearer <key>'")


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _one_error_line(result, exit_code: int = 2) -> str:
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0].removeprefix("error: ")


@pytest.fixture
def no_cluster_env(monkeypatch):
    for name in ("RAY_ADDRESS", "RAYTAG_API_KEYS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- serve ------------------------------------------------------------------------------------------


def test_serve_without_api_keys_fails_before_deploying(no_cluster_env, tmp_path):
    result = _invoke("serve", "tiny", "--registry", str(tmp_path / "registry"))
    assert _one_error_line(result) == NO_KEY


def test_serve_config_without_api_keys_fails_before_deploying(no_cluster_env):
    result = _invoke("serve", "--config", str(REPO / "serve" / "local.yaml"))
    assert _one_error_line(result) == NO_KEY


def test_serve_an_unknown_model_fails_before_deploying(no_cluster_env, tmp_path, monkeypatch):
    from tests.helpers import publish_bilstm

    publish_bilstm(tmp_path / "registry", "tiny")
    monkeypatch.setenv("RAYTAG_API_KEYS", "k")
    result = _invoke("serve", "tiny", "nope@v3", "--registry", str(tmp_path / "registry"))
    assert "nope" in _one_error_line(result)


def test_serve_with_a_missing_key_file_names_it(no_cluster_env, tmp_path):
    config = yaml.safe_load((REPO / "serve" / "local.yaml").read_text())
    config["applications"][0]["args"]["api_keys_file"] = str(tmp_path / "keys.txt")
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(config))
    result = _invoke("serve", "--config", str(tmp_path / "serve.yaml"))
    assert _one_error_line(result) == f"api_keys_file {tmp_path / 'keys.txt'}: No such file or directory"


def test_a_failed_deploy_reports_the_replicas_error_not_serves_summary():
    from raytag.serving.deploy import failure_reason

    message = ("The deployment failed to start 3 times in a row. This may be due to a problem with its "
               "constructor or initial health check failing. See controller logs for details. Error:\n"
               "ray::ServeReplica:raytag:Ingress.initialize_and_get_metadata() (pid=1, ip=127.0.0.1)\n"
               "  File \"/x/raytag/serving/auth.py\", line 24, in load_keys\n"
               "    raise NoApiKeys(\n"
               f"raytag.serving.auth.NoApiKeys: {NO_KEY}")
    application = SimpleNamespace(
        message="Failed to update the deployments ['Ingress'].",
        deployments={"tagger-a": SimpleNamespace(status="HEALTHY", message=""),
                     "Ingress": SimpleNamespace(status="DEPLOY_FAILED", message=message)})
    assert failure_reason(application) == f"deployment Ingress: NoApiKeys: {NO_KEY}"
    summary_only = SimpleNamespace(message="Failed to update the deployments ['Ingress'].", deployments={})
    assert failure_reason(summary_only) == "Failed to update the deployments ['Ingress']."


# --- validate -------------------------------------------------------------------------------------


def test_validate_recognises_serve_configs():
    result = _invoke("validate", str(REPO / "serve" / "local.yaml"), str(REPO / "serve" / "cluster.yaml"))
    assert result.exit_code == 0, result.output
    assert result.output.count("(Serve config)") == 2


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c["applications"][0]["args"]["models"][0].update(replicas=3),
         "applications[0].args: models.0.replicas: Extra inputs are not permitted"),
        (lambda c: c["applications"][0].update(deployments=[{"name": "tagger-gmb-ner", "num_replicas": 4}]),
         "applications[0].deployments[0] (tagger-gmb-ner): raytag applications set replicas"),
        (lambda c: c["applications"][0].update(deployments=[{"name": "tagger-gmb-ner", "user_config": {"reff": 1}}]),
         "applications[0].deployments[0].user_config: reff: Extra inputs are not permitted"),
        (lambda c: c.update(proxy_location="Everywhere"), "proxy_location"),
    ],
    ids=["model-setting", "deployment-option", "user-config", "serve-schema"],
)
def test_validate_checks_serve_configs_with_serves_schema_and_raytags_settings(tmp_path, edit, expected):
    config = yaml.safe_load((REPO / "serve" / "local.yaml").read_text())
    edit(config)
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    message = _one_error_line(_invoke("validate", str(path)))
    assert message.startswith(f"{path}:") and expected in message
    assert "job" not in message and "corpus" not in message  # not reported as a broken job file


def test_validate_refuses_overrides_on_a_serve_config():
    message = _one_error_line(_invoke("validate", str(REPO / "serve" / "local.yaml"), "--set", "a.b=1"))
    assert message.endswith("--set applies to job and search files, not to a Serve config")


def test_submit_refuses_a_serve_config_before_contacting_the_cluster():
    message = _one_error_line(_invoke("submit", str(REPO / "serve" / "local.yaml"), "--address",
                                      f"http://127.0.0.1:{_closed_port()}"))
    assert "is a Serve config: deploy it with `serve deploy" in message


# --- evaluate ---------------------------------------------------------------------------------------


def test_evaluate_an_unknown_split_names_it_and_the_available_ones(tmp_path):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "manifest.json").write_text(json.dumps({"splits": {"train": {}, "dev": {}, "test": {}}}))
    # The split is checked before the model is loaded: this model does not even exist.
    result = _invoke("evaluate", "nope", str(prepared), "--split", "validation", "--registry", str(tmp_path))
    assert _one_error_line(result) == f"split 'validation' is not in {prepared} (its splits: train, dev, test)"


# --- clusters that do not answer or refuse ---------------------------------------------------------


def test_jobs_commands_on_an_address_where_nothing_answers(no_cluster_env):
    address = f"http://127.0.0.1:{_closed_port()}"
    expected = f"no Ray dashboard / Jobs API answers at {address}: start one with `raytag cluster start`, " \
               "or check --address / RAY_ADDRESS"
    for args in (["jobs", "list"], ["jobs", "status", "raysubmit_1"], ["jobs", "logs", "raysubmit_1"]):
        assert _one_error_line(_invoke(*args, "--address", address)) == expected
    job = REPO / "jobs" / "gmb_ner_bilstm.yaml"
    assert _one_error_line(_invoke("submit", str(job), "--address", address)) == expected


def test_ray_commands_on_an_address_where_nothing_answers_fail_at_once(no_cluster_env):
    address = f"127.0.0.1:{_closed_port()}"
    message = _one_error_line(_invoke("tune", str(REPO / "jobs" / "tune_gmb_bilstm.yaml"), "--address", address))
    assert message.startswith(f"no Ray cluster answers at {address} (") and "raytag cluster start" in message
    dashboard = _one_error_line(_invoke("tune", str(REPO / "jobs" / "tune_gmb_bilstm.yaml"), "--address",
                                        "http://127.0.0.1:8265"))
    assert "dashboard / Jobs API address" in dashboard


def test_a_cluster_refusing_the_token_is_one_line(no_cluster_env, monkeypatch):
    from ray import job_submission
    from ray.exceptions import AuthenticationError

    def refuse(address):
        raise AuthenticationError("Authentication failed: Forbidden: Invalid authentication token\n\nToken "
                                  "authentication is enabled but the authentication token is invalid or incorrect.")

    monkeypatch.setattr(job_submission, "JobSubmissionClient", refuse)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    for args in (["jobs", "list"], ["submit", str(REPO / "jobs" / "gmb_ner_bilstm.yaml")]):
        message = _one_error_line(_invoke(*args, "--address", "http://127.0.0.1:8265"))
        assert message.startswith("the Ray cluster rejected this client's token")


def test_token_mode_on_a_fresh_machine_says_to_create_the_token(tmp_path):
    """The README's quick start gone wrong: RAY_AUTH_MODE=token and no token anywhere. A real
    process: Ray reads the mode and the token once per process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    env.update(HOME=str(tmp_path), RAY_AUTH_MODE="token")
    proc = subprocess.run([str(BIN / "raytag"), "jobs", "list", "--address", f"http://127.0.0.1:{_closed_port()}"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: RAY_AUTH_MODE=token but this machine has no Ray token: run "
                                  "`raytag cluster token` before starting the cluster")
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
