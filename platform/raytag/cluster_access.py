"""Reaching a Ray cluster: its authentication token, its address, and what to do when either fails.

Ray 2.60 protects clusters with a shared token. ``ray start --head`` turns token
authentication on only when a token already exists (``RAY_AUTH_TOKEN``, the file named
by ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``), and clients send it only with
``RAY_AUTH_MODE=token``. On a fresh machine there is no token, so the cluster starts
*without* authentication and every client that sets ``RAY_AUTH_MODE=token`` fails:
:func:`ensure_token` creates the token first. :func:`explain` turns Ray's authentication
and connection errors into one line that says what to do.

Plain Python: nothing here imports Ray.
"""

from __future__ import annotations

import os
import secrets
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from raytag.errors import RaytagError

__all__ = ["ClusterAccessError", "Token", "check_address", "ensure_token", "explain", "token_location"]

TOKEN_ENV, TOKEN_PATH_ENV, AUTH_MODE_ENV = "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"
WHERE_TOKENS_ARE = "RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH names, or ~/.ray/auth_token"
START_HINT = "start one with `raytag cluster start`, or check --address / RAY_ADDRESS"


class ClusterAccessError(RaytagError):
    """The cluster cannot be reached, or it refused this client; the message says what to do."""


@dataclass(frozen=True)
class Token:
    """Where this machine's Ray token is: ``path`` is None when it comes from ``RAY_AUTH_TOKEN``."""

    source: str
    path: Path | None
    created: bool = False
    tightened: bool = False


def token_location() -> tuple[str, Path | None]:
    """Where Ray reads the token from, in Ray's own order: ``RAY_AUTH_TOKEN`` (the value
    itself), else the file ``RAY_AUTH_TOKEN_PATH`` names, else ``~/.ray/auth_token``."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return TOKEN_ENV, None
    named = os.environ.get(TOKEN_PATH_ENV, "")
    if named:
        return TOKEN_PATH_ENV, Path(named).expanduser()
    return "~/.ray/auth_token", Path.home() / ".ray" / "auth_token"


def ensure_token() -> Token:
    """Make sure a Ray token exists, creating one (64 hex digits, mode 0600) where Ray looks.

    An existing token is kept: replacing it would lock this machine out of a cluster that
    already runs with it. A token file readable by others is made private (0600).
    """
    source, path = token_location()
    if path is None:
        return Token(source, None)
    try:
        if path.is_file() and path.read_text(encoding="utf-8").strip():
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077 and path.stat().st_uid == os.getuid():
                path.chmod(0o600)
                return Token(source, path, tightened=True)
            return Token(source, path)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_CREAT with 0600: the token is never readable by others, not even for a moment.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secrets.token_hex(32))
        path.chmod(0o600)
    except OSError as exc:
        raise ClusterAccessError(f"cannot write the Ray token to {path}: {exc.strerror or exc}") from None
    return Token(source, path, created=True)


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once, in one line, when nothing listens at a ``ray.init`` address.

    Without this, ``ray.init("host:port")`` with nothing behind the port retries for
    minutes. ``auto``, ``local`` and addresses without a port are left to Ray.
    """
    if address in ("auto", "local"):
        return
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "", address
    if scheme in ("http", "https"):
        raise ClusterAccessError(
            f"--address {address} is a dashboard / Jobs API address, which only `raytag submit` and `raytag jobs` "
            "take; give the cluster's GCS address (host:6379) or a Ray Client address (ray://host:10001)")
    if scheme not in ("", "ray"):
        return
    host, colon, port = rest.rstrip("/").rpartition(":")
    if not colon or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterAccessError(f"no Ray cluster answers at {address} ({reason.lower()}): {START_HINT}") from None


def _is_ray_auth_error(exc: BaseException) -> bool:
    kind = type(exc)
    return kind.__name__ == "AuthenticationError" and kind.__module__.startswith("ray")


def auth_message(text: str) -> str:
    """What to do about one of Ray's token-authentication errors (given its message)."""
    mode_on = os.environ.get(AUTH_MODE_ENV, "").lower() == "token"
    if "Authentication failed" in text or "invalid or incorrect" in text:
        return ("the Ray cluster rejected this client's token: use the cluster's own token (~/.ray/auth_token "
                f"on its head node) through {WHERE_TOKENS_ARE}")
    if "Authentication required" in text and not mode_on:
        return ("the Ray cluster requires a token and this client sent none: export RAY_AUTH_MODE=token "
                f"(the token is read from {WHERE_TOKENS_ARE})")
    if "RAY_AUTH_TOKEN_PATH is set" in text:
        return f"RAY_AUTH_TOKEN_PATH names {os.environ.get(TOKEN_PATH_ENV, '')!r}, which is missing or empty"
    if "no authentication token" in text or "couldn't find an authentication token" in text:
        return ("RAY_AUTH_MODE=token but this machine has no Ray token: run `raytag cluster token` before starting "
                "the cluster (or use `raytag cluster start`; a cluster started without a token runs without "
                f"authentication, restart it), or give the cluster's token through {WHERE_TOKENS_ARE}")
    first = text.split(". ")[0].strip().rstrip(".")
    return f"Ray token authentication failed: {first}"


def explain(exc: BaseException) -> BaseException:
    """``exc`` as one actionable line when it is Ray refusing or not answering; else ``exc``."""
    if isinstance(exc, ClusterAccessError):
        return exc
    if _is_ray_auth_error(exc):
        return ClusterAccessError(auth_message(str(getattr(exc, "message", "") or exc)))
    if isinstance(exc, ConnectionError):
        text = " ".join(str(exc).split())
        if text.startswith("Failed to connect to Ray at address:"):
            # The Jobs SDK: nothing answered HTTP at the dashboard address.
            address = text.removeprefix("Failed to connect to Ray at address:").strip().rstrip(".")
            return ClusterAccessError(f"no Ray dashboard / Jobs API answers at {address}: {START_HINT}")
        if text.startswith("Failed to connect to Ray cluster at") or text == "ray client connection timeout":
            return ClusterAccessError(refused_message(text))
    return exc


def refused_message(reason: str) -> str:
    """A cluster whose port answers but which did not let this client in (Ray does not say
    why; a missing or wrong token is the usual cause)."""
    if os.environ.get(AUTH_MODE_ENV, "").lower() == "token":
        advice = f"if it uses token authentication, give this client the cluster's own token ({WHERE_TOKENS_ARE})"
    else:
        advice = ("with token authentication, export RAY_AUTH_MODE=token and give it the cluster's token "
                  f"({WHERE_TOKENS_ARE})")
    return f"{reason.rstrip('.')}: the cluster answers but did not accept this client; {advice}"
