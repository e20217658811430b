"""Batch prediction on Ray Data: files in, tagged JSONL or Parquet shards out.

Stages::

    driver: expand inputs (paths, globs, URIs), pin the model version, check --out
      → read   (a task per file: raw bytes → records, bad ones marked, :mod:`raytag.batch_inputs`)
      → tag    (an actor pool; each actor loads the tagger once)
      → write  (shards named by their first record, so listing them sorts them in input order;
                rejects into a side directory the driver merges into rejects.jsonl)

Order is preserved end to end, and every output row carries ``source`` and ``line``
(1-based; Parquet inputs: null) and ``row`` (the record's index in its file), so a row
can be matched to its input whatever the sharding. The plain functions
(:func:`tag_rows`, :func:`output_rows`, :func:`write_shard`) run without Ray.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from raytag.batch_inputs import InputOptions, Record, detect_format, expand_inputs, read_records
from raytag.errors import RaytagError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from raytag.tagger import Tagger

__all__ = ["OUTPUT_FORMATS", "REJECTS_FILE", "BatchOptions", "BatchPlan", "BatchSummary", "batch_predict", "output_rows",
           "plan_batch", "run_batch", "tag_rows", "write_shard"]

OUTPUT_FORMATS = ("jsonl", "parquet")
REJECTS_FILE = "rejects.jsonl"
_REJECTS_DIR = "_rejects"

ENTITY = pa.struct([("entity_group", pa.string()), ("score", pa.float64()), ("word", pa.string()),
                    ("start", pa.int64()), ("end", pa.int64())])
RECORDS = pa.schema([("file_index", pa.int32()), ("source", pa.string()), ("line", pa.int64()), ("row", pa.int64()),
                     ("text", pa.string()), ("tokens", pa.list_(pa.string())), ("fields", pa.string()),
                     ("reject", pa.string())])
TAGGED = RECORDS.append(pa.field("entities", pa.list_(ENTITY))).append(pa.field("tags", pa.list_(pa.string()))) \
    .append(pa.field("words", pa.int64()))
# When the actor call that tagged a row started and ended (epoch seconds): the summary's
# tagging span, which leaves out actor start-up and model loading.
TIMED = TAGGED.append(pa.field("tag_start", pa.float64())).append(pa.field("tag_end", pa.float64()))


class BatchPredictError(RaytagError):
    """Batch prediction cannot start as asked (output directory, options)."""


# Batches of records per tagger call (see _execute).
SORT_WINDOW = 8


@dataclass(frozen=True)
class BatchOptions:
    """Everything but the inputs, the output and the model."""

    inputs: InputOptions = field(default_factory=InputOptions)
    output_format: str = "jsonl"
    with_tags: bool = False
    batch_size: int = 256
    concurrency: int = 1
    # CPUs reserved per tagger actor; None = one, or less when the pool would otherwise
    # hold every CPU of the cluster (see actor_cpus).
    num_cpus: float | None = None
    num_gpus: float = 0.0
    device: str = "auto"
    # Rows per output shard: large enough that a big run writes few files.
    shard_rows: int = 50_000

    def __post_init__(self) -> None:
        if self.output_format not in OUTPUT_FORMATS:
            raise BatchPredictError(f"unknown output format {self.output_format!r}; expected one of "
                                    f"{', '.join(OUTPUT_FORMATS)}")
        for name in ("batch_size", "concurrency", "shard_rows"):
            if getattr(self, name) < 1:
                raise BatchPredictError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.num_cpus is not None and self.num_cpus <= 0:
            raise BatchPredictError(f"--num-cpus must be above 0, got {self.num_cpus}")


def actor_threads(options: BatchOptions, cluster_cpus: float) -> int:
    """Intra-op threads per actor: its share of the cores (each actor then caps it at its node's)."""
    return max(1, int(cluster_cpus // options.concurrency))


def actor_cpus(options: BatchOptions, cluster_cpus: float) -> float:
    """CPUs each tagger actor reserves, keeping one CPU free for the read and write tasks.

    The reservation only schedules: an actor's runtime still uses every core it can. A pool
    holding all CPUs would leave the read task waiting forever, so that is an error when asked.
    """
    free = cluster_cpus - 1.0
    if options.num_cpus is not None:
        if options.num_cpus * options.concurrency > free + 1e-9:
            raise BatchPredictError(
                f"{options.concurrency} actors × --num-cpus {options.num_cpus:g} leave no CPU of the cluster's "
                f"{cluster_cpus:g} for reading and writing; lower --num-cpus or --concurrency")
        return options.num_cpus
    if free <= 0:
        raise BatchPredictError(f"batch prediction needs at least 2 CPUs in the cluster, it has {cluster_cpus:g}")
    return min(1.0, free / options.concurrency)


@dataclass
class BatchSummary:
    rows: int = 0
    rejects: int = 0
    words: int = 0
    seconds: float = 0.0
    # From the first tagger call's start to the last one's end (no actor start-up).
    tagging_seconds: float = 0.0
    shards: list[str] = field(default_factory=list)
    rejects_file: str | None = None
    # The first few rejects, ``(where, reason)``, for the CLI to print.
    examples: list[tuple[str, str]] = field(default_factory=list)

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds > 0 else 0.0

    @property
    def tagging_words_per_second(self) -> float:
        return self.words / self.tagging_seconds if self.tagging_seconds > 0 else 0.0


# --- plain functions ---------------------------------------------------------------------------


def record_rows(records: Sequence[Record], file_index: int) -> list[dict[str, Any]]:
    """Records as rows of the :data:`RECORDS` schema (extra fields as one JSON string: Arrow needs one type)."""
    return [{"file_index": file_index, "source": r.source, "line": r.line, "row": r.row, "text": r.text,
             "tokens": r.tokens, "fields": json.dumps(r.fields, ensure_ascii=False, default=str) if r.fields else None,
             "reject": r.reject} for r in records]


def tag_rows(tagger: Tagger, rows: list[dict[str, Any]], batch_size: int = 256) -> list[dict[str, Any]]:
    """Add ``entities``, ``tags`` and ``words`` to record rows; rejects pass through untagged.

    If the tagger fails on the batch, each row is tagged alone, so one row it cannot
    handle becomes a reject instead of failing its neighbours.
    """
    out = [{**row, "entities": [], "tags": [], "words": 0} for row in rows]
    todo = [i for i, row in enumerate(rows) if row["reject"] is None]

    def apply(indices: list[int]) -> None:
        inputs = [rows[i]["tokens"] if rows[i]["tokens"] is not None else rows[i]["text"] for i in indices]
        for i, result in zip(indices, tagger.predict(inputs, batch_size=batch_size), strict=True):
            out[i].update(entities=[e.to_dict() for e in result.entities], tags=result.tags, words=len(result.tokens))

    try:
        apply(todo)
    except Exception:  # noqa: BLE001 - find the row(s) at fault, below
        for i in todo:
            try:
                apply([i])
            except Exception as exc:  # noqa: BLE001
                out[i].update(reject=f"tagger failed: {type(exc).__name__}: {exc}", entities=[], tags=[], words=0)
    return out


def output_rows(rows: Sequence[dict[str, Any]], with_tags: bool, output_format: str) -> list[dict[str, Any]]:
    """Tagged rows as written: JSONL rows keep the input's other fields at the top level
    (the columns added here win on a clash); Parquet rows keep them as one JSON string, ``fields``."""
    out = []
    for row in rows:
        ours: dict[str, Any] = {"source": row["source"], "line": row["line"], "row": row["row"], "text": row["text"]}
        if row["tokens"] is not None or output_format == "parquet":
            ours["tokens"] = row["tokens"]
        ours["entities"] = row["entities"]
        if with_tags:
            ours["tags"] = row["tags"]
        if output_format == "jsonl":
            out.append({**(json.loads(row["fields"]) if row["fields"] else {}), **ours})
        else:
            out.append({**ours, "fields": row["fields"]})
    return out


def reject_row(row: dict[str, Any]) -> dict[str, Any]:
    where = row["source"] if row["line"] is None else f"{row['source']}:{row['line']}"
    if row["line"] is None and row["row"] >= 0:
        where += f" row {row['row']}"
    return {"source": row["source"], "line": row["line"], "row": row["row"], "where": where, "reason": row["reject"]}


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


def pin_model(ref: str, registry_root: str | None) -> str:
    """An artifact directory as given, or ``name@vN`` for a registry reference.

    Pinned on the driver so a missing model fails before Ray work starts, and every
    actor loads the same version even if an alias such as ``latest`` moves meanwhile.
    """
    from raytag.artifact_files import TAGGER_FILE
    from raytag.registry import Registry

    if (Path(ref) / TAGGER_FILE).is_file():
        return str(Path(ref).resolve())
    return Registry(registry_root or "runs/registry").resolve(ref).ref


# --- Ray stages --------------------------------------------------------------------------------


def _read_stage(batch: dict[str, Any], options: InputOptions) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for index, source, fmt in zip(batch["file_index"], batch["source"], batch["format"], strict=True):
        rows.extend(record_rows(read_records(str(source), str(fmt), options), int(index)))
    return pa.Table.from_pylist(rows, schema=RECORDS)


class TaggerActor:
    """Loads the tagger once per actor, then tags batch after batch."""

    def __init__(self, ref: str, registry_root: str | None, device: str, batch_size: int, threads: int = 0) -> None:
        import os
        import sys

        from raytag.tagger import load_tagger

        self.tagger = load_tagger(ref, registry_root, device=device)
        self.batch_size = batch_size
        # Ray sets OMP_NUM_THREADS to an actor's CPU reservation (1 for anything under 2), which
        # caps PyTorch at one thread; the reservation only schedules, so use the actor's share
        # of the machine's cores instead. TensorFlow sizes its own pools and is left alone.
        torch = sys.modules.get("torch")
        if threads > 0 and torch is not None:
            torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1)))

    def __call__(self, batch: pa.Table) -> pa.Table:
        start = time.time()
        rows = tag_rows(self.tagger, batch.to_pylist(), self.batch_size)
        end = time.time()
        return pa.Table.from_pylist([{**r, "tag_start": start, "tag_end": end} for r in rows], schema=TIMED)


def _write_stage(batch: pa.Table, out: str, output_format: str, with_tags: bool) -> pa.Table:
    summary = write_shard(batch.drop_columns(["tag_start", "tag_end"]).to_pylist(), out, output_format, with_tags)
    summary["tag_start"] = pc.min(batch.column("tag_start")).as_py()
    summary["tag_end"] = pc.max(batch.column("tag_end")).as_py()
    return pa.Table.from_pylist([summary])


@dataclass(frozen=True)
class BatchPlan:
    """What the driver settled before any Ray work: the files, the pinned model, the output."""

    files: list[str]
    ref: str
    registry_root: str | None
    out: str
    options: BatchOptions


def plan_batch(inputs: Sequence[str], out: str | Path, ref: str, *, registry_root: str | None = None,
               options: BatchOptions | None = None) -> BatchPlan:
    """Expand the inputs, pin the model, create ``out``: bad input fails here, before Ray starts."""
    files = expand_inputs(inputs)
    pinned = pin_model(ref, registry_root)
    # Absolute paths, as Ray workers need not share the driver's working directory.
    out = str(out) if "://" in str(out) else str(Path(out).resolve())
    files = [f if "://" in f else str(Path(f).resolve()) for f in files]
    _prepare_out(out)
    root = registry_root or "runs/registry"
    root = root if "://" in root else str(Path(root).resolve())
    return BatchPlan(files, pinned, root, out, options or BatchOptions())


def run_batch(plan: BatchPlan, progress: Callable[[BatchSummary], None] | None = None) -> BatchSummary:
    """Run a plan on the Ray this process is connected to; ``progress`` is called after each shard."""
    from ray.data import DataContext

    context = DataContext.get_current()
    kept = context.execution_options.preserve_order
    # Shards are named by their first record, which only sorts them if batches stay in input order.
    context.execution_options.preserve_order = True
    try:
        return _execute(plan, progress)
    finally:
        context.execution_options.preserve_order = kept


def _execute(plan: BatchPlan, progress: Callable[[BatchSummary], None] | None) -> BatchSummary:
    import ray

    options, out = plan.options, plan.out
    items = [{"file_index": i, "source": f, "format": detect_format(f, options.inputs.format)}
             for i, f in enumerate(plan.files)]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    cluster_cpus = float(ray.cluster_resources().get("CPU", 0))
    cpus = actor_cpus(options, cluster_cpus)
    ds = ds.map_batches(_read_stage, batch_size=1, batch_format="numpy", fn_kwargs={"options": options.inputs})
    # Each actor call takes several batches' worth of records: the tagger sorts them by length
    # before batching, and within only one batch of input-order texts padding would cost up
    # to twice the model time on corpora of mixed sentence lengths.
    rows_per_call = options.batch_size * SORT_WINDOW
    # One file reads into one block; cut it into call-sized blocks so every actor gets work.
    ds = ds.repartition(target_num_rows_per_block=rows_per_call)
    ds = ds.map_batches(
        TaggerActor, batch_size=rows_per_call, batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=options.concurrency),
        num_cpus=cpus, num_gpus=options.num_gpus or None,
        fn_constructor_kwargs={"ref": plan.ref, "registry_root": plan.registry_root, "device": options.device,
                               "batch_size": options.batch_size, "threads": actor_threads(options, cluster_cpus)},
    )
    ds = ds.map_batches(_write_stage, batch_size=options.shard_rows, batch_format="pyarrow",
                        fn_kwargs={"out": out, "output_format": options.output_format,
                                   "with_tags": options.with_tags})
    summary = BatchSummary()
    start = time.perf_counter()
    first: float | None = None
    last: float | None = None
    for written in ds.iter_rows():
        if written["tag_start"] is not None:
            first = min(first or written["tag_start"], written["tag_start"])
            last = max(last or written["tag_end"], written["tag_end"])
            summary.tagging_seconds = last - first
        summary.rows += written["rows"]
        summary.rejects += written["rejects"]
        summary.words += written["words"]
        if written["shard"]:
            summary.shards.append(written["shard"])
        summary.examples.extend(tuple(e) for e in json.loads(written["examples"]))
        summary.seconds = time.perf_counter() - start
        if progress is not None:
            progress(summary)
    summary.seconds = time.perf_counter() - start
    summary.shards.sort()
    summary.examples = summary.examples[:10]
    summary.rejects_file = _merge_rejects(out)
    return summary


def batch_predict(
    inputs: Sequence[str],
    out: str | Path,
    ref: str,
    *,
    registry_root: str | None = None,
    options: BatchOptions | None = None,
    progress: Callable[[BatchSummary], None] | None = None,
) -> BatchSummary:
    """Tag every record of ``inputs`` with the tagger ``ref`` on the Ray this process is connected to.

    Writes ``part-*.jsonl`` or ``part-*.parquet`` shards (names sort in input order) and,
    when any record was bad, ``rejects.jsonl`` under ``out`` (a local directory, or a URI
    every node can reach when running on a cluster). ``progress`` is called after each shard.
    """
    return run_batch(plan_batch(inputs, out, ref, registry_root=registry_root, options=options), progress)


def summary_dict(summary: BatchSummary) -> dict[str, Any]:
    return {**asdict(summary), "words_per_second": summary.words_per_second,
            "tagging_words_per_second": summary.tagging_words_per_second}
