"""The serving metrics hooks, recorded into a fake ``ray.serve.metrics`` (no Ray needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from raytag.serving import slot as slot_module
from raytag.serving.metrics import BATCH_BUCKETS, LATENCY_BUCKETS_S, METRICS, SlotMetrics
from raytag.serving.settings import ModelDeployment
from raytag.serving.slot import ModelSlot


class FakeMetric:
    def __init__(self, kind: str, name: str, description: str = "", tag_keys: tuple[str, ...] = (),
                 boundaries: list[float] | None = None) -> None:
        assert isinstance(tag_keys, tuple)  # what ray.serve.metrics insists on
        self.kind, self.name, self.description, self.tag_keys, self.boundaries = kind, name, description, tag_keys, boundaries
        self.defaults: dict[str, str] = {}
        self.points: list[tuple[float, dict[str, str]]] = []

    def set_default_tags(self, tags: dict[str, str]) -> FakeMetric:
        assert set(tags) <= set(self.tag_keys)
        self.defaults = dict(tags)
        return self

    def _record(self, value: float, tags: dict[str, str] | None) -> None:
        final = {**self.defaults, **(tags or {})}
        assert set(final) == set(self.tag_keys), f"{self.name}: tags {final} for keys {self.tag_keys}"
        self.points.append((value, final))

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        assert value > 0, "Ray counters only take positive increments"
        self._record(value, tags)

    def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
        self._record(value, tags)

    def set(self, value: float, tags: dict[str, str] | None = None) -> None:
        self._record(value, tags)


class FakeFactory:
    def __init__(self) -> None:
        self.made: dict[str, FakeMetric] = {}

    def _make(self, kind: str, name: str, **kwargs: Any) -> FakeMetric:
        assert name not in self.made
        self.made[name] = FakeMetric(kind, name, **kwargs)
        return self.made[name]

    def Counter(self, name: str, **kwargs: Any) -> FakeMetric:  # noqa: N802 - ray.serve.metrics names
        return self._make("counter", name, **kwargs)

    def Histogram(self, name: str, **kwargs: Any) -> FakeMetric:  # noqa: N802
        return self._make("histogram", name, **kwargs)

    def Gauge(self, name: str, **kwargs: Any) -> FakeMetric:  # noqa: N802
        return self._make("gauge", name, **kwargs)


class Sentence:
    def __init__(self, text: str) -> None:
        self.text = text

    def to_dict(self, with_tokens: bool) -> dict[str, Any]:
        return {"entities": [], "tokens": [{"token": self.text}]}


class FakeTagger:
    device = "cpu"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def predict(self, items: list[str], batch_size: int) -> list[Sentence]:
        if self.fail:
            raise RuntimeError("model broke")
        return [Sentence(item) for item in items]


def values(metric: FakeMetric, **tags: str) -> list[float]:
    return [value for value, got in metric.points if all(got.get(k) == v for k, v in tags.items())]


def make_slot(unbatched: bool = True, **settings: Any) -> tuple[ModelSlot, FakeFactory]:
    factory = FakeFactory()
    runtime = ModelDeployment(name="gmb", ref="gmb_ner@prod", **settings).runtime("/reg")
    slot = ModelSlot(runtime, "gmb", SlotMetrics("gmb", factory))
    slot.tagger, slot.model = FakeTagger(), {"version": 3}
    if not unbatched:
        return slot, factory
    # @serve.batch needs a replica context; outside Serve each chunk is its own batch.
    batched = ModelSlot._tag.__wrapped__

    async def one_batch(chunk: list[str]) -> tuple[int, list[dict[str, Any]]]:
        [answer] = await batched(slot, [chunk])
        return answer

    slot._tag = one_batch
    return slot, factory


def test_every_metric_is_made_once_with_a_model_tag_and_its_buckets():
    factory = FakeFactory()
    SlotMetrics("gmb", factory)
    assert set(factory.made) == set(METRICS)
    for name, metric in factory.made.items():
        assert metric.kind == METRICS[name][0] and metric.description
        assert metric.tag_keys[0] == "model" and metric.defaults == {"model": "gmb"}
    assert factory.made["raytag_requests"].tag_keys == ("model", "outcome")
    assert factory.made["raytag_batch_size"].boundaries == list(BATCH_BUCKETS)
    assert factory.made["raytag_request_latency_s"].boundaries == list(LATENCY_BUCKETS_S)


def test_answered_requests_record_counts_latency_batches_and_pending():
    slot, factory = make_slot(max_batch_size=4)
    made = factory.made

    async def scenario() -> list[Any]:
        # Two concurrent requests; texts go to the batcher in chunks of at most max_batch_size.
        return await asyncio.gather(slot.tag(list("abcde"), False), slot.tag(["f", "g"], True))

    first, second = asyncio.run(scenario())
    assert first[0] == 3 and len(first[1]) == 5 and len(second[1]) == 2
    assert values(made["raytag_requests"], outcome="ok") == [1, 1]
    assert sorted(values(made["raytag_texts"])) == [2, 5]
    latencies = values(made["raytag_request_latency_s"])
    assert len(latencies) == 2 and all(0 <= s < 5 for s in latencies)
    assert sorted(values(made["raytag_batch_size"])) == [1, 2, 4]  # abcd, e and fg
    assert len(values(made["raytag_batch_latency_s"])) == 3
    pending = values(made["raytag_pending_texts"])
    assert max(pending) == 7 and pending[-1] == 0  # raised on admission, back to 0 when answered
    assert all(tags["model"] == "gmb" for m in made.values() for _, tags in m.points)


def test_refused_and_failed_requests_are_counted_by_outcome():
    slot, factory = make_slot(max_wait_s=0.5)
    requests = factory.made["raytag_requests"]
    slot._seconds_per_text, slot._pending = 0.01, 60  # 0.6 s of work ahead: refused
    assert asyncio.run(slot.tag(["Berkeley"], with_tokens=False)) is None
    assert values(requests, outcome="refused") == [1] and not values(requests, outcome="ok")

    slot._pending, slot.tagger = 0, FakeTagger(fail=True)
    with pytest.raises(RuntimeError, match="model broke"):
        asyncio.run(slot.tag(["Berkeley"], with_tokens=False))
    assert values(requests, outcome="error") == [1]
    assert not factory.made["raytag_texts"].points and not factory.made["raytag_request_latency_s"].points
    assert values(factory.made["raytag_pending_texts"])[-1] == 0


def test_loading_a_version_sets_the_version_gauge(monkeypatch):
    slot, factory = make_slot(unbatched=False)
    info = {"version": 7, "ref_resolved": "gmb_ner@v7", "kind": "bilstm"}
    monkeypatch.setattr(slot_module, "load_model", lambda config: (FakeTagger(), info))
    monkeypatch.setattr(slot_module, "calibrate", lambda tagger, size: 0.001)
    asyncio.run(slot.reconfigure({"ref": "gmb_ner@v7"}))
    assert values(factory.made["raytag_model_version"]) == [7]
    assert slot.info()["version"] == 7


def test_the_version_gauge_is_set_at_load_and_again_with_every_batch():
    factory = FakeFactory()
    metrics = SlotMetrics("gmb", factory)
    metrics.batch(2, 0.01)  # before a model is loaded there is no version to report
    assert values(factory.made["raytag_model_version"]) == []
    metrics.loaded(4)
    metrics.batch(2, 0.01)
    metrics.batch(1, 0.01)
    assert values(factory.made["raytag_model_version"]) == [4, 4, 4]
