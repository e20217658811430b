"""The typed configuration of a serving application (the ``args`` of a Serve config file)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Autoscaling(_Section):
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    target_ongoing_requests: float = Field(8.0, gt=0)
    upscale_delay_s: float = Field(5.0, ge=0)
    downscale_delay_s: float = Field(60.0, ge=0)

    def to_serve(self) -> dict[str, Any]:
        return self.model_dump()


class ModelDeployment(_Section):
    """One served model: a registry reference and how its replicas run and batch."""

    # The URL name: POST /v1/models/{name}/tag.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # name, name@version or name@alias in the registry; switching it is a live reconfigure.
    ref: str
    max_batch_size: int = Field(32, ge=1)
    batch_wait_timeout_s: float = Field(0.01, ge=0)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    max_ongoing_requests: int = Field(64, ge=1)
    # Beyond this many requests waiting for a replica, callers get 503 + Retry-After.
    max_queued_requests: int = Field(256, ge=1)
    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)

    def user_config(self, registry_root: str) -> dict[str, Any]:
        return {"ref": self.ref, "registry_root": registry_root, "max_batch_size": self.max_batch_size,
                "batch_wait_timeout_s": self.batch_wait_timeout_s}


class IngressLimits(_Section):
    """What the HTTP front door enforces before a request reaches a model."""

    api_keys_env: str = "RAYTAG_API_KEYS"
    api_keys_file: str | None = None
    max_text_chars: int = Field(10_000, ge=1)
    max_batch_items: int = Field(64, ge=1)
    retry_after_s: int = Field(1, ge=0)


class ServeSettings(_Section):
    """Everything ``build_app`` needs; the same fields as ``args`` in ``serve/*.yaml``."""

    registry_root: str = "runs/registry"
    models: list[ModelDeployment] = Field(min_length=1)
    # API keys: a comma-separated list in this environment variable, and/or one key per line
    # in this file (a mounted secret). Inference and listing need one; health routes do not.
    api_keys_env: str = "RAYTAG_API_KEYS"
    api_keys_file: str | None = None
    max_text_chars: int = Field(10_000, ge=1)
    max_batch_items: int = Field(64, ge=1)
    retry_after_s: int = Field(1, ge=0)
    ingress_replicas: int = Field(1, ge=1)
    ingress_max_ongoing_requests: int = Field(256, ge=1)

    def ingress_limits(self) -> IngressLimits:
        return IngressLimits(**{name: getattr(self, name) for name in IngressLimits.model_fields})

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
