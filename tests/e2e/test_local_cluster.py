"""End to end against a real `ray start` cluster with token authentication on.

The README's quick start from an empty HOME (a fresh machine): `raytag cluster start` creates
the token before `ray start --head`, so the cluster requires it; clients without it get one
`error:` line saying what to do. Then submit a training job through the Jobs API, find the
model in the registry, `serve deploy` a config and tag a sentence over HTTP, run a 2-trial
Tune search as a submitted job, and stop everything, even when a step fails: no Ray process
may outlive the test. Everything talks to 127.0.0.1 (the suite runs in a loopback-only
network namespace).

The cluster is stopped by signalling its own processes, never with `ray stop`: that kills every
Ray process of the user it can see, including clusters of other tests or people on the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from tests.helpers import synthetic_conll, write

pytestmark = pytest.mark.slow  # a whole cluster session

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GCS_PORT, DASHBOARD_PORT, SERVE_PORT = 26379, 28265, 28000
ADDRESS = f"http://127.0.0.1:{DASHBOARD_PORT}"
API_KEY = "e2e-key-c41"


def _run(args: list[str], env: dict[str, str], timeout: float = 600, cwd: Path = REPO) -> str:
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def _session_processes(home: Path) -> list[psutil.Process]:
    """Ray processes of this test's cluster (they all run with our private HOME)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        try:
            environ = proc.info["environ"] or {}
            cmdline = " ".join(proc.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if environ.get("HOME") == str(home) and ("ray" in cmdline or "raylet" in cmdline):
            found.append(proc)
    return found


@pytest.fixture
def cluster(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "token", "RAYTAG_API_KEYS": API_KEY,
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "CUDA_VISIBLE_DEVICES": "", "TF_USE_LEGACY_KERAS": "1",
           "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    try:
        # The README's quick start on a fresh machine: the HOME is empty, so there is no token
        # until `raytag cluster start` creates one, then starts the head with token auth on; every
        # client below (Jobs SDK, serve CLI, raytag) sends it because of RAY_AUTH_MODE=token.
        assert not any(home.iterdir())
        _run([str(BIN / "raytag"), "cluster", "start", "--num-cpus", "2", "--port", str(GCS_PORT),
              "--include-dashboard", "true",
              "--dashboard-host", "127.0.0.1", "--dashboard-port", str(DASHBOARD_PORT),
              # Ports of its own for the node's agents: another local Ray in this network namespace
              # (the suite's session Ray) holds the defaults, and a job head without its agent
              # answers every submission with "No available agent".
              "--dashboard-agent-listen-port", "28266", "--dashboard-agent-grpc-port", "28267",
              "--metrics-export-port", "28268", "--runtime-env-agent-port", "28269",
              "--object-store-memory", str(300 * 1024 * 1024), "--disable-usage-stats"], env)
        token = home / ".ray" / "auth_token"
        assert token.is_file() and token.stat().st_mode & 0o077 == 0, "no private token was generated"
        yield env, tmp_path
    finally:
        leftovers = _stop(home)
        assert not leftovers, f"processes that survived SIGKILL: {leftovers}"


def _stop(home: Path) -> list[str]:
    """Kill this test's cluster, and only it, as `ray stop --force` would; returns survivors."""
    deadline = time.monotonic() + 30
    # Repeat: a raylet may start a worker between one scan and the signal.
    while (procs := _session_processes(home)) and time.monotonic() < deadline:
        for proc in procs:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=5)
    # `ray start` recorded this cluster as the default address for `address="auto"`.
    address_file = Path(os.environ.get("RAY_TMPDIR", tempfile.gettempdir())) / "ray" / "ray_current_cluster"
    if address_file.is_file() and address_file.read_text().strip() == f"127.0.0.1:{GCS_PORT}":
        address_file.unlink()
    return [" ".join((p.info["cmdline"] or [])[:2]) for p in _session_processes(home)]


def test_submit_train_serve_and_tune_on_a_ray_start_cluster(cluster):
    env, tmp = cluster
    work = tmp / "work"
    (work / "jobs").mkdir(parents=True)
    write(work, "tiny.conll", synthetic_conll(160, seed=4))
    registry = tmp / "registry"
    job = {
        "name": "e2e_tiny", "corpus": {"format": "conll", "path": "tiny.conll"},
        "split": {"ratios": {"train": 0.8, "dev": 0.1, "test": 0.1}},
        "model": {"embedding_dim": 8, "lstm_units": 8, "lstm_layers": 1},
        "train": {"num_workers": 1, "cpus_per_worker": 1, "epochs": 1, "batch_size": 16,
                  "max_steps_per_epoch": 5, "storage_path": str(tmp / "ray_results")},
        "registry": {"root": str(registry)},
    }
    (work / "jobs" / "tiny.yaml").write_text(yaml.safe_dump(job))
    raytag = str(BIN / "raytag")

    # 0. the cluster requires the token; clients without it get one line saying what to do
    unauthenticated = httpx.get(f"{ADDRESS}/api/jobs/", timeout=10)
    assert unauthenticated.status_code in (401, 403), "the Jobs API answered without the token"
    elsewhere = tmp / "elsewhere"  # another user's HOME: no token there
    elsewhere.mkdir()
    for extra, expected in (({}, "the Ray cluster requires a token and this client sent none: export RAY_AUTH_MODE"),
                            ({"RAY_AUTH_MODE": "token"}, "RAY_AUTH_MODE=token but this machine has no Ray token"),
                            ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64},
                             "the Ray cluster rejected this client's token")):
        client_env = {**{k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}, "HOME": str(elsewhere), **extra}
        proc = subprocess.run([raytag, "jobs", "list", "--address", ADDRESS], env=client_env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 2 and proc.stderr.startswith(f"error: {expected}"), proc.stderr
        assert len(proc.stderr.splitlines()) == 1, proc.stderr

    # 1. a training job through the Jobs API (the SDK authenticates with the cluster's token)
    out = _run([raytag, "submit", "jobs/tiny.yaml", "--address", ADDRESS, "--wait"], env, cwd=work)
    assert "SUCCEEDED" in out
    # The job's logs were streamed, the epoch as its one plain line (the job's stdout is no terminal).
    assert re.search(r"^epoch 1/1  train_loss=\d+\.\d{4}  .*dev_accuracy=", out, re.MULTILINE), out

    # 2. the model is in the registry
    listing = _run([raytag, "models", "list", "--registry", str(registry)], env)
    assert "e2e_tiny" in listing

    # 3. serve deploy, then tag over HTTP
    serve_config = {
        "proxy_location": "HeadOnly", "http_options": {"host": "127.0.0.1", "port": SERVE_PORT},
        "applications": [{"name": "raytag", "route_prefix": "/", "import_path": "raytag.serving.app:build_app",
                          "args": {"registry_root": str(registry),
                                   "models": [{"name": "tiny", "ref": "e2e_tiny", "num_cpus": 0.25}]}}],
    }
    (work / "serve.yaml").write_text(yaml.safe_dump(serve_config))
    _run([str(BIN / "serve"), "deploy", "serve.yaml", "--address", ADDRESS], env, cwd=work)
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{SERVE_PORT}/readyz", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the served model never became ready"
        time.sleep(1)
    text = "Ada lives in Paris ."
    response = httpx.post(f"http://127.0.0.1:{SERVE_PORT}/v1/models/tiny/tag", json={"text": text, "return_tokens": True},
                          headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert [(t["text"], t["start"], t["end"]) for t in result["tokens"]] == [
        ("Ada", 0, 3), ("lives", 4, 9), ("in", 10, 12), ("Paris", 13, 18), (".", 19, 20)]
    for entity in result["entities"]:  # whatever the tiny model finds, it is a span of the input
        assert text[entity["start"] : entity["end"]] == entity["word"]
    _run([str(BIN / "serve"), "shutdown", "-y", "--address", ADDRESS], env, cwd=work)

    # 4. a 2-trial Tune search as a submitted job
    search = {"name": "e2e_search", "base": "jobs/tiny.yaml", "set": {"train.max_steps_per_epoch": 3},
              "search": {"space": {"train.learning_rate": {"loguniform": [0.001, 0.05]}}, "num_samples": 2},
              "storage_path": str(tmp / "tune")}
    (work / "jobs" / "search.yaml").write_text(yaml.safe_dump(search))
    out = _run([raytag, "submit", "jobs/search.yaml", "--command", "tune", "--address", ADDRESS, "--wait"], env,
               cwd=work)
    assert "SUCCEEDED" in out and "best job written" in out
    from raytag.registry import Registry

    assert [v.version for v in Registry(str(registry)).list_versions("e2e_tiny")] == [1, 2]
    # The tuned model is e2e_tiny@tuned; e2e_tiny (@latest), which Serve configs load, stays v1.
    assert Registry(str(registry)).aliases("e2e_tiny") == {"latest": 1, "best": 1, "tuned": 2}
    shutil.rmtree(work, ignore_errors=True)
