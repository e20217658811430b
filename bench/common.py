"""Helpers shared by the benchmark scripts (run as ``python bench/<script>.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def load(config: str, overrides: list[str]) -> Any:
    from raytag.config import load_job

    return load_job(config, overrides)


def ensure_prepared(job: Any) -> Path:
    """The job's prepared corpus, prepared on a local 2-CPU Ray first if missing."""
    from raytag.prepare import ensure_prepared as prepare_if_missing

    return prepare_if_missing(job, num_cpus=2)


def child(script: str, kind: str, argv: list[str], env: dict[str, str]) -> dict:
    """Run ``script _<kind> argv`` in a fresh process; its last ``RESULT {json}`` line is the result."""
    proc = subprocess.run([sys.executable, script, "_" + kind, *argv], capture_output=True, text=True, env=env,
                          cwd=REPO)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise SystemExit(f"{kind} failed")
    return json.loads(lines[-1].removeprefix("RESULT "))
