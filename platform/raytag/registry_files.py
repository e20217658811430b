"""Artifact files of a registry version: checksums, checks against the manifest, verified downloads.

Every check names the first file at fault (missing, unexpected, wrong size, wrong
sha256), so a corrupt version is reported by its path, not by a bare mismatch.
Names and sizes are compared before any file is hashed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from raytag.model_card import CARD_FILE
from raytag.registry_refs import ChecksumError, RegistryError

__all__ = ["Files", "checksum_tree", "default_cache_dir", "download_verified", "sha256_file"]

# Under the registry's logger name, so one logging setting covers everything the registry reports.
log = logging.getLogger("raytag.registry")

_CHUNK = 1 << 20
Files = dict[str, dict[str, Any]]  # {relative posix path: {"sha256": ..., "size": ...}}


def _pump(fin: Any, fout: Any) -> tuple[str, int]:
    """Copy a stream, hashing on the way so no file is read twice."""
    digest, size = hashlib.sha256(), 0
    while chunk := fin.read(_CHUNK):
        digest.update(chunk)
        fout.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a local file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _local_files(directory: str | os.PathLike[str]) -> dict[str, Path]:
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"not a directory: {root}")
    found = {Path(d, f).relative_to(root).as_posix(): Path(d, f)
             for d, _, names in os.walk(root, followlinks=True) for f in names}
    return dict(sorted(found.items()))


def checksum_tree(directory: str | os.PathLike[str]) -> Files:
    """``{relative posix path: {"sha256": ..., "size": ...}}`` for every file below ``directory``."""
    return {rel: {"sha256": sha256_file(p), "size": p.stat().st_size} for rel, p in _local_files(directory).items()}


def _manifest_files(manifest: Mapping[str, Any], where: str) -> Files:
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise RegistryError(f"{where}: corrupt manifest, 'files' is not an object")
    for rel, entry in files.items():
        # The manifest decides where downloads land, so a path must not escape the target.
        if rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in rel.split("/")):
            raise RegistryError(f"{where}: corrupt manifest, unsafe file path {rel!r}")
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("size"), int)):
            raise RegistryError(f"{where}: corrupt manifest entry for {rel!r}")
    return files


def _check_listing(expected: Files, sizes: Mapping[str, int], where: str) -> None:
    """Names and sizes first: cheap, and it catches missing/extra files before any hashing."""
    if missing := sorted(expected.keys() - sizes.keys()):
        raise ChecksumError(missing[0], "is missing", where)
    if extra := sorted(sizes.keys() - expected.keys()):
        raise ChecksumError(extra[0], "is not listed in the manifest", where)
    for rel, entry in sorted(expected.items()):
        if sizes[rel] != entry["size"]:
            raise ChecksumError(rel, f"has {sizes[rel]} bytes, the manifest says {entry['size']}", where)


def _check_digest(rel: str, expected: Files, digest: str, where: str) -> None:
    if digest != expected[rel]["sha256"]:
        raise ChecksumError(rel, f"has sha256 {digest}, the manifest says {expected[rel]['sha256']}", where)


def _verify_local(directory: Path, expected: Files, where: str) -> None:
    found = _local_files(directory) if directory.is_dir() else {}
    _check_listing(expected, {rel: p.stat().st_size for rel, p in found.items()}, where)
    for rel, path in found.items():
        _check_digest(rel, expected, sha256_file(path), where)


def _card(manifest: Mapping[str, Any], where: str) -> dict[str, Any] | None:
    card = manifest.get("card")
    if card is None:
        return None
    if not (isinstance(card, dict) and card.get("path") == CARD_FILE and isinstance(card.get("sha256"), str)
            and isinstance(card.get("size"), int)):
        raise RegistryError(f"{where}: corrupt manifest entry for the model card")
    return card


def _check_card(card: Mapping[str, Any], data: bytes | None, where: str) -> None:
    if data is None:
        raise ChecksumError(CARD_FILE, "is missing", where)
    digest = hashlib.sha256(data).hexdigest()
    if digest != card["sha256"]:
        raise ChecksumError(CARD_FILE, f"has sha256 {digest}, the manifest says {card['sha256']}", where)


def default_cache_dir(root_uri: str) -> Path:
    """Where versions of the registry at ``root_uri`` are downloaded: a directory under the user cache."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "raytag" / "registry"
    # Keyed by root so two registries holding the same name/version do not evict each other.
    return base / hashlib.sha256(root_uri.encode()).hexdigest()[:16]


def download_verified(fs: pafs.FileSystem, remote: str, expected: Files, target: Path, ref: str, uri: str) -> Path:
    """``target`` holding the files under ``remote``, each checked against ``expected``.

    A copy already at ``target`` is re-verified and downloaded again if it no longer
    matches. ``ref`` and ``uri`` name the version in errors. Raises ``ChecksumError``
    naming the first changed, missing or unexpected file.
    """
    cached = f"{ref} (cached at {target})"
    if target.is_dir():
        try:
            _verify_local(target, expected, cached)
            return target
        except ChecksumError as exc:
            log.warning("discarding corrupt cached copy: %s", exc)
            shutil.rmtree(target)
    listing = {i.path[len(remote) + 1:]: i.size
               for i in fs.get_file_info(pafs.FileSelector(remote, allow_not_found=True, recursive=True))
               if i.type == pafs.FileType.File}
    _check_listing(expected, listing, uri)
    tmp = target.parent / f".download-{target.name}-{uuid.uuid4().hex}"
    try:
        for rel in expected:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(f"{remote}/{rel}") as fin, open(tmp / rel, "wb") as fout:
                digest, _ = _pump(fin, fout)
            _check_digest(rel, expected, digest, uri)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
            # A concurrent fetch finished first; its copy is as good as ours once verified.
            _verify_local(target, expected, cached)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
