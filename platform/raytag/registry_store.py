"""Storage under a registry root: its filesystem, layout, JSON files, versions and aliases.

:class:`RegistryStore` opens the root (a local directory, or any URI pyarrow
understands) and reads and writes what lives under it: ``v<N>`` directories and
their manifests, and ``aliases.json``, replaced whole and, on local POSIX roots,
under ``flock``. :class:`raytag.registry.Registry` builds publishing, resolving and
fetching on it; the layout is described there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow.fs as pafs

from raytag.registry_refs import ModelVersion, RegistryError

try:
    import fcntl
except ImportError:  # Windows: alias updates fall back to last-writer-wins
    fcntl = None  # type: ignore[assignment]

# Under the registry's logger name, so one logging setting covers everything the registry reports.
log = logging.getLogger("raytag.registry")

MANIFEST, ARTIFACT, ALIASES = "manifest.json", "artifact", "aliases.json"
_VERSION_DIR_RE = re.compile(r"v([1-9][0-9]*)")


def _dumps(obj: Any, what: str) -> bytes:
    try:  # strict JSON (no NaN/Infinity) so any reader can load it
        return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{what} is not JSON-serialisable: {exc}") from exc


class RegistryStore:
    """The filesystem and layout of one registry root; :class:`raytag.registry.Registry` is its public face."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        if isinstance(root, str) and "://" in root:
            try:
                self._fs, path = pafs.FileSystem.from_uri(root)
            except (ValueError, OSError) as exc:
                raise RegistryError(f"cannot open registry root {root!r}: {exc}") from exc
            self._root, self._local = path.rstrip("/"), False
            parts = urlsplit(root)  # keep the query (region, credentials ...) out of reported URIs
            self._uri = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        else:
            path = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
            self._fs, self._root, self._uri, self._local = pafs.LocalFileSystem(), path.as_posix(), str(path), True
        # Local disks need parent directories; object stores have none and would get marker objects.
        self._make_dirs = isinstance(self._fs, pafs.LocalFileSystem)

    @property
    def root(self) -> str:
        return self._uri

    @property
    def is_local(self) -> bool:
        """True for a plain-path root (atomic publish, in-place fetch)."""
        return self._local

    # -- storage helpers --------------------------------------------------
    def _path(self, *parts: str) -> str:
        return "/".join([self._root, *parts])

    def _uri_of(self, name: str, version: int) -> str:
        return str(Path(self._uri, name, f"v{version}")) if self._local else f"{self._uri}/{name}/v{version}"

    def _exists(self, path: str) -> bool:
        return self._fs.get_file_info(path).type != pafs.FileType.NotFound

    def _listdir(self, path: str, recursive: bool = False) -> list[pafs.FileInfo]:
        return self._fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=recursive))

    def _open_output(self, path: str) -> Any:
        if self._make_dirs:
            self._fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        return self._fs.open_output_stream(path)

    def _read_json(self, path: str, what: str) -> Any:
        try:
            with self._fs.open_input_stream(path) as fh:
                return json.loads(fh.read())
        except ValueError as exc:
            raise RegistryError(f"corrupt {what} at {path}: {exc}") from exc

    def _remove_dir(self, path: str) -> None:
        try:
            if self._exists(path):
                self._fs.delete_dir(path)
        except OSError as exc:  # best effort: the error that got us here matters more
            log.warning("could not remove %s: %s", path, exc)

    # -- versions and aliases ---------------------------------------------
    def _version_dirs(self, name: str) -> list[int]:
        """Every v<N> directory, finished or not, so a new publish never reuses an in-flight number."""
        found = (_VERSION_DIR_RE.fullmatch(i.base_name) for i in self._listdir(self._path(name))
                 if i.type == pafs.FileType.Directory)
        return sorted(int(m.group(1)) for m in found if m)

    def _versions(self, name: str) -> list[int]:
        return [v for v in self._version_dirs(name) if self._exists(self._path(name, f"v{v}", MANIFEST))]

    def _load(self, name: str, version: int) -> ModelVersion:
        manifest = self._read_json(self._path(name, f"v{version}", MANIFEST), "manifest")
        if not isinstance(manifest, dict) or manifest.get("name") != name or manifest.get("version") != version:
            raise RegistryError(f"corrupt manifest for {name}@v{version}: name/version do not match its location")
        return ModelVersion(name, version, manifest, self._uri_of(name, version))

    def _read_aliases(self, name: str) -> dict[str, int]:
        path = self._path(name, ALIASES)
        if not self._exists(path):
            return {}
        data = self._read_json(path, "aliases file")
        if not isinstance(data, dict) or not all(type(v) is int for v in data.values()):
            raise RegistryError(f"corrupt aliases file at {path}: expected {{alias: version}}")
        return data

    def _write_aliases(self, name: str, aliases: Mapping[str, int]) -> None:
        path, tmp = self._path(name, ALIASES), self._path(name, f".aliases-{uuid.uuid4().hex}.tmp")
        try:  # readers see the old file or the new one, never a partial write
            with self._open_output(tmp) as out:
                out.write(_dumps(dict(sorted(aliases.items())), "aliases"))
            self._fs.move(tmp, path)
        finally:
            if self._exists(tmp):
                self._fs.delete_file(tmp)

    @contextlib.contextmanager
    def _alias_lock(self, name: str) -> Iterator[None]:
        if not self._local or fcntl is None:
            yield
            return
        # flock dies with its holder, so a crashed publisher never leaves a stale lock.
        with open(Path(self._root, name, ".aliases.lock"), "a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
