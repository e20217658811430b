"""Submit raytag commands to a running Ray cluster through the Ray Jobs API.

The job runs ``raytag <command> <job file> [--set ...]`` on the cluster with the
current directory as its ``working_dir`` (job YAMLs and relative corpus paths
travel with it). Results that must outlive the job belong on shared storage:
set ``registry.root`` and ``train.storage_path`` to S3 URIs (or, on a one-machine
cluster, absolute local paths). Token authentication: export
``RAY_AUTH_MODE=token``; the SDK sends the token from ``~/.ray/auth_token`` or
``RAY_AUTH_TOKEN``.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from raytag.environment import RAYTAG_ENV

COMMANDS = ("train", "prepare", "tune")
# Large or local-only paths never uploaded as the job's working_dir.
EXCLUDES = [".venv", ".git", "runs", "**/__pycache__", "*.egg-info", ".pytest_cache"]
JOB_ENV = RAYTAG_ENV


def entrypoint(command: str, job_file: str, overrides: Iterable[str] = ()) -> str:
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; one of {', '.join(COMMANDS)}")
    parts = ["raytag", command, job_file, *(arg for o in overrides for arg in ("--set", o))]
    return " ".join(shlex.quote(p) for p in parts)


def runtime_env(working_dir: str | Path, env_vars: dict[str, str] | None = None) -> dict[str, Any]:
    return {"working_dir": str(working_dir), "excludes": list(EXCLUDES), "env_vars": {**JOB_ENV, **(env_vars or {})}}


def client(address: str) -> Any:
    """A Jobs API client; an address where nothing answers, or a cluster that refuses this
    client's token, raises :class:`~raytag.cluster_access.ClusterAccessError` (one line, what to do)."""
    from ray.job_submission import JobSubmissionClient

    from raytag.cluster_access import explain

    try:
        return JobSubmissionClient(address)
    except Exception as exc:
        explained = explain(exc)
        if explained is exc:
            raise
        raise explained from exc


# A head node that has just started answers "No available agent to submit job" until its
# job agent has registered (seconds; longer on a busy machine): worth waiting for, not failing.
AGENT_NOT_READY = "No available agent to submit job"


def submit(address: str, command: str, job_file: str, overrides: Iterable[str] = (), *,
           working_dir: str | Path = ".", env_vars: dict[str, str] | None = None, agent_wait_s: float = 60.0) -> str:
    """Submit a raytag command as a Ray job; returns the submission id."""
    jobs = client(address)
    deadline = time.monotonic() + agent_wait_s
    while True:
        try:
            return jobs.submit_job(
                entrypoint=entrypoint(command, job_file, overrides), runtime_env=runtime_env(working_dir, env_vars),
            )
        except RuntimeError as exc:
            if AGENT_NOT_READY not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def wait(address: str, submission_id: str, timeout_s: float = 3600, poll_s: float = 2.0) -> str:
    """Wait for a job to end; returns its final status (SUCCEEDED, FAILED or STOPPED)."""
    jobs = client(address)
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(jobs.get_job_status(submission_id).value)
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {submission_id} still {status} after {timeout_s:.0f}s")
        time.sleep(poll_s)


def follow(address: str, submission_id: str, write: Callable[[str], None]) -> str:
    """Stream a job's logs into ``write`` as the job writes them; return its final status.

    The stream (Ray's ``tail_job_logs``) ends when the job does; the status is then read
    until it is final, which can lag the end of the logs by a moment.
    """
    import asyncio

    jobs = client(address)

    async def tail() -> None:
        async for lines in jobs.tail_job_logs(submission_id):
            write(lines)

    asyncio.run(tail())
    return wait(address, submission_id, timeout_s=120, poll_s=0.5)
