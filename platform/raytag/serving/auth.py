"""API keys: loaded from an environment variable or a secret file, compared in constant time."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from raytag.errors import RaytagError


# Still a RuntimeError for callers written against the old base class.
class NoApiKeys(RaytagError, RuntimeError):
    """Serving refuses to start without a key: the inference routes would be open to anyone."""


def load_keys(env_name: str, file: str | None) -> list[bytes]:
    keys: list[str] = []
    keys += [k.strip() for k in os.environ.get(env_name, "").split(",")]
    if file:
        keys += [line.strip() for line in Path(file).read_text(encoding="utf-8").splitlines()]
    found = [k.encode() for k in keys if k and not k.startswith("#")]
    if not found:
        raise NoApiKeys(
            f"no API key configured: set {env_name} (comma-separated) or api_keys_file; "
            "clients then send 'Authorization: Bearer <key>'"
        )
    return found


def authorized(header: str | None, keys: list[bytes]) -> bool:
    """Whether an ``Authorization`` header carries one of ``keys`` (every key is compared)."""
    if not header:
        return False
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    presented = token.strip().encode()
    # Compare against every key, so the time taken does not depend on which one matched.
    matches = [hmac.compare_digest(presented, key) for key in keys]
    return any(matches)
