"""The typed configuration of a serving application (the ``args`` of a Serve config file).

Every per-model knob lives here, under ``args.models[]``: replicas, autoscaling, CPUs/GPUs,
batching and admission limits. The only per-deployment entry a raytag Serve config uses
under ``deployments:`` is ``user_config`` of ``tagger-<name>``, to switch the served
version in place (see :class:`RuntimeConfig`); the config loader rejects anything else there.

Admission limits, all derived from the per-model settings unless set:

- a replica takes at most ``max_ongoing_requests`` requests at once
  (default ``4 × max_batch_size``); up to ``max_queued_requests`` more wait in each
  caller (default ``max_batch_size``), beyond that Serve answers 503 + ``Retry-After``;
- a replica refuses (503 + ``Retry-After``) any request whose texts would wait longer than
  ``max_wait_s`` behind the ones it already holds, estimated from the batches it has run,
  so accepted requests finish within about ``max_wait_s`` plus one batch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Larger model batches pay off on a GPU; on a CPU they mostly add latency.
CPU_BATCH_SIZE = 32
GPU_BATCH_SIZE = 128


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Autoscaling(_Section):
    # Two replicas where resources allow, so a lost replica never leaves a model unserved.
    min_replicas: int = Field(2, ge=0)
    max_replicas: int = Field(2, ge=1)
    target_ongoing_requests: float = Field(8.0, gt=0)
    upscale_delay_s: float = Field(5.0, ge=0)
    downscale_delay_s: float = Field(60.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) exceeds max_replicas ({self.max_replicas})")
        return self

    def to_serve(self) -> dict[str, Any]:
        return self.model_dump()


class RuntimeConfig(_Section):
    """What a running tagger replica can change in place: its ``user_config``.

    Setting ``user_config: {ref: name@v2}`` for ``tagger-<name>`` under ``deployments:``
    and deploying again reloads the model in the running replicas (the old one answers
    until the new one is loaded); keys left out keep the values from ``args``.
    """

    ref: str = Field(min_length=1)
    registry_root: str = Field(min_length=1)
    max_batch_size: int = Field(ge=1)
    batch_wait_timeout_s: float = Field(ge=0)
    max_wait_s: float = Field(gt=0)
    device: str = "auto"

    def merged(self, user_config: dict[str, Any] | None) -> RuntimeConfig:
        """This config with a deployment's ``user_config`` applied; unknown keys are an error."""
        return RuntimeConfig.model_validate({**self.model_dump(), **(user_config or {})})


class ModelDeployment(_Section):
    """One served model: a registry reference and how its replicas run, batch and shed load."""

    # The URL name: POST /v1/models/{name}/tag.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # name, name@version or name@alias in the registry; switching it is a live reconfigure.
    ref: str
    # Texts per model call; default 32 on CPU replicas, 128 on GPU replicas.
    max_batch_size: int | None = Field(None, ge=1)
    # How long the first text of a batch waits for company. 0 batches greedily: a lone
    # request runs at once, and whatever arrives while the model is busy forms the next batch.
    batch_wait_timeout_s: float = Field(0.0, ge=0)
    # Refuse (503) a request whose texts would wait longer than this for the model.
    max_wait_s: float = Field(1.0, gt=0)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    max_ongoing_requests: int | None = Field(None, ge=1)
    max_queued_requests: int | None = Field(None, ge=1)
    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    # "auto" puts the model on the replica's GPU when it has one (num_gpus > 0).
    device: str = "auto"
    # A dead or hung replica is noticed within about period + timeout and replaced.
    health_check_period_s: float = Field(2.0, gt=0)
    health_check_timeout_s: float = Field(5.0, gt=0)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        from raytag.devices import check_device

        return check_device(value)

    @property
    def batch_size(self) -> int:
        if self.max_batch_size is not None:
            return self.max_batch_size
        return GPU_BATCH_SIZE if self.num_gpus > 0 else CPU_BATCH_SIZE

    @property
    def ongoing_limit(self) -> int:
        return self.max_ongoing_requests or 4 * self.batch_size

    @property
    def queued_limit(self) -> int:
        return self.max_queued_requests or self.batch_size

    def runtime(self, registry_root: str) -> RuntimeConfig:
        # A replica without GPUs must not pick one up by accident.
        device = "cpu" if self.num_gpus == 0 and self.device == "auto" else self.device
        return RuntimeConfig(ref=self.ref, registry_root=registry_root, max_batch_size=self.batch_size,
                             batch_wait_timeout_s=self.batch_wait_timeout_s, max_wait_s=self.max_wait_s,
                             device=device)

    def deployment_options(self, retry_after_s: int) -> dict[str, Any]:
        """Serve deployment options of this model's replicas."""
        return {
            "autoscaling_config": self.autoscaling.to_serve(),
            "max_ongoing_requests": self.ongoing_limit,
            "max_queued_requests": self.queued_limit,
            "backpressure_config": {"status_code": 503, "retry_after_s": retry_after_s},
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "health_check_period_s": self.health_check_period_s,
            "health_check_timeout_s": self.health_check_timeout_s,
        }


class IngressLimits(_Section):
    """What the HTTP front door enforces before a request reaches a model."""

    api_keys_env: str = "RAYTAG_API_KEYS"
    api_keys_file: str | None = None
    max_text_chars: int = Field(10_000, ge=1)
    max_batch_items: int = Field(64, ge=1)
    retry_after_s: int = Field(1, ge=0)
    # OpenAPI document and its pages (/openapi.json, /docs, /redoc): open to anyone,
    # behind the API key like every other route, or not served.
    docs: Literal["public", "private", "off"] = "private"


class ServeSettings(_Section):
    """Everything ``build_app`` needs; the same fields as ``args`` in ``serve/*.yaml``.

    One model: its replicas answer HTTP themselves (one hop per request). Several: an
    ``Ingress`` deployment routes each request to ``tagger-<name>`` in one call.
    """

    registry_root: str = "runs/registry"
    models: list[ModelDeployment] = Field(min_length=1)
    # API keys: a comma-separated list in this environment variable, and/or one key per line
    # in this file (a mounted secret). Inference and listing need one; health routes do not.
    api_keys_env: str = "RAYTAG_API_KEYS"
    api_keys_file: str | None = None
    max_text_chars: int = Field(10_000, ge=1)
    max_batch_items: int = Field(64, ge=1)
    retry_after_s: int = Field(1, ge=0)
    docs: Literal["public", "private", "off"] = "private"
    # Only used with several models.
    ingress_replicas: int = Field(1, ge=1)
    ingress_max_ongoing_requests: int | None = Field(None, ge=1)

    def ingress_limits(self) -> IngressLimits:
        return IngressLimits(**{name: getattr(self, name) for name in IngressLimits.model_fields})

    def ingress_options(self) -> dict[str, Any]:
        """Options of the multi-model ``Ingress``: it holds what its models can hold, no more."""
        ongoing = self.ingress_max_ongoing_requests or sum(
            m.ongoing_limit * m.autoscaling.max_replicas + m.queued_limit for m in self.models
        )
        return {"num_replicas": self.ingress_replicas, "max_ongoing_requests": ongoing,
                "max_queued_requests": max(m.queued_limit for m in self.models),
                "backpressure_config": {"status_code": 503, "retry_after_s": self.retry_after_s},
                "ray_actor_options": {"num_cpus": 0}}

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ModelDeployment]) -> list[ModelDeployment]:
        names = [m.name for m in models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        return models


def deployment_name(model: str) -> str:
    """The Serve deployment that serves ``model`` (referenced by ``deployments:`` in serve configs)."""
    return f"tagger-{model}"
