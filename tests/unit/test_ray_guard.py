"""Nothing starts Ray at import time or behind a test's back."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_importing_raytag_does_not_start_ray():
    code = (
        "import raytag, raytag.cli, raytag.prepare, raytag.session, raytag.config, raytag.registry\n"
        "import ray\n"
        "assert not ray.is_initialized(), 'ray started at import'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_guard_refuses_implicit_ray_start():
    import ray.data

    with pytest.raises(RuntimeError, match="started Ray implicitly"):
        ray.data.range(3).count()


def test_prepare_refuses_to_run_without_a_session(tmp_path):
    from raytag.config import demo_job
    from raytag.prepare import prepare

    with pytest.raises(RuntimeError, match="needs a Ray session"):
        prepare(demo_job(str(tmp_path)), tmp_path / "out")
