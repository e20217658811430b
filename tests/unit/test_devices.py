"""Device selection for taggers, without a GPU: every branch driven by the visible-GPU count."""

from __future__ import annotations

import pytest

from raytag.devices import DeviceError, check_device, resolve_device, tensorflow_device
from raytag.session import dashboard_missing


@pytest.mark.parametrize(
    ("requested", "gpus", "expected"),
    [("auto", 0, "cpu"), ("auto", 2, "cuda:0"), ("cpu", 4, "cpu"), ("cuda", 1, "cuda:0"), ("CUDA:1", 2, "cuda:1"),
     (" cuda:0 ", 1, "cuda:0")],
)
def test_resolve_picks_a_visible_device(requested: str, gpus: int, expected: str) -> None:
    assert resolve_device(requested, gpus) == expected


@pytest.mark.parametrize(("requested", "gpus", "message"),
                         [("cuda", 0, "no GPU is visible"), ("cuda:2", 2, r"only 2 GPU\(s\) are visible"),
                          ("gpu", 1, "not one of"), ("cuda:x", 1, "not one of"), ("", 1, "not one of")])
def test_unavailable_or_malformed_devices_are_clear_errors(requested: str, gpus: int, message: str) -> None:
    with pytest.raises(DeviceError, match=message):
        resolve_device(requested, gpus)


def test_cpu_never_asks_the_gpu_runtime() -> None:
    def explode() -> int:
        raise AssertionError("counted GPUs for a CPU request")

    assert resolve_device("cpu", explode) == "cpu"
    assert resolve_device("auto", lambda: 1) == "cuda:0"


def test_spellings() -> None:
    assert check_device("cuda") == "cuda:0"
    assert tensorflow_device("cpu") == "/CPU:0" and tensorflow_device("cuda:3") == "/GPU:3"


def test_tagger_loads_on_the_requested_device(tmp_path) -> None:
    from tests.helpers import tiny_bilstm_artifact

    from raytag.tagger import load_tagger

    artifact = tiny_bilstm_artifact(tmp_path)
    tagger = load_tagger(artifact, device="cpu")
    assert tagger.device == "cpu"
    assert load_tagger(artifact).device == "cpu"  # auto on a machine without GPUs
    with pytest.raises(DeviceError, match="no GPU is visible"):
        load_tagger(artifact, device="cuda:0")
    with pytest.raises(DeviceError, match="not one of"):
        load_tagger(artifact, device="tpu")


def test_dashboard_probe(monkeypatch) -> None:
    import sys

    assert dashboard_missing() is None  # this environment installs ray[serve], which brings them
    monkeypatch.setitem(sys.modules, "ray.dashboard.optional_deps", None)  # import now fails
    assert "dashboard packages missing" in (dashboard_missing() or "")


@pytest.mark.parametrize(("missing", "dashboard"), [(None, True), ("dashboard packages missing: aiohttp", False)])
def test_local_session_starts_with_the_dashboard_only_where_it_can(monkeypatch, missing, dashboard) -> None:
    import ray

    from raytag import session

    calls: list[dict] = []
    monkeypatch.setattr(session, "dashboard_missing", lambda: missing)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append({"shutdown": True}))
    with session.ray_session(num_cpus=1):
        pass
    assert calls[0]["include_dashboard"] is dashboard and calls[0]["dashboard_host"] == "127.0.0.1"
    assert calls[-1] == {"shutdown": True}
