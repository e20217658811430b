"""The registry of model kinds: one adapter per ``model.kind``.

A new kind adds its adapter module and one line here (see README, "Architecture").
"""

from __future__ import annotations

from raytag.config import JobConfig
from raytag.errors import ConfigError
from raytag.train.adapter import ModelAdapter
from raytag.train.bilstm import BiLSTMAdapter
from raytag.train.transformer import TransformerAdapter

ADAPTERS: dict[str, ModelAdapter] = {adapter.kind: adapter for adapter in (BiLSTMAdapter(), TransformerAdapter())}


def adapter_for(job_or_kind: JobConfig | str) -> ModelAdapter:
    """The adapter of a job's model kind (or of a kind by name)."""
    kind = job_or_kind if isinstance(job_or_kind, str) else job_or_kind.model.kind
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise ConfigError(f"model.kind {kind!r} has no adapter (known: {', '.join(ADAPTERS)})") from None
