"""Batch prediction on Ray Data: files in, tagged JSONL or Parquet shards out.

Stages::

    driver: expand inputs (paths, globs, URIs), pin the model version, check --out
      → read   (a task per file: raw bytes → records, bad ones marked, :mod:`raytag.batch_inputs`)
      → tag    (an actor pool; each actor loads the tagger once)
      → write  (shards named by their first record, so listing them sorts them in input order;
                rejects into a side directory the driver merges into rejects.jsonl)

Order is preserved end to end, and every output row carries ``source`` and ``line``
(1-based; Parquet inputs: null) and ``row`` (the record's index in its file), so a row
can be matched to its input whatever the sharding. The plain functions run without Ray:
:mod:`raytag.batch_rows` (records → tagged rows) and :mod:`raytag.batch_shards` (the
output directory); :mod:`raytag.batch_options` checks the options and sizes the actors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from raytag.batch_inputs import InputOptions, detect_format, expand_inputs, read_records
from raytag.batch_options import OUTPUT_FORMATS, BatchOptions, BatchPredictError, actor_cpus, actor_threads
from raytag.batch_rows import RECORDS, TIMED, output_rows, record_rows, tag_rows
from raytag.batch_shards import REJECTS_FILE, _merge_rejects, _prepare_out, write_shard

# The options, rows and shards helpers stay importable from here, the entry point of a run.
__all__ = ["OUTPUT_FORMATS", "REJECTS_FILE", "BatchOptions", "BatchPlan", "BatchPredictError", "BatchSummary",
           "actor_cpus", "actor_threads", "batch_predict", "output_rows", "plan_batch", "record_rows", "run_batch",
           "tag_rows", "write_shard"]

# Batches of records per tagger call (see _execute).
SORT_WINDOW = 8


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
    from raytag.session import ordered_data

    # Shards are named by their first record, which only sorts them if batches stay in input order.
    with ordered_data():
        return _execute(plan, progress)


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
