"""One served model inside a Serve replica: load, reload in place, admit, batch, tag.

The same object backs a model's own HTTP replicas (one model served) and the
``tagger-<name>`` deployments behind a multi-model ingress, so batching and
admission happen in exactly one place.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ray import serve

from raytag.serving.metrics import SlotMetrics
from raytag.serving.settings import RuntimeConfig

logger = logging.getLogger("ray.serve")

# Weight of the newest batch in the moving estimate of seconds per text.
_EWMA = 0.3
# Model work runs at a lower CPU priority than request handling. Where proxy, replicas and
# model share a few cores, a saturated model would otherwise also starve the event loops
# that admit, refuse and answer requests, and a refusal would take as long as a tagging.
MODEL_NICENESS = 10


def _lower_priority() -> None:
    # Per thread on Linux; threads the model's runtime starts from here inherit it.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MODEL_NICENESS)


class ModelSlot:
    """A registered tagger with greedy batching and load shedding by expected wait.

    ``tag`` refuses (returns None) when its texts could not start within ``max_wait_s``,
    judged from the texts already admitted and the measured cost of one text in recent
    batches. Accepted requests therefore wait at most about ``max_wait_s`` before the model
    starts on them. Requests, latencies and batch sizes go to :class:`SlotMetrics`, tagged
    with ``name`` (the served model name; by default the reference's model name).
    """

    def __init__(self, runtime: RuntimeConfig, name: str | None = None, metrics: SlotMetrics | None = None) -> None:
        self.base = runtime
        self.name = name or runtime.ref.partition("@")[0]
        self.metrics = metrics if metrics is not None else SlotMetrics(self.name)
        self.config = runtime
        self.tagger: Any = None
        self.model: dict[str, Any] = {}
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        self.refused = 0
        self._lock = asyncio.Lock()
        # One thread for everything the model does (load, calibrate, predict), so its
        # runtime's own worker threads are born at the lowered priority too.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="raytag-model", initializer=_lower_priority)
        self._pending = 0
        self._seconds_per_text = 0.0

    async def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Apply a deployment's ``user_config`` (validated: unknown keys or bad values fail the deploy)."""
        config = self.base.merged(user_config)
        async with self._lock:
            wanted = (config.ref, config.registry_root, config.device)
            if self.model.get("key") != wanted:
                # Load off the event loop: requests keep being served by the current model.
                tagger, info = await self._run(load_model, config)
                per_text = await self._run(calibrate, tagger, config.max_batch_size)
                self.tagger, self.model = tagger, {**info, "key": wanted}
                self._seconds_per_text = per_text
                self.metrics.loaded(info["version"])
                logger.info("serving %s on %s", info["ref_resolved"], tagger.device)
            self._tag.set_max_batch_size(config.max_batch_size)
            self._tag.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
            self.config = config

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def ready(self) -> bool:
        return self.tagger is not None

    def info(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.items() if k != "key"}

    def stats(self) -> dict[str, Any]:
        """Batch sizes seen (size → count), requests refused, the current cost estimate."""
        return {"batch_sizes": dict(self.batch_sizes), "refused": self.refused,
                "seconds_per_text": self._seconds_per_text, "pending": self._pending, "pid": os.getpid()}

    def expected_wait_s(self) -> float:
        """How long texts arriving now would wait before the model starts on them."""
        return self._pending * self._seconds_per_text

    async def tag(self, items: list[str] | list[list[str]], with_tokens: bool) -> tuple[int, list[dict[str, Any]]] | None:
        """``(version, results)`` for every item in order, or None when refused for load."""
        if self.expected_wait_s() > self.config.max_wait_s:
            self.refused += 1
            self.metrics.refused()
            return None
        started = time.perf_counter()
        self._pending += len(items)
        self.metrics.pending(self._pending)
        size = self.config.max_batch_size
        try:
            # Whole chunks of a request go through the batcher, not one entry per text: its
            # per-entry bookkeeping would otherwise cost more than the model on short texts.
            chunks = await asyncio.gather(*(self._tag(items[i : i + size]) for i in range(0, len(items), size)))
        except asyncio.CancelledError:  # the caller went away
            self.metrics.failed("cancelled")
            raise
        except Exception:
            self.metrics.failed("error")
            raise
        finally:
            self._pending -= len(items)
            self.metrics.pending(self._pending)
        self.metrics.answered(len(items), time.perf_counter() - started)
        version = max((v for v, _ in chunks), default=self.model.get("version", 0))
        results = [r for _, chunk in chunks for r in chunk]
        if not with_tokens:
            return version, [{"entities": r["entities"], "tokens": None} for r in results]
        return version, results

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0, batch_size_fn=lambda chunks: sum(map(len, chunks)))
    async def _tag(self, chunks: list[list[str | list[str]]]) -> list[tuple[int, list[dict[str, Any]]]]:
        # One model for the whole batch, even if a reconfigure swaps it meanwhile.
        tagger, version = self.tagger, self.model.get("version", 0)
        if tagger is None:
            raise RuntimeError("model not loaded yet")
        items = [item for chunk in chunks for item in chunk]
        self.batch_sizes[len(items)] += 1
        started = time.perf_counter()
        results = await self._run(_predict, tagger, items) if items else []
        if items:
            seconds = time.perf_counter() - started
            self.metrics.batch(len(items), seconds)
            per_text = seconds / len(items)
            # Full batches say the most about the cost under load, so they weigh the most.
            weight = _EWMA * min(1.0, len(items) / self.config.max_batch_size)
            self._seconds_per_text = (1 - weight) * self._seconds_per_text + weight * per_text
        out, start = [], 0
        for chunk in chunks:
            out.append((version, results[start : start + len(chunk)]))
            start += len(chunk)
        return out


def _predict(tagger: Any, items: list[str | list[str]]) -> list[dict[str, Any]]:
    sentences = tagger.predict(items, max(1, len(items)))
    out = []
    for sentence in sentences:
        payload = sentence.to_dict(with_tokens=True)
        out.append({"entities": payload["entities"], "tokens": payload["tokens"]})
    return out


def calibrate(tagger: Any, batch_size: int) -> float:
    """Seconds per text of one full batch, after a first call that pays tracing and allocation.

    Run before the replica takes traffic, so neither the first request nor the load
    estimate pays for a cold model.
    """
    text = "My name is Wolfgang and I live in Berkeley , California ."
    tagger.predict([text], 1)
    started = time.perf_counter()
    tagger.predict([text] * batch_size, batch_size)
    return (time.perf_counter() - started) / batch_size


def load_model(config: RuntimeConfig) -> tuple[Any, dict[str, Any]]:
    """The tagger a runtime config names, pinned to the version its reference resolves to now."""
    from raytag.registry import Registry
    from raytag.tagger import load_tagger

    registry = Registry(config.registry_root)
    version = registry.resolve(config.ref)
    pinned = f"{version.name}@v{version.version}"
    tagger = load_tagger(pinned, config.registry_root, device=config.device)
    aliases = sorted(a for a, v in registry.aliases(version.name).items() if v == version.version)
    info = {"ref": config.ref, "ref_resolved": pinned, "version": version.version, "kind": version.kind,
            "labels": list(version.labels), "metrics": dict(version.metrics), "aliases": aliases,
            "device": tagger.device}
    return tagger, info
