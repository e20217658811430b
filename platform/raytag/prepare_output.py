"""What the prepare stage writes: Parquet shards and the manifest that lists them.

Each chunk's sentences go to one Parquet file per split, named by the chunk index,
so the shard layout depends only on the data, never on the number of workers. The
manifest records inputs, splits, vocabularies, skipped sentences and every shard's
checksum, and a fingerprint over the shards and vocabulary files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import raytag
from raytag.artifact_files import VOCAB_FILES
from raytag.config import JobConfig, resolved
from raytag.encode_stage import PrepareContext

# The rows write_chunk returns: one per file written.
SHARD_SCHEMA = pa.schema([("split", pa.string()), ("path", pa.string()), ("rows", pa.int64()),
                          ("tokens", pa.int64()), ("sha256", pa.string())])


def write_chunk(batch: pa.Table, root: str) -> pa.Table:
    """Write one chunk's sentences, one file per split, named by the chunk index."""
    out: dict[str, list] = {k: [] for k in ("split", "path", "rows", "tokens", "sha256")}
    if batch.num_rows == 0:
        return pa.table(out, schema=SHARD_SCHEMA)
    chunks = pc.unique(batch.column("chunk")).to_pylist()
    if len(chunks) != 1:
        raise RuntimeError(f"a write batch spans chunks {chunks}; blocks must stay one per chunk")
    for split in sorted(pc.unique(batch.column("split")).to_pylist()):
        table = batch.filter(pc.equal(batch.column("split"), split)).sort_by("sid").drop_columns(["split", "chunk"])
        relative = f"splits/{split}/part-{chunks[0]:05d}.parquet"
        path = Path(root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")
        out["split"].append(split)
        out["path"].append(relative)
        out["rows"].append(table.num_rows)
        out["tokens"].append(int(pc.sum(table.column("length")).as_py() or 0))
        out["sha256"].append(hashlib.sha256(path.read_bytes()).hexdigest())
    return pa.table(out, schema=SHARD_SCHEMA)


def build_manifest(
    config: JobConfig, context: PrepareContext, inputs: list[dict], layout: dict[str, np.ndarray],
    stats: dict[str, Any], errors: dict[str, Any], shard_rows: list[dict], staging: Path, stage_info: dict,
) -> dict[str, Any]:
    """The prepared directory's manifest, from the driver's results and the files in ``staging``."""
    shards = sorted(shard_rows, key=lambda r: r["path"])
    vocab_files = {name: hashlib.sha256((staging / name).read_bytes()).hexdigest()
                   for name in VOCAB_FILES}
    fingerprint = hashlib.sha256()
    for entry in [*((s["path"], s["sha256"]) for s in shards), *sorted(vocab_files.items())]:
        fingerprint.update(f"{entry[0]}\0{entry[1]}\n".encode())
    splits = {}
    for name in layout:
        size = stats["sizes"].get(name, {})
        splits[name] = {
            "sentences": int(size.get("sentences", 0)),
            "tokens": int(size.get("tokens", 0)),
            "tags": dict(sorted(stats["tags"].get(name, {}).items())),
            "shards": [s["path"] for s in shards if s["split"] == name],
        }
    return {
        "format_version": 1,
        "name": config.name,
        "raytag_version": raytag.__version__,
        "inputs": inputs,
        "scheme": {"source": context.scheme, "stored": "iob2" if context.entity else "plain"},
        "entity": context.entity,
        "labels": context.labels.items,
        "splits": splits,
        "totals": {
            "sentences": sum(s["sentences"] for s in splits.values()),
            "tokens": sum(s["tokens"] for s in splits.values()),
        },
        "vocab": {"words": len(context.words), "chars": len(context.chars), "labels": len(context.labels),
                  "files": vocab_files},
        "errors": errors,
        "shards": [{k: s[k] for k in ("path", "rows", "tokens", "sha256")} for s in shards],
        "stages": stage_info,
        "fingerprint": fingerprint.hexdigest(),
        "config": resolved(config),
    }
