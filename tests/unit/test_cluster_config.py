"""cluster.yaml against Ray's own cluster-config schema, plus the project's own rules."""

from __future__ import annotations

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
