"""Read access to a prepared corpus directory (the output of ``raytag prepare``).

Everything downstream of prepare takes this directory, never the raw files.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from raytag.artifact_files import CHARS_FILE, LABELS_FILE, MANIFEST, WORDS_FILE
from raytag.corpus.vocab import Vocabulary
from raytag.errors import RaytagError

__all__ = ["MANIFEST", "PreparedCorpus", "UnknownSplit"]


class UnknownSplit(RaytagError, KeyError):
    """A split the prepared corpus does not have (still a KeyError for older callers)."""

    def __str__(self) -> str:
        # KeyError's own str() quotes the message like a repr.
        return str(self.args[0]) if self.args else ""


class PreparedCorpus:
    """A prepared corpus: manifest, vocabularies and per-split Parquet shards."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not (self.directory / MANIFEST).is_file():
            raise FileNotFoundError(
                f"{self.directory} is not a prepared corpus (no {MANIFEST}); run `raytag prepare` first"
            )

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.directory / MANIFEST).read_text(encoding="utf-8"))

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    @property
    def entity(self) -> bool:
        return bool(self.manifest["entity"])

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    @cached_property
    def words(self) -> Vocabulary:
        return Vocabulary.load(self.directory / WORDS_FILE)

    @cached_property
    def chars(self) -> Vocabulary:
        return Vocabulary.load(self.directory / CHARS_FILE)

    @cached_property
    def labels(self) -> Vocabulary:
        return Vocabulary.load(self.directory / LABELS_FILE)

    def summary(self) -> dict[str, Any]:
        """What a model card says about the data: inputs, split sizes, vocabulary sizes, skips."""
        manifest = self.manifest
        return {
            "inputs": [{k: entry.get(k) for k in ("file", "split", "sha256", "bytes")}
                       for entry in manifest.get("inputs", [])],
            "splits": {name: {"sentences": info.get("sentences"), "tokens": info.get("tokens")}
                       for name, info in manifest["splits"].items()},
            "vocab": {k: v for k, v in (manifest.get("vocab") or {}).items() if k != "files"},
            "scheme": manifest.get("scheme"),
            "skipped_sentences": (manifest.get("errors") or {}).get("skipped_sentences", 0),
        }

    def require_split(self, name: str) -> None:
        if name not in self.manifest["splits"]:
            raise UnknownSplit(f"split {name!r} is not in {self.directory} (its splits: {', '.join(self.splits)})")

    def shard_paths(self, split: str) -> list[str]:
        self.require_split(split)
        return [str(self.directory / p) for p in self.manifest["splits"][split]["shards"]]

    def sentences(self, split: str) -> int:
        self.require_split(split)
        return int(self.manifest["splits"][split]["sentences"])

    def documents(self, split: str) -> list[int]:
        """Each sentence's document id, in file order (:meth:`table`'s order).

        A corpus prepared before documents were recorded has no ``document`` column:
        each sentence is then a document of its own.
        """
        paths = self.shard_paths(split)
        if paths and "document" in pq.read_schema(paths[0]).names:
            return self.table(split, columns=["document"]).column("document").to_pylist()
        return list(range(sum(pq.read_metadata(path).num_rows for path in paths)))

    def table(self, split: str, columns: list[str] | None = None) -> pa.Table:
        """A whole split in memory, in file order."""
        tables = [pq.read_table(path, columns=columns) for path in self.shard_paths(split)]
        return pa.concat_tables(tables) if tables else pa.table({})
