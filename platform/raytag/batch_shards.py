"""The output directory of a batch prediction run: tagged shards and the rejects file.

Shards are named by their first record, so listing them sorts them in input order;
each shard's rejects go to a side directory that :func:`_merge_rejects` concatenates
into ``rejects.jsonl`` once every shard is written. Plain functions, no Ray.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from raytag.batch_options import BatchPredictError
from raytag.batch_rows import ENTITY, output_rows, reject_row

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = ["REJECTS_FILE", "write_shard"]

REJECTS_FILE = "rejects.jsonl"
_REJECTS_DIR = "_rejects"


def _filesystem(out: str) -> tuple[pafs.FileSystem, str]:
    import pyarrow.fs as pafs

    if "://" in out:
        return pafs.FileSystem.from_uri(out)
    return pafs.LocalFileSystem(), str(Path(out).resolve())


def _write_jsonl(fs: pafs.FileSystem, path: str, rows: Sequence[dict[str, Any]]) -> None:
    with fs.open_output_stream(path) as stream:
        stream.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))


def write_shard(rows: list[dict[str, Any]], out: str, output_format: str, with_tags: bool) -> dict[str, Any]:
    """Write one batch of tagged rows (its rejects aside); return what it wrote, for the progress line."""
    import pyarrow.parquet as pq

    fs, base = _filesystem(out)
    first = rows[0]
    # Zero-padded (file, row) of the first record: shard names sort in input order.
    name = f"part-{first['file_index']:05d}-{max(first['row'], 0):010d}"
    good = [r for r in rows if r["reject"] is None]
    bad = [reject_row(r) for r in rows if r["reject"] is not None]
    shard = None
    if good:
        shard = f"{name}.{output_format}"
        written = output_rows(good, with_tags, output_format)
        if output_format == "jsonl":
            _write_jsonl(fs, f"{base}/{shard}", written)
        else:
            schema = pa.schema([("source", pa.string()), ("line", pa.int64()), ("row", pa.int64()),
                                ("text", pa.string()), ("tokens", pa.list_(pa.string())),
                                ("entities", pa.list_(ENTITY)),
                                *([("tags", pa.list_(pa.string()))] if with_tags else []), ("fields", pa.string())])
            pq.write_table(pa.Table.from_pylist(written, schema=schema), f"{base}/{shard}", filesystem=fs)
    if bad:
        fs.create_dir(f"{base}/{_REJECTS_DIR}", recursive=True)
        _write_jsonl(fs, f"{base}/{_REJECTS_DIR}/{name}.jsonl", bad)
    return {"shard": shard or "", "rows": len(good), "rejects": len(bad), "words": sum(r["words"] for r in good),
            "examples": json.dumps([[b["where"], b["reason"]] for b in bad[:5]])}


def _merge_rejects(out: str) -> str | None:
    """Concatenate the reject shards, in input order, into ``<out>/rejects.jsonl``."""
    import pyarrow.fs as pafs

    fs, base = _filesystem(out)
    infos = fs.get_file_info(pafs.FileSelector(f"{base}/{_REJECTS_DIR}", allow_not_found=True))
    parts = sorted(i.path for i in infos if i.type == pafs.FileType.File)
    if not parts:
        return None
    with fs.open_output_stream(f"{base}/{REJECTS_FILE}") as stream:
        for part in parts:
            with fs.open_input_stream(part) as source:
                stream.write(source.read())
    fs.delete_dir(f"{base}/{_REJECTS_DIR}")
    return f"{out.rstrip('/')}/{REJECTS_FILE}"


def _prepare_out(out: str) -> None:
    import pyarrow.fs as pafs

    fs, base = _filesystem(out)
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.File:
        raise BatchPredictError(f"{out}: --out is a file; name a directory")
    if info.type == pafs.FileType.Directory and fs.get_file_info(pafs.FileSelector(base)):
        # Shards of an earlier run would mix with this one's.
        raise BatchPredictError(f"{out}: output directory is not empty; remove it or choose another --out")
    fs.create_dir(base, recursive=True)
