"""Locating and loading corpus files: bundled corpora, archives, any pyarrow filesystem.

A source is one of
- ``raytag:gmb`` — a corpus bundled inside the package;
- a local path or glob (``data/*.conll``), or a ``scheme://`` URI (``s3://…``) read
  through :mod:`pyarrow.fs`;
- optionally compressed: ``.gz``, or ``.zip`` with a single member (or ``archive.zip#member``).
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from raytag.errors import CorpusError

BUNDLED = {
    "gmb": "gmb_ner_dataset.csv.zip",
}


@dataclass(frozen=True)
class SourceFile:
    """The bytes of one corpus file and the name errors should use for it."""

    name: str
    data: bytes
    sha256: str


def bundled_path(name: str) -> Path:
    if name not in BUNDLED:
        raise CorpusError(f"raytag:{name}", None, f"no bundled corpus {name!r}; bundled: {', '.join(BUNDLED)}")
    return Path(str(resources.files("raytag") / "data" / BUNDLED[name]))


def expand(source: str) -> list[str]:
    """Expand one configured source into concrete file references, sorted for determinism."""
    if source.startswith("raytag:"):
        return [source]
    if "://" in source:
        return [source]
    path, _, member = source.partition("#")
    if any(ch in path for ch in "*?["):
        matches = sorted(glob.glob(path))
        if not matches:
            raise CorpusError(source, None, "no file matches this pattern")
        return [m + (f"#{member}" if member else "") for m in matches]
    return [source]


def _read_raw(path: str, display: str) -> bytes:
    if path.startswith("raytag:"):
        return bundled_path(path.removeprefix("raytag:")).read_bytes()
    if "://" in path:
        import pyarrow.fs as pafs

        try:
            fs, inner = pafs.FileSystem.from_uri(path)
            with fs.open_input_stream(inner) as stream:
                return stream.read()
        except FileNotFoundError:
            raise CorpusError(display, None, "file not found") from None
        except OSError as exc:
            raise CorpusError(display, None, f"cannot read: {exc}") from None
    file = Path(path)
    if not file.exists():
        raise CorpusError(display, None, f"file not found (working directory {Path.cwd()})")
    if file.is_dir():
        raise CorpusError(display, None, "is a directory; name a file or a glob such as dir/*.txt")
    return file.read_bytes()


def load(source: str) -> SourceFile:
    """Read one concrete source (as returned by :func:`expand`), decompressing archives."""
    path, _, member = source.partition("#")
    raw = _read_raw(path, source)
    sha = hashlib.sha256(raw).hexdigest()
    real = str(bundled_path(path.removeprefix("raytag:"))) if path.startswith("raytag:") else path
    lowered = real.lower()
    if lowered.endswith(".zip"):
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
                if member:
                    if member not in names:
                        raise CorpusError(source, None, f"archive has no member {member!r}; members: {names}")
                elif len(names) != 1:
                    raise CorpusError(source, None, f"archive has {len(names)} members; name one as {path}#<member>")
                else:
                    member = names[0]
                data = archive.read(member)
        except zipfile.BadZipFile as exc:
            raise CorpusError(source, None, f"not a valid zip archive: {exc}") from None
        return SourceFile(f"{source}#{member}" if "#" not in source else source, data, sha)
    if lowered.endswith(".gz"):
        try:
            return SourceFile(source, gzip.decompress(raw), sha)
        except (OSError, EOFError) as exc:
            raise CorpusError(source, None, f"not a valid gzip file: {exc}") from None
    return SourceFile(source, raw, sha)
