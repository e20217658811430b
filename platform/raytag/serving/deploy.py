"""Deploy serving applications from Serve config data, the way ``serve deploy`` does.

Deploys go through Serve's public REST API on Ray's dashboard, as ``serve deploy`` and
KubeRay do. Config deploys give every deployment a code version derived from the import
path and runtime_env, so a redeploy that only changes a model's registry ref updates
``user_config`` and Serve calls ``reconfigure`` on the running replicas: no restart,
no dropped request. (``serve.run`` on a Python app object gives every deploy a new
version and would replace them.)
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from unittest import mock
from typing import Any

import yaml

from raytag.errors import ConfigError, RaytagError
from raytag.serving.settings import ServeSettings, deployment_name

APP_IMPORT_PATH = "raytag.serving.app:build_app"


class DeployFailed(RaytagError, RuntimeError):
    """An application did not start; the message carries its replicas' error (still a RuntimeError)."""


def app_config(args: dict[str, Any], name: str = "raytag", route_prefix: str = "/",
               host: str = "127.0.0.1", port: int = 8000) -> dict[str, Any]:
    """A one-application Serve config for ``build_app(args)`` (args are validated here)."""
    ServeSettings.model_validate(args)
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": host, "port": port},
        "applications": [{"name": name, "route_prefix": route_prefix, "import_path": APP_IMPORT_PATH,
                          "args": args}],
    }


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a Serve config file and validate it (see :func:`check_config`)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read Serve config: {exc}") from None
    return check_config(data, str(path))


def is_serve_config(data: Any) -> bool:
    """Whether parsed YAML is a Serve config (``applications:``) rather than a raytag job."""
    return isinstance(data, dict) and "applications" in data


def check_config(data: Any, path: str) -> dict[str, Any]:
    """Validate Serve config data: Serve's own schema, then for every raytag application its
    ``args`` as :class:`ServeSettings` and its ``deployments:`` entries, which may only
    switch a model's version (``name: tagger-<model>`` with ``user_config``)."""
    from pydantic import ValidationError

    from ray.serve.schema import ServeDeploySchema

    from raytag.config import format_validation_error

    if not isinstance(data, dict) or not isinstance(data.get("applications"), list):
        raise ConfigError(f"{path}: not a Serve config (no 'applications' list)")
    try:
        ServeDeploySchema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    for i, application in enumerate(data["applications"]):
        if application.get("import_path") != APP_IMPORT_PATH:
            continue
        where = f"{path}: applications[{i}]"
        settings = _settings(application, where)
        names = {deployment_name(m.name): m for m in settings.models}
        for j, entry in enumerate(application.get("deployments") or []):
            name = entry.get("name")
            extra = sorted(set(entry) - {"name", "user_config"})
            if name not in names or extra:
                raise ConfigError(
                    f"{where}.deployments[{j}] ({name}): raytag applications set replicas, autoscaling, "
                    "resources and limits in args.models[]; deployments: may only give a model's "
                    f"deployment (one of {', '.join(sorted(names))}) a user_config to switch its version"
                    + (f" (unexpected: {', '.join(extra)})" if extra else ""))
            try:
                names[name].runtime(settings.registry_root).merged(entry.get("user_config"))
            except ValidationError as exc:
                raise ConfigError(format_validation_error(exc, f"{where}.deployments[{j}].user_config")) from None
    return data


def dashboard_address(address: str | None = None) -> str:
    """The HTTP address of Ray's dashboard, where Serve's REST API takes config deploys.

    ``address`` if given, else ``RAY_DASHBOARD_ADDRESS`` (as for ``serve deploy``), else the
    dashboard of the Ray this process is connected to.
    """
    import ray

    found = address or os.environ.get("RAY_DASHBOARD_ADDRESS")
    if not found:
        if not ray.is_initialized():
            raise RuntimeError("not connected to Ray: start or connect to Ray before deploying")
        # Connected already, so this only returns the running session's context (public API).
        found = ray.init(ignore_reinit_error=True).dashboard_url
    if not found:
        raise RuntimeError("this Ray runs without its dashboard, which serves Serve's REST API for config "
                           "deploys; install ray[serve] (it brings the dashboard) or set RAY_DASHBOARD_ADDRESS")
    return found if "://" in found else f"http://{found}"


def _settings(application: dict[str, Any], where: str) -> ServeSettings:
    """A raytag application's ``args``, with ``${VAR}`` expanded as ``build_app`` will."""
    from pydantic import ValidationError

    from raytag.config import expand_env, format_validation_error

    # build_app expands ${VAR} where the app runs, with its runtime_env's variables set.
    try:
        with _runtime_env_vars(application):
            return ServeSettings.model_validate(expand_env(application.get("args") or {}))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{where}.args")) from None
    except ConfigError as exc:
        raise ConfigError(f"{where}.args: {exc}") from None


def _runtime_env_vars(application: dict[str, Any]) -> Any:
    env_vars = (application.get("runtime_env") or {}).get("env_vars") or {}
    return mock.patch.dict(os.environ, {str(k): str(v) for k, v in env_vars.items()})


def preflight(config: dict[str, Any]) -> None:
    """What would make a local deploy fail, checked here before anything is deployed.

    Replicas of a Ray started by this process inherit its environment, so an API key
    missing here is missing there too, and the registry they read is this one: check
    both now rather than after Serve has retried the replicas for seconds.
    """
    from raytag.registry import Registry
    from raytag.serving.auth import NoApiKeys, load_keys

    for i, application in enumerate(config["applications"]):
        if application.get("import_path") != APP_IMPORT_PATH:
            continue
        settings = _settings(application, f"applications[{i}]")
        with _runtime_env_vars(application):
            try:
                load_keys(settings.api_keys_env, settings.api_keys_file)
            except OSError as exc:
                raise NoApiKeys(f"api_keys_file {settings.api_keys_file}: {exc.strerror or exc}") from None
        registry = Registry(settings.registry_root)
        for model in settings.models:
            registry.resolve(model.ref)


# The last line of a Python traceback: "package.module.ErrorName: message".
_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*): (\S.*)$")


def failure_reason(application: Any) -> str:
    """Why a Serve application failed: the error its failed deployment's replicas raised,
    not only Serve's summary ("Failed to update the deployments [...]")."""
    for name, deployment in (getattr(application, "deployments", None) or {}).items():
        status = str(getattr(deployment, "status", ""))
        message = getattr(deployment, "message", "") or ""
        if not status.endswith(("DEPLOY_FAILED", "UNHEALTHY")) or not message:
            continue
        for line in reversed(message.splitlines()):
            found = _ERROR_LINE.match(line.strip()) if line[:1].strip() else None
            if found:
                return f"deployment {name}: {found.group(1)}: {found.group(2)}"
        return f"deployment {name}: {' '.join(message.split())}"
    return " ".join(str(getattr(application, "message", "")).split())


def deploy(config: dict[str, Any], *, wait_s: float = 300.0, address: str | None = None) -> None:
    """Apply a Serve config as ``serve deploy`` does and wait until every application is RUNNING.

    The config goes to Serve's REST API (``PUT /api/serve/applications/`` on Ray's dashboard,
    see :func:`dashboard_address`), which starts Serve with the config's ``http_options`` if
    it is not running and applies the config declaratively: applications missing from it
    are removed, and a change to a deployment's ``user_config`` alone reconfigures its
    running replicas in place.
    """
    from ray import serve
    from ray.dashboard.modules.serve.sdk import ServeSubmissionClient
    from ray.serve.schema import ServeDeploySchema

    # The REST API validates too, but answers a bad config with a bare 400.
    ServeDeploySchema.model_validate(config)
    url = dashboard_address(address)
    try:
        ServeSubmissionClient(url).deploy_applications(config)
    except (OSError, RuntimeError, ValueError) as exc:  # connection refused, HTTP errors, a bad address
        raise RuntimeError(f"serve deploy through Ray's dashboard at {url} failed: {exc}") from None
    names = [app["name"] for app in config["applications"]]
    deadline = time.monotonic() + wait_s
    while True:
        status = serve.status().applications
        states = {name: status[name].status if name in status else "NOT_STARTED" for name in names}
        if all(state == "RUNNING" for state in states.values()):
            return
        failed = [f"{n}: {failure_reason(status[n])}" for n, s in states.items() if s in ("DEPLOY_FAILED", "UNHEALTHY")]
        if failed:
            raise DeployFailed(f"serve deploy failed: application {'; '.join(failed)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"applications not running after {wait_s:.0f}s: {states}")
        time.sleep(0.5)
