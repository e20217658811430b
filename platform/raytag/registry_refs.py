"""References to registered models, what they resolve to, and the registry's errors.

A reference is ``name``, ``name@3``, ``name@v3`` or ``name@alias``; :func:`parse_ref`
checks it without touching storage, so callers can reject a bad one early.
:class:`raytag.registry.Registry` resolves it to a :class:`ModelVersion`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raytag.errors import RaytagError
from raytag.model_card import CARD_FILE

__all__ = ["ChecksumError", "ModelNotFoundError", "ModelRef", "ModelVersion", "RegistryError", "parse_ref"]

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSION_REF_RE = re.compile(r"v?([0-9]+)", re.IGNORECASE)


class RegistryError(RaytagError):
    """Base class for registry errors: bad references, bad input, corrupt data."""


class ModelNotFoundError(RegistryError, LookupError):
    """The referenced model, version or alias does not exist."""


class ChecksumError(RegistryError):
    """An artifact file is changed, missing, or not listed in the manifest."""

    def __init__(self, path: str, reason: str, where: str) -> None:
        super().__init__(f"{where}: artifact file {path!r} {reason}")
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: exactly one of ``version`` and ``alias`` is set."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@v{self.version}" if self.version is not None else f"{self.name}@{self.alias}"


@dataclass(frozen=True)
class ModelVersion:
    """One published version: its manifest and the URI (or local path) of its directory."""

    name: str
    version: int
    manifest: dict[str, Any] = field(hash=False, repr=False)
    uri: str

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def labels(self) -> list[str]:
        return self.manifest["labels"]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest["metrics"]

    @property
    def card_uri(self) -> str | None:
        """Where the version's model card is, or None for a version published without one."""
        card = self.manifest.get("card")
        if not isinstance(card, dict):
            return None
        return str(Path(self.uri, CARD_FILE)) if "://" not in self.uri else f"{self.uri}/{CARD_FILE}"


def _check_name(value: object, what: str, ref: str | None = None) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        context = f" in reference {ref!r}" if ref is not None else ""
        raise RegistryError(f"invalid {what} {value!r}{context}: use letters, digits, '-', '_' and '.', "
                            "starting with a letter or digit")
    return value


def _check_alias(alias: object) -> str:
    name = _check_name(alias, "alias")
    if _VERSION_REF_RE.fullmatch(name):
        raise RegistryError(f"invalid alias {name!r}: aliases cannot look like versions (digits or v<digits>)")
    return name


def parse_ref(ref: str) -> ModelRef:
    """Parse ``name``, ``name@3``, ``name@v3`` or ``name@alias``; bare ``name`` means ``name@latest``."""
    if not isinstance(ref, str) or not ref:
        raise RegistryError(f"invalid model reference {ref!r}: expected 'name', 'name@3', 'name@v3' or 'name@alias'")
    name, sep, selector = ref.partition("@")
    _check_name(name, "model name", ref)
    if not sep:
        return ModelRef(name, alias="latest")
    if not selector:
        raise RegistryError(f"invalid model reference {ref!r}: nothing after '@'")
    if "@" in selector:
        raise RegistryError(f"invalid model reference {ref!r}: more than one '@'")
    match = _VERSION_REF_RE.fullmatch(selector)
    if not match:
        return ModelRef(name, alias=_check_name(selector, "alias", ref))
    if int(match.group(1)) < 1:
        raise RegistryError(f"invalid model reference {ref!r}: versions start at 1")
    return ModelRef(name, version=int(match.group(1)))
