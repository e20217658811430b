"""Shared fixtures: one local Ray for the whole session, a guard against implicit starts,
and the location of the real corpora (data tests skip when it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAYTAG_SHARED_DATA", REPO.parent / "shared" / "data"))
CONLL03 = DATA / "conll2003"

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Markers from where a test lives and what it uses, so tiers never depend on memory:
    ``ray`` (uses the session's local Ray, or a cluster of its own), ``e2e`` (tests/e2e),
    ``data`` (tests/data, the full corpora); ``slow`` is set by hand on long tests."""

    def uses_session_ray(item: pytest.Item) -> bool:
        return "ray_local" in getattr(item, "fixturenames", ())

    def uses_ray(item: pytest.Item) -> bool:
        return uses_session_ray(item) or item.path.parent.name == "e2e"

    # Tests that use the session's Ray run last, so every test before them runs while it is
    # down: the implicit-start guard below can see any stray ray.init(), and the e2e cluster
    # (its own `ray start`) never shares the namespace with it.
    items.sort(key=lambda item: (uses_session_ray(item), uses_ray(item)))
    for item in items:
        folder = item.path.parent.name
        if uses_ray(item):
            item.add_marker(pytest.mark.ray)
        if folder == "e2e":
            item.add_marker(pytest.mark.e2e)
        if folder == "data":
            item.add_marker(pytest.mark.data)


@pytest.fixture(scope="session")
def ray_local():
    """A 2-CPU local Ray on this machine, shared by all Ray tests.

    The dashboard runs (on 127.0.0.1) because Ray Train's placement-group cleaner needs
    its State API; without it Tune trials that end early leak their workers' CPUs.
    """
    import ray

    from raytag.session import dashboard_missing

    if ray.is_initialized():
        yield ray
        return
    ray.init(address="local", num_cpus=2, include_dashboard=dashboard_missing() is None, dashboard_host="127.0.0.1",
             object_store_memory=500 * 1024 * 1024)
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def _no_implicit_ray(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Fail any test that starts Ray without asking for the ray_local fixture."""
    if "ray_local" in request.fixturenames:
        yield
        return
    import ray
    import ray._private.worker as worker

    def refuse(*args, **kwargs):
        raise RuntimeError("this test started Ray implicitly; request the ray_local fixture instead")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(worker, "init", refuse)
    yield


@pytest.fixture
def conll03_dir() -> Path:
    if not (CONLL03 / "train.txt").is_file():
        pytest.skip(f"CoNLL-2003 not found at {CONLL03} (set RAYTAG_SHARED_DATA); it is never bundled")
    return CONLL03
