"""Job submission against a head whose job agent is still starting (no Ray: a fake client)."""

from __future__ import annotations

import pytest

from raytag import jobs


class FakeJobs:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls: list[dict] = []

    def submit_job(self, **kwargs) -> str:
        self.calls.append(kwargs)
        if self.failures:
            raise self.failures.pop(0)
        return "raysubmit_1"


def test_submit_waits_for_the_job_agent(monkeypatch) -> None:
    fake = FakeJobs([RuntimeError(f"Request failed with status code 500: {jobs.AGENT_NOT_READY}, try later")] * 2)
    monkeypatch.setattr(jobs, "client", lambda address: fake)
    monkeypatch.setattr(jobs.time, "sleep", lambda s: None)
    assert jobs.submit("http://127.0.0.1:8265", "train", "jobs/x.yaml", ["train.epochs=1"]) == "raysubmit_1"
    assert len(fake.calls) == 3
    assert fake.calls[0]["entrypoint"] == "raytag train jobs/x.yaml --set train.epochs=1"


def test_submit_gives_up_on_other_errors_and_after_the_wait(monkeypatch) -> None:
    monkeypatch.setattr(jobs.time, "sleep", lambda s: None)
    other = FakeJobs([RuntimeError("Request failed with status code 401: unauthorized")])
    monkeypatch.setattr(jobs, "client", lambda address: other)
    with pytest.raises(RuntimeError, match="401"):
        jobs.submit("http://127.0.0.1:8265", "train", "jobs/x.yaml")
    assert len(other.calls) == 1
    never = FakeJobs([RuntimeError(jobs.AGENT_NOT_READY)] * 1000)
    monkeypatch.setattr(jobs, "client", lambda address: never)
    with pytest.raises(RuntimeError, match="No available agent"):
        jobs.submit("http://127.0.0.1:8265", "train", "jobs/x.yaml", agent_wait_s=0.0)
