"""The Ray Serve application: a FastAPI ingress in front of one batched deployment per model.

``build_app(args)`` is the typed app builder named by ``import_path`` in
``serve/*.yaml`` (``raytag.serving.app:build_app``) and used by ``raytag serve``.
Each model is a ``tagger-<name>`` deployment whose ``user_config`` holds the
registry reference. Switching versions means setting ``user_config: {ref: ...}``
for that deployment under ``deployments:`` in the Serve config and deploying it
again: Serve then calls ``reconfigure`` on the running replicas, which keep
answering with the previous version until the new one is loaded, so no request
is dropped. (Changing the application's ``args`` instead changes its code
version, and Serve replaces every replica.)
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at
# runtime, after Serve has rebuilt the ingress class, and needs real types there.
import asyncio
import collections
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

import raytag
from raytag.serving.auth import authorized, load_keys
from raytag.serving.schemas import ModelInfo, ModelList, Problem, TagRequest, TagResponse, TagResult
from raytag.serving.settings import IngressLimits, ServeSettings, deployment_name

logger = logging.getLogger("ray.serve")

# Retries of one item when the replica holding it died: the router sends it elsewhere.
REPLICA_RETRIES = 2


@serve.deployment(ray_actor_options={"num_cpus": 1})
class TaggerDeployment:
    """Serves one registered tagger; concurrent requests are tagged together by ``@serve.batch``."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        # user_config (e.g. ``{"ref": "ner@v5"}`` under ``deployments:`` in a Serve config)
        # overrides these keys; changing only it reconfigures the replica in place.
        self.defaults = dict(defaults)
        self.tagger: Any = None
        self.model: dict[str, Any] = {}
        self.batch_sizes: collections.Counter = collections.Counter()
        self._lock = asyncio.Lock()

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        config = {**self.defaults, **(user_config or {})}
        async with self._lock:
            wanted = (config["ref"], config["registry_root"])
            if self.model.get("key") != wanted:
                # Load off the event loop: requests keep being served by the current model.
                tagger, info = await asyncio.to_thread(_load_model, config["ref"], config["registry_root"])
                self.tagger, self.model = tagger, {**info, "key": wanted}
                logger.info("serving %s", info["ref_resolved"])
            self.tag_batch.set_max_batch_size(int(config["max_batch_size"]))
            self.tag_batch.set_batch_wait_timeout_s(float(config["batch_wait_timeout_s"]))

    def ready(self) -> bool:
        return self.tagger is not None

    def info(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.items() if k != "key"}

    def stats(self) -> dict[str, Any]:
        """Batch sizes seen so far (size → count); tests and operators read this."""
        return {"batch_sizes": dict(self.batch_sizes)}

    async def tag(self, item: str | list[str], with_tokens: bool) -> dict[str, Any]:
        result = await self.tag_batch(item)
        if not with_tokens:
            result = {**result, "tokens": None}
        return result

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def tag_batch(self, items: list[str | list[str]]) -> list[dict[str, Any]]:
        # One model for the whole batch, even if a reconfigure swaps it meanwhile.
        tagger, version = self.tagger, self.model.get("version")
        if tagger is None:
            raise RuntimeError("model not loaded yet")
        self.batch_sizes[len(items)] += 1
        sentences = await asyncio.to_thread(tagger.predict, items, max(1, len(items)))
        return [{**s.to_dict(with_tokens=True), "version": version} for s in sentences]


def _load_model(ref: str, registry_root: str) -> tuple[Any, dict[str, Any]]:
    from raytag.registry import Registry
    from raytag.tagger import load_tagger

    registry = Registry(registry_root)
    version = registry.resolve(ref)
    pinned = f"{version.name}@v{version.version}"
    tagger = load_tagger(pinned, registry_root)
    aliases = sorted(a for a, v in registry.aliases(version.name).items() if v == version.version)
    info = {"ref": ref, "ref_resolved": pinned, "version": version.version, "kind": version.kind,
            "labels": list(version.labels), "metrics": dict(version.metrics), "aliases": aliases}
    return tagger, info


api = FastAPI(
    title="raytag",
    version=raytag.__version__,
    description="Sequence taggers served by raytag on Ray Serve. Send `Authorization: Bearer <key>`.",
)
_AUTH_HEADER = Header(None, description="Bearer <API key>")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 404, 413, 503)
}


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class Ingress:
    def __init__(self, limits: dict[str, Any], taggers: dict[str, DeploymentHandle]) -> None:
        self.settings = IngressLimits.model_validate(limits)
        self.keys = load_keys(self.settings.api_keys_env, self.settings.api_keys_file)
        self.taggers = taggers

    def _authorize(self, header: str | None) -> None:
        if not authorized(header, self.keys):
            raise HTTPException(401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"})

    @api.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz", responses={503: {"model": Problem}})
    async def readyz(self) -> JSONResponse:
        try:
            states = await asyncio.wait_for(
                asyncio.gather(*(h.ready.remote() for h in self.taggers.values())), timeout=5
            )
        except Exception:  # noqa: BLE001 - any failure to answer means not ready
            states = [False]
        if all(states):
            return JSONResponse({"status": "ready", "models": sorted(self.taggers)})
        return JSONResponse({"detail": "models are still loading"}, status_code=503)

    @api.get("/v1/models", response_model=ModelList, responses=_ERRORS)
    async def models(self, authorization: str | None = _AUTH_HEADER) -> ModelList:
        self._authorize(authorization)
        infos = await asyncio.gather(*(h.info.remote() for h in self.taggers.values()))
        return ModelList(models=[
            ModelInfo(name=name, ref=info["ref"], version=info["version"], kind=info["kind"],
                      aliases=info["aliases"], labels=info["labels"], metrics=info["metrics"])
            for name, info in zip(self.taggers, infos, strict=True) if info
        ])

    @api.post("/v1/models/{name}/tag", response_model=TagResponse, responses=_ERRORS)
    async def tag(self, name: str, body: TagRequest, authorization: str | None = _AUTH_HEADER) -> TagResponse:
        self._authorize(authorization)
        handle = self.taggers.get(name)
        if handle is None:
            raise HTTPException(404, f"unknown model {name!r}; see GET /v1/models")
        items = body.inputs()
        if len(items) > self.settings.max_batch_items:
            raise HTTPException(413, f"{len(items)} inputs; at most {self.settings.max_batch_items} per request")
        for i, item in enumerate(items):
            size = len(item) if isinstance(item, str) else sum(len(t) + 1 for t in item)
            if size > self.settings.max_text_chars:
                raise HTTPException(413, f"input {i} has {size} characters; at most {self.settings.max_text_chars}")
        results = await asyncio.gather(*(self._tag_one(handle, item, body.return_tokens) for item in items))
        versions = {r.pop("version") for r in results}
        return TagResponse(model=name, version=max(versions) if versions else 0,
                           results=[TagResult(entities=r["entities"], tokens=r.get("tokens")) for r in results])

    async def _tag_one(self, handle: DeploymentHandle, item: str | list[str], with_tokens: bool) -> dict[str, Any]:
        from ray.exceptions import ActorDiedError, ActorUnavailableError
        from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

        for attempt in range(REPLICA_RETRIES + 1):
            try:
                return await handle.tag.remote(item, with_tokens)
            except BackPressureError:
                raise HTTPException(503, "overloaded; retry later",
                                    headers={"Retry-After": str(self.settings.retry_after_s)}) from None
            except DeploymentUnavailableError:
                raise HTTPException(503, "model unavailable; retry later",
                                    headers={"Retry-After": str(self.settings.retry_after_s)}) from None
            except (ActorDiedError, ActorUnavailableError):
                if attempt == REPLICA_RETRIES:
                    raise HTTPException(503, "replica lost; retry later",
                                        headers={"Retry-After": str(self.settings.retry_after_s)}) from None
        raise AssertionError("unreachable")


def build_app(args: dict[str, Any]) -> Any:
    """The typed app builder: ``args`` validate as :class:`ServeSettings` (``${VAR}`` expanded)."""
    from raytag.config import expand_env

    settings = ServeSettings.model_validate(expand_env(dict(args)))
    root = settings.registry_root
    if "://" not in root:
        # Replicas may run in another working directory: pin the registry path now.
        root = str(Path(root).absolute())
        settings = settings.model_copy(update={"registry_root": root})
    taggers = {
        model.name: TaggerDeployment.options(
            name=deployment_name(model.name),
            user_config=model.user_config(root),
            autoscaling_config=model.autoscaling.to_serve(),
            max_ongoing_requests=model.max_ongoing_requests,
            max_queued_requests=model.max_queued_requests,
            ray_actor_options={"num_cpus": model.num_cpus, "num_gpus": model.num_gpus},
        ).bind(model.user_config(root))
        for model in settings.models
    }
    return Ingress.options(
        num_replicas=settings.ingress_replicas, max_ongoing_requests=settings.ingress_max_ongoing_requests,
    ).bind(settings.ingress_limits().model_dump(mode="json"), taggers)
