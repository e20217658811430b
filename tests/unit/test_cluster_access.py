"""Reaching a cluster without Ray: the token `raytag cluster token|start` ensures, addresses checked
before `ray.init`, and Ray's authentication and connection errors turned into one line."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raytag.cli import app
from raytag.cluster_access import ClusterAccessError, check_address, ensure_token, explain

BIN = Path(sys.executable).parent


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty home, as on a fresh machine, and no token in the environment."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the token ---------------------------------------------------------------------------------


def test_a_fresh_home_gets_a_private_token_that_is_never_replaced(home):
    token = ensure_token()
    path = home / ".ray" / "auth_token"
    assert (token.path, token.created) == (path, True)
    value = path.read_text()
    assert len(value) == 64 and int(value, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ensure_token()
    assert (again.created, path.read_text()) == (False, value)


def test_a_token_readable_by_others_is_made_private(home):
    path = home / ".ray" / "auth_token"
    path.parent.mkdir()
    path.write_text("abc")
    path.chmod(0o644)
    token = ensure_token()
    assert (token.created, token.tightened, path.read_text()) == (False, True, "abc")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_token_goes_where_ray_looks(home, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "secrets" / "ray_token"))
    token = ensure_token()
    assert token.path == tmp_path / "secrets" / "ray_token" and token.path.is_file()
    assert not (home / ".ray").exists()
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-the-environment")
    assert ensure_token().path is None  # Ray reads the value itself: nothing to write


def test_ray_reads_the_token_raytag_cluster_token_writes(home):
    result = CliRunner().invoke(app, ["cluster", "token"])
    assert result.exit_code == 0, result.output
    assert f"{home / '.ray' / 'auth_token'} (created)" in result.output
    assert "export RAY_AUTH_MODE=token" in result.output
    written = (home / ".ray" / "auth_token").read_text()
    assert written not in result.output  # the secret itself is printed nowhere
    # Ray's own CLI, in a process of its own (its token loader caches), finds the same token.
    proc = subprocess.run([str(BIN / "ray"), "get-auth-token"], env={**os.environ, "HOME": str(home)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == written


def test_cluster_start_makes_the_token_first_and_turns_auth_on(home, monkeypatch):
    import raytag.cli.ray_cluster as ray_cluster

    calls = []

    def fake_call(command, env):
        calls.append((command, env["RAY_AUTH_MODE"], (home / ".ray" / "auth_token").is_file()))
        return 0

    monkeypatch.setattr(ray_cluster.subprocess, "call", fake_call)
    result = CliRunner().invoke(app, ["cluster", "start", "--num-cpus", "2", "--head", "--port", "26380"])
    assert result.exit_code == 0, result.output
    [(command, mode, token_existed)] = calls
    assert command[1:] == ["start", "--head", "--num-cpus", "2", "--port", "26380"]
    assert (mode, token_existed) == ("token", True)
    assert "token authentication is on; clients: export RAY_AUTH_MODE=token" in result.output


def test_a_failed_ray_start_is_one_line(home, monkeypatch):
    import raytag.cli.ray_cluster as ray_cluster

    monkeypatch.setattr(ray_cluster.subprocess, "call", lambda command, env: 1)
    result = CliRunner().invoke(app, ["cluster", "start"])
    assert result.exit_code == 2
    assert result.stderr == "error: `ray start --head` failed (exit 1); its output above says why\n"


# --- addresses -----------------------------------------------------------------------------------


def test_nothing_listening_fails_at_once_naming_the_address():
    port = closed_port()
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(ClusterAccessError, match=f"no Ray cluster answers at {address} .*raytag cluster start"):
            check_address(address)


def test_a_dashboard_address_is_not_a_ray_init_address():
    with pytest.raises(ClusterAccessError, match="dashboard / Jobs API address.*host:6379"):
        check_address("http://127.0.0.1:8265")


def test_a_listening_port_and_addresses_ray_resolves_itself_pass():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_address(f"127.0.0.1:{server.getsockname()[1]}")
    for address in ("auto", "local", "head-node"):
        check_address(address)


# --- Ray's errors as one line --------------------------------------------------------------------


def _auth_error(message: str) -> Exception:
    from ray.exceptions import AuthenticationError

    return AuthenticationError(message)


@pytest.mark.parametrize(
    ("message", "mode", "expected"),
    [
        ("Token authentication is enabled but no authentication token was found", "token",
         "RAY_AUTH_MODE=token but this machine has no Ray token: run `raytag cluster token`"),
        ("Token authentication is enabled but Ray couldn't find an authentication token. Create a token file", "token",
         "RAY_AUTH_MODE=token but this machine has no Ray token"),
        ("Authentication required: Unauthorized: Missing authentication token\n\nToken authentication is enabled "
         "but no authentication token was found", None,
         "the Ray cluster requires a token and this client sent none: export RAY_AUTH_MODE=token"),
        ("Authentication failed: Forbidden: Invalid authentication token\n\nToken authentication is enabled but "
         "the authentication token is invalid or incorrect.", "token",
         "the Ray cluster rejected this client's token: use the cluster's own token"),
        ("RAY_AUTH_TOKEN_PATH is set but file cannot be opened or is empty: /x", "token",
         "RAY_AUTH_TOKEN_PATH names"),
    ],
    ids=["no-token", "no-token-core", "sent-none", "wrong-token", "bad-token-path"],
)
def test_authentication_errors_say_what_to_do(message, mode, expected, monkeypatch):
    if mode:
        monkeypatch.setenv("RAY_AUTH_MODE", mode)
    else:
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    explained = explain(_auth_error(message))
    assert isinstance(explained, ClusterAccessError)
    assert str(explained).startswith(expected)
    assert "\n" not in str(explained)


def test_connection_errors_name_the_address_and_other_errors_pass_through(monkeypatch):
    jobs = explain(ConnectionError("Failed to connect to Ray at address: http://127.0.0.1:9.\n"))
    assert str(jobs) == ("no Ray dashboard / Jobs API answers at http://127.0.0.1:9: start one with "
                         "`raytag cluster start`, or check --address / RAY_ADDRESS")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    refused = explain(ConnectionError("Failed to connect to Ray cluster at 127.0.0.1:6379"))
    assert isinstance(refused, ClusterAccessError)
    assert str(refused).startswith("Failed to connect to Ray cluster at 127.0.0.1:6379: the cluster answers but "
                                   "did not accept this client; with token authentication, export RAY_AUTH_MODE=token")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with_mode = str(explain(ConnectionError("Failed to connect to Ray cluster at 127.0.0.1:6379")))
    assert "give this client the cluster's own token" in with_mode and "export" not in with_mode
    other = ConnectionError("reset by peer")
    assert explain(other) is other
    plain = ValueError("x")
    assert explain(plain) is plain
