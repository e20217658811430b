"""Per-model serving metrics, recorded through Ray Serve's metrics API.

``ray.serve.metrics`` metrics are exported by every node's Prometheus endpoint (Ray's
metrics agent, ``ray.nodes()[i]["MetricsExportPort"]``) with Ray's ``ray_`` prefix and
Serve's own ``deployment``, ``replica`` and ``application`` tags; raytag adds ``model``
(the served name, as in ``/v1/models/{name}/tag``). Requests that Serve itself turns
away before they reach a replica (``max_queued_requests``) are in Serve's own metrics.

The metric classes come from a factory (``ray.serve.metrics`` by default) so the
recording hooks can be tested without Ray.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BATCH_BUCKETS", "LATENCY_BUCKETS_S", "METRICS", "SlotMetrics"]

# Seconds: from a few milliseconds on a warm CPU model to the slow tail under load.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Texts per model call: batch sizes are powers of two by default.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

# name → (kind, description, extra tag keys); every metric also has ``model``.
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "raytag_requests": ("counter", "Tag requests a model replica finished, by outcome: ok, refused (503 for load), "
                        "error or cancelled (the caller went away).", ("outcome",)),
    "raytag_texts": ("counter", "Texts tagged (inputs of requests answered ok).", ()),
    "raytag_request_latency_s": ("histogram", "Seconds from admission to answer of a request inside the model "
                                 "replica: queueing, batching and the model.", ()),
    "raytag_batch_size": ("histogram", "Texts per model call (one @serve.batch batch).", ()),
    "raytag_batch_latency_s": ("histogram", "Seconds per model call.", ()),
    "raytag_pending_texts": ("gauge", "Texts admitted by this replica and not answered yet.", ()),
    "raytag_model_version": ("gauge", "Registry version this replica serves.", ()),
}
_BOUNDARIES = {"raytag_request_latency_s": LATENCY_BUCKETS_S, "raytag_batch_latency_s": LATENCY_BUCKETS_S,
               "raytag_batch_size": BATCH_BUCKETS}


def _serve_metrics() -> Any:
    from ray.serve import metrics

    return metrics


class SlotMetrics:
    """The metrics of one served model in one replica; ``factory`` provides
    ``Counter``, ``Histogram`` and ``Gauge`` with the ``ray.serve.metrics`` signatures."""

    def __init__(self, model: str, factory: Any = None) -> None:
        factory = factory if factory is not None else _serve_metrics()
        self.model = model
        self._version: int | None = None
        self._metrics: dict[str, Any] = {}
        for name, (kind, description, extra) in METRICS.items():
            tag_keys = ("model", *extra)
            if kind == "counter":
                metric = factory.Counter(name, description=description, tag_keys=tag_keys)
            elif kind == "histogram":
                metric = factory.Histogram(name, description=description, boundaries=list(_BOUNDARIES[name]),
                                           tag_keys=tag_keys)
            else:
                metric = factory.Gauge(name, description=description, tag_keys=tag_keys)
            metric.set_default_tags({"model": model})
            self._metrics[name] = metric

    def refused(self) -> None:
        self._metrics["raytag_requests"].inc(1, tags={"outcome": "refused"})

    def answered(self, texts: int, seconds: float) -> None:
        self._metrics["raytag_requests"].inc(1, tags={"outcome": "ok"})
        if texts > 0:  # counters only take positive increments
            self._metrics["raytag_texts"].inc(texts)
        self._metrics["raytag_request_latency_s"].observe(seconds)

    def failed(self, outcome: str = "error") -> None:
        self._metrics["raytag_requests"].inc(1, tags={"outcome": outcome})

    def batch(self, texts: int, seconds: float) -> None:
        self._metrics["raytag_batch_size"].observe(texts)
        self._metrics["raytag_batch_latency_s"].observe(seconds)
        if self._version is not None:
            # A gauge set once at load can drop out of an export (seen on a busy 2-CPU
            # cluster); setting it again with every batch keeps it on the scrape.
            self._metrics["raytag_model_version"].set(self._version)

    def pending(self, texts: int) -> None:
        self._metrics["raytag_pending_texts"].set(texts)

    def loaded(self, version: int) -> None:
        self._version = version
        self._metrics["raytag_model_version"].set(version)
