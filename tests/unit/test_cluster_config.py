"""cluster.yaml against Ray's own cluster-config schema, plus the project's own rules."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _config() -> dict:
    return yaml.safe_load((REPO / "cluster.yaml").read_text())


def test_cluster_yaml_validates_against_rays_schema() -> None:
    import pytest
    from ray.autoscaler._private.util import prepare_config, validate_config

    # What `ray up` does: fill the provider's defaults, then check the schema.
    validate_config(prepare_config(_config()))
    broken = _config()
    broken["available_node_types"]["gpu_worker"]["min_worker"] = 0  # a typo the schema must catch
    with pytest.raises(Exception, match="min_worker"):
        validate_config(prepare_config(broken))


def test_cluster_yaml_keeps_the_project_rules() -> None:
    config = _config()
    assert config["docker"]["image"].startswith("rayproject/ray:2.60.0") and "-gpu" in config["docker"]["image"]
    assert "ray-ml" not in yaml.safe_dump(config)
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["min_workers"] == 0 and workers["max_workers"] >= 1
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0}
    head_start = " ".join(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head_start and "--dashboard-host=127.0.0.1" in head_start
    assert all("RAY_AUTH_MODE=token" in c for c in config["worker_start_ray_commands"] if "ray start" in c)
    assert any(target.endswith(".ray/auth_token") for target in config["file_mounts"])
    ports = {(p["FromPort"], p["ToPort"]) for p in config["provider"]["security_group"]["IpPermissions"]}
    assert ports == {(22, 22)}, "only SSH may be open; the dashboard goes through a tunnel"


def _setup_commands(matching: str) -> list[str]:
    commands = [c for c in _config()["setup_commands"] if matching in c]
    assert commands, f"no setup command mentions {matching!r}"
    return commands


def _shim(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _run_setup(command: str, tmp_path: Path, replacements: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a setup command here, with sudo as a no-op prefix and cluster paths moved under tmp_path."""
    for old, new in replacements.items():
        command = command.replace(old, new)
    _shim(tmp_path / "bin", "sudo", 'exec "$@"')
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60)


def test_api_key_file_is_readable_only_by_the_serving_user(tmp_path: Path) -> None:
    (command,) = _setup_commands("/etc/raytag/api_keys")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api_keys").write_text("k1\n")
    (secrets / "api_keys").chmod(0o644)  # as rsync may deliver it
    done = _run_setup(command, tmp_path, {"/etc/raytag": str(tmp_path / "etc"),
                                          "/home/ray/raytag-secrets": str(secrets)})
    assert done.returncode == 0, done.stderr
    installed = (tmp_path / "etc" / "api_keys").stat()
    assert stat.S_IMODE(installed.st_mode) == 0o600
    # Owned by the user running the setup commands, which is the user Ray (and Serve) runs as.
    assert (installed.st_uid, installed.st_gid) == (os.getuid(), os.getgid())
    assert (tmp_path / "etc" / "api_keys").read_text() == "k1\n"
    assert stat.S_IMODE((secrets / "api_keys").stat().st_mode) == 0o600


def _requirements(args: list[str]) -> tuple[list[str], bool]:
    """The requirement arguments of a ``pip install`` command line, and whether it has constraints."""
    takes_value = {"-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-r", "--requirement"}
    requirements, constrained, i = [], False, args.index("install") + 1
    while i < len(args):
        arg = args[i]
        if arg in ("-c", "--constraint"):
            constrained = True
        if arg in takes_value:
            i += 2
            continue
        if arg in ("-e", "--editable"):
            requirements.append(args[i + 1])
            i += 2
            continue
        if not arg.startswith("-"):
            requirements.append(arg)
        i += 1
    return requirements, constrained


def test_every_pip_install_is_pinned_and_a_failure_fails_setup(tmp_path: Path) -> None:
    log = tmp_path / "pip.log"
    # A pip that records its arguments (one per line, then a separator) and fails.
    _shim(tmp_path / "bin", "pip", f'for a in "$@"; do echo "$a"; done >> {log}; echo --- >> {log}; exit 1')
    for command in _setup_commands("pip install"):
        log.write_text("")
        done = _run_setup(command, tmp_path, {})
        assert done.returncode != 0, f"a failed install must fail setup: {command}"
        calls = [c.strip().splitlines() for c in log.read_text().split("---\n") if c.strip()]
        assert calls, f"pip was never run by: {command}"
        for args in calls:
            requirements, constrained = _requirements(args)
            assert requirements, args
            # Every package at an exact version: either pinned inline or through the lock file.
            assert constrained or all("==" in r for r in requirements), f"unpinned pip install: {args}"
            if not constrained:
                continue
            assert any(a.endswith("requirements.lock") for a in args), args
