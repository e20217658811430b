"""Explicit Ray connections: a local Ray started on purpose, or an existing cluster.

Nothing in raytag calls ``ray.init`` anywhere else, so importing the package, or
calling a plain-Python stage, never starts Ray behind the caller's back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)


def dashboard_missing() -> str | None:
    """Why Ray's dashboard cannot start in this environment, or None when it can.

    The same probe Ray makes before it refuses ``include_dashboard=True``.
    """
    try:
        import ray.dashboard.optional_deps  # noqa: F401
    except ImportError as error:
        return f"dashboard packages missing: {error}"
    return None


@contextmanager
def ray_session(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
    runtime_env: dict[str, Any] | None = None,
    log_to_driver: bool = True,
) -> Iterator[None]:
    """Use the Ray already initialised in this process, connect to ``address``
    (or ``RAY_ADDRESS``), or start a local Ray with its dashboard on 127.0.0.1.

    The dashboard is started whenever its packages are installed: Ray Train's
    placement-group cleaner reads the State API it serves, and without it a Tune trial
    stopped early leaks its workers' CPUs, so the next trial waits forever on a small
    machine. Where they are missing (a GPU image with ``ray[train]`` only), Ray refuses
    ``include_dashboard=True``, so the session starts without it and says why.

    An address where nothing listens, or a cluster that refuses this client (a missing or
    wrong token), fails at once with a :class:`~raytag.cluster_access.ClusterAccessError`
    saying what to do, instead of Ray retrying for minutes.

    Ray is shut down on exit only when this call started or connected it.
    """
    import ray

    from raytag.cluster_access import ClusterAccessError, check_address, explain, refused_message

    if ray.is_initialized():
        yield
        return
    target = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"log_to_driver": log_to_driver}
    if runtime_env:
        kwargs["runtime_env"] = runtime_env
    if target and target != "local":
        check_address(target)
        try:
            ray.init(address=target, **kwargs)
        except ConnectionError as exc:
            raise ClusterAccessError(refused_message(f"cannot connect to the Ray cluster at {target}")) from exc
        except Exception as exc:
            explained = explain(exc)
            if explained is exc:
                raise
            raise explained from exc
    else:
        missing = dashboard_missing()
        if missing:
            logger.warning("starting Ray without its dashboard (%s); Tune trials stopped early may "
                           "hold their CPUs until the search ends", missing)
        ray.init(
            address="local",
            num_cpus=num_cpus,
            object_store_memory=object_store_memory,
            include_dashboard=not missing,
            dashboard_host="127.0.0.1",
            **kwargs,
        )
    try:
        yield
    finally:
        ray.shutdown()


@contextmanager
def ordered_data() -> Iterator[None]:
    """Inside the block, Ray Data hands blocks on in input order, not as their tasks finish."""
    from ray.data import DataContext

    context = DataContext.get_current()
    kept = context.execution_options.preserve_order
    context.execution_options.preserve_order = True
    try:
        yield
    finally:
        context.execution_options.preserve_order = kept
