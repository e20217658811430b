"""``raytag cluster``: a Ray cluster on this machine with token authentication on from the start.

``ray start --head`` enables token authentication only if a token already exists; on a
fresh machine it starts an open cluster, and clients with ``RAY_AUTH_MODE=token`` then
fail. These verbs create the token first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import typer
from rich.markup import escape

from raytag.cli._util import app, console, fail
from raytag.cluster_access import AUTH_MODE_ENV, ClusterAccessError, Token, ensure_token

cluster_app = typer.Typer(help="Start a token-authenticated Ray cluster on this machine.", no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")


def _describe(token: Token) -> str:
    if token.path is None:
        return f"Ray token: from {token.source}"
    state = "created" if token.created else "permissions tightened to 0600" if token.tightened else "existing"
    return f"Ray token: {token.path} ({state})"


@cluster_app.command("token")
def cluster_token() -> None:
    """Create this machine's Ray token if there is none (never replaced; printed nowhere).

    Run it before `ray start --head`, which enables token authentication only when a token
    exists. Clients on this machine then `export RAY_AUTH_MODE=token`; clients elsewhere
    need the same token (RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH).
    """
    try:
        token = ensure_token()
    except ClusterAccessError as exc:
        fail(exc)
    console.print(escape(_describe(token)), highlight=False, soft_wrap=True)
    console.print(f"clients: export {AUTH_MODE_ENV}=token", highlight=False)


def _ray_executable() -> str:
    beside = Path(sys.executable).parent / "ray"
    found = str(beside) if beside.is_file() else shutil.which("ray")
    if not found:
        raise ClusterAccessError("the `ray` command is not installed in this environment")
    return found


@cluster_app.command("start", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def cluster_start(ctx: typer.Context) -> None:
    """`ray start --head` with token authentication on: creates the token first if needed.

    Every other argument goes to `ray start` as is, e.g. `raytag cluster start --num-cpus 4
    --dashboard-port 8265`. Stop the cluster with `ray stop`.
    """
    try:
        token = ensure_token()
        command = [_ray_executable(), "start", "--head", *(a for a in ctx.args if a != "--head")]
    except ClusterAccessError as exc:
        fail(exc)
    console.print(escape(_describe(token)), highlight=False, soft_wrap=True)
    code = subprocess.call(command, env={**os.environ, AUTH_MODE_ENV: "token"})
    if code != 0:
        fail(ClusterAccessError(f"`ray start --head` failed (exit {code}); its output above says why"))
    console.print(f"token authentication is on; clients: export {AUTH_MODE_ENV}=token", highlight=False)
