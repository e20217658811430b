"""The Ray Serve application: one HTTP hop per request, one batching point per model.

``build_app(args)`` is the typed app builder named by ``import_path`` in
``serve/*.yaml`` (``raytag.serving.app:build_app``) and used by ``raytag serve``.

- One model: the ``tagger-<name>`` replicas are the HTTP ingress themselves and tag
  in process, so a request crosses proxy → replica and nothing else.
- Several models: an ``Ingress`` deployment answers HTTP and sends each request, with
  all its texts, to the model's ``tagger-<name>`` deployment in one call.

Either way the model lives in a :class:`~raytag.serving.slot.ModelSlot` whose
``user_config`` holds the registry reference: setting ``user_config: {ref: ...}`` for
``tagger-<name>`` under ``deployments:`` and deploying again reloads the model in the
running replicas, which keep answering with the previous version until then.

Both shapes also serve the try page at ``/`` and the API docs (:mod:`raytag.serving.web`).
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at
# runtime, after Serve has rebuilt the ingress class, and needs real types there.
import asyncio
import json
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

import raytag
from raytag.serving import web
from raytag.serving.auth import authorized, load_keys
from raytag.serving.schemas import ModelInfo, ModelList, Problem, TagRequest, TagResponse, ValidationProblem
from raytag.serving.settings import IngressLimits, RuntimeConfig, ServeSettings, deployment_name
from raytag.serving.slot import ModelSlot

# Retries of one request when the replica holding it died: the router sends it elsewhere.
REPLICA_RETRIES = 2

TaggerDeployment = serve.deployment(ModelSlot, name="tagger")

api = FastAPI(
    title="raytag",
    version=raytag.__version__,
    description="Sequence taggers served by raytag on Ray Serve. Send `Authorization: Bearer <key>`.",
    # Served by the gateway itself, so the `docs` setting decides who may read them.
    docs_url=None, redoc_url=None, openapi_url=None,
)
# The try page at / and its files: open to anyone, it holds no secret (the person types the key).
api.include_router(web.router)


class _BearerHeader(HTTPBearer):
    """The bearer scheme as the OpenAPI document declares it (Swagger UI's Authorize button),
    handing on the raw ``Authorization`` header: :func:`authorized` decides, in constant time."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return request.headers.get("authorization")


_AUTH_HEADER = Depends(_BearerHeader(scheme_name="bearer", auto_error=False,
                                     description="An API key of this server: `Authorization: Bearer <key>`."))
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Malformed request"},
    401: {"model": Problem, "description": "Missing or invalid API key"},
    404: {"model": Problem, "description": "Unknown model"},
    413: {"model": Problem, "description": "Too many inputs or an input too long"},
    415: {"model": Problem, "description": "The body is not application/json"},
    422: {"model": ValidationProblem, "description": "Invalid body: the field and the reason"},
    503: {"model": Problem, "description": "Overloaded or unavailable; retry after `Retry-After` seconds"},
}


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # ensure_ascii keeps any odd code point representable; allow_nan=False keeps it valid JSON.
    body = json.dumps(payload, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json", headers=headers)


@api.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    # FastAPI's default echoes the offending input, which may be NaN or a lone surrogate
    # that no JSON encoder accepts: name the field and the reason, never the value.
    problems = [{"loc": [p if isinstance(p, int) else str(p) for p in error.get("loc", ())],
                 "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
                for error in exc.errors()]
    return _json({"detail": problems}, status=422)


_TAG_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": TagRequest.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


def parse_request(content_type: str | None, raw: bytes) -> TagRequest:
    """The request body as a :class:`TagRequest`; 415 for a non-JSON body, 422 naming the field."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise HTTPException(415, f"send the body as application/json, not {media}")
    try:
        return TagRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_input=False)]
        ) from None


def _unavailable(detail: str, retry_after_s: int) -> HTTPException:
    return HTTPException(503, detail, headers={"Retry-After": str(retry_after_s)})


@serve.ingress(api)
class Gateway:
    """HTTP front: auth, limits, docs, and either its own model or handles to model deployments."""

    def __init__(self, limits: IngressLimits, local: tuple[str, RuntimeConfig] | None,
                 taggers: dict[str, DeploymentHandle]) -> None:
        self.settings = limits
        self.keys = load_keys(limits.api_keys_env, limits.api_keys_file)
        self.local_name = local[0] if local else None
        self.slot = ModelSlot(local[1], local[0]) if local else None
        self.taggers = taggers

    # What a tagger replica answers to handles, so both shapes look alike from outside.
    async def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        if self.slot is not None:
            await self.slot.reconfigure(user_config)

    def stats(self) -> dict[str, Any]:
        return self.slot.stats() if self.slot is not None else {}

    def _authorize(self, header: str | None) -> None:
        if not authorized(header, self.keys):
            raise HTTPException(401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"})

    def _names(self) -> list[str]:
        return ([self.local_name] if self.local_name else []) + list(self.taggers)

    @api.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz", responses={503: {"model": Problem}})
    async def readyz(self) -> JSONResponse:
        states = [self.slot.ready()] if self.slot is not None else []
        try:
            states += await asyncio.wait_for(
                asyncio.gather(*(h.ready.remote() for h in self.taggers.values())), timeout=5
            )
        except Exception:  # noqa: BLE001 - any failure to answer means not ready
            states = [False]
        if all(states):
            return JSONResponse({"status": "ready", "models": sorted(self._names())})
        return JSONResponse({"detail": "models are still loading"}, status_code=503)

    @api.get("/v1/models", response_model=ModelList, responses=_ERRORS)
    async def models(self, authorization: str | None = _AUTH_HEADER) -> ModelList:
        self._authorize(authorization)
        infos = [self.slot.info()] if self.slot is not None else []
        infos += await asyncio.gather(*(h.info.remote() for h in self.taggers.values()))
        return ModelList(models=[
            ModelInfo(name=name, ref=info["ref"], version=info["version"], kind=info["kind"],
                      aliases=info["aliases"], labels=info["labels"], metrics=info["metrics"])
            for name, info in zip(self._names(), infos, strict=True) if info
        ])

    @api.post("/v1/models/{name}/tag", response_model=TagResponse, responses=_ERRORS, openapi_extra=_TAG_BODY)
    async def tag(self, name: str, request: Request, authorization: str | None = _AUTH_HEADER) -> Response:
        # The body is read by hand so that credentials are checked before anything about it
        # is said, and pydantic parses the JSON itself (strictly: no NaN, no lone surrogates).
        self._authorize(authorization)
        body = parse_request(request.headers.get("content-type"), await request.body())
        items = body.inputs()
        limits = self.settings
        if len(items) > limits.max_batch_items:
            raise HTTPException(413, f"{len(items)} inputs; at most {limits.max_batch_items} per request")
        for i, item in enumerate(items):
            size = len(item) if isinstance(item, str) else sum(len(t) + 1 for t in item)
            if size > limits.max_text_chars:
                raise HTTPException(413, f"input {i} has {size} characters; at most {limits.max_text_chars}")
        if name == self.local_name and self.slot is not None:
            answer = await self.slot.tag(items, body.return_tokens)
        elif name in self.taggers:
            answer = await self._remote(self.taggers[name], items, body.return_tokens)
        else:
            raise HTTPException(404, f"unknown model {name!r}; see GET /v1/models")
        if answer is None:
            raise _unavailable("overloaded; retry later", limits.retry_after_s)
        version, results = answer
        return _json({"model": name, "version": version, "results": results})

    async def _remote(self, handle: DeploymentHandle, items: list[Any], with_tokens: bool) -> Any:
        from ray.exceptions import ActorDiedError, ActorUnavailableError
        from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

        retry_after = self.settings.retry_after_s
        for attempt in range(REPLICA_RETRIES + 1):
            try:
                return await handle.tag.remote(items, with_tokens)
            except BackPressureError:
                raise _unavailable("overloaded; retry later", retry_after) from None
            except DeploymentUnavailableError:
                raise _unavailable("model unavailable; retry later", retry_after) from None
            except (ActorDiedError, ActorUnavailableError):
                if attempt == REPLICA_RETRIES:
                    raise _unavailable("replica lost; retry later", retry_after) from None
        raise AssertionError("unreachable")

    def _docs_allowed(self, authorization: str | None) -> None:
        if self.settings.docs == "off":
            raise HTTPException(404, "API documentation is not served (docs: off)")
        if self.settings.docs == "private":
            self._authorize(authorization)

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi(self, authorization: str | None = _AUTH_HEADER) -> JSONResponse:
        self._docs_allowed(authorization)
        return JSONResponse(api.openapi())

    @api.get("/docs", include_in_schema=False)
    async def docs(self, authorization: str | None = _AUTH_HEADER) -> HTMLResponse:
        self._docs_allowed(authorization)
        return web.swagger_page("raytag API")

    @api.get("/redoc", include_in_schema=False)
    async def redoc(self, authorization: str | None = _AUTH_HEADER) -> HTMLResponse:
        self._docs_allowed(authorization)
        return web.redoc_page("raytag API")

    # Swagger UI and ReDoc, shipped in the installed packages: the docs work without internet.
    @api.get(web.DOCS_ASSETS_PATH + "/{name}", include_in_schema=False)
    async def docs_asset(self, name: str, authorization: str | None = _AUTH_HEADER) -> FileResponse:
        self._docs_allowed(authorization)
        return web.docs_asset(name)


def build_app(args: dict[str, Any]) -> Any:
    """The typed app builder: ``args`` validate as :class:`ServeSettings` (``${VAR}`` expanded)."""
    from raytag.config import expand_env

    settings = ServeSettings.model_validate(expand_env(dict(args)))
    root = settings.registry_root
    if "://" not in root:
        # Replicas may run in another working directory: pin the registry path now.
        root = str(Path(root).absolute())
    limits = settings.ingress_limits()
    if len(settings.models) == 1:
        [model] = settings.models
        runtime = model.runtime(root)
        return serve.deployment(Gateway).options(
            name=deployment_name(model.name), user_config=runtime.model_dump(mode="json"),
            **model.deployment_options(settings.retry_after_s),
        ).bind(limits, (model.name, runtime), {})
    taggers = {
        model.name: TaggerDeployment.options(
            name=deployment_name(model.name), user_config=model.runtime(root).model_dump(mode="json"),
            **model.deployment_options(settings.retry_after_s),
        ).bind(model.runtime(root), model.name)
        for model in settings.models
    }
    return serve.deployment(Gateway).options(name="Ingress", **settings.ingress_options()).bind(limits, None, taggers)
