"""The prepare stage: corpus files → validated, split, encoded Parquet shards on Ray Data.

Stages, each a Ray Data transform of the plain functions in
:mod:`raytag.corpus.transforms`::

    read (driver: fingerprint, cut into sentence-aligned chunks)
      → parse (chunks → sentences)   → detect scheme (when ``auto``)
      → validate (tags, transitions; convert to IOB2) → errors: raise first / skip and count
      → split (by file, or seeded exact ratios)        → statistics + vocabularies
      → encode stages (words; plug-ins such as subwords) → write shards + manifest

The output directory is written under a temporary name and renamed into place
only when everything succeeded; a failed run leaves nothing behind. Identical
inputs and config give byte-identical shards whatever the number of workers,
because sentence ids, the split and the shard layout depend only on the data.
Shards and the manifest are written by :mod:`raytag.prepare_output`.
"""

from __future__ import annotations

import bisect
import json
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raytag.config import JobConfig
from raytag.corpus import columnar, readers, sources, transforms
from raytag.artifact_files import MANIFEST, VOCAB_FILES
from raytag.corpus.chunks import document_starts
from raytag.corpus.schemes import detect_scheme, label_order
from raytag.corpus.vocab import Vocabulary
from raytag.encode_stage import EncodeStage, PrepareContext
from raytag.errors import ConfigError, CorpusError, RaytagError
from raytag.prepare_output import build_manifest, write_chunk


ERROR_EXAMPLES = 20


@dataclass
class PrepareResult:
    directory: Path
    manifest: dict[str, Any] = field(default_factory=dict)


def reader_options(config: JobConfig) -> readers.ReaderOptions:
    c = config.corpus
    return readers.ReaderOptions(
        format=c.format,
        encoding=c.encoding,
        token_column=c.token_column,
        tag_column=c.tag_column,
        columns=tuple(c.columns) if c.columns else None,
        separator=c.separator,
        sentence_column=c.sentence_column,
        tokens_key=c.tokens_key,
        tags_key=c.tags_key,
        tagged=c.tagged,
    )


def prepare(
    config: JobConfig,
    out_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    stages: Sequence[EncodeStage] | None = None,
) -> PrepareResult:
    """Run the pipeline on the Ray this process is connected to (see :mod:`raytag.session`).

    ``stages`` defaults to what the job's model kind adds (subword windows for transformers).
    """
    import ray

    from raytag.train.kinds import adapter_for

    if not ray.is_initialized():
        raise RuntimeError("prepare() needs a Ray session; wrap the call in raytag.session.ray_session()")
    target = Path(out_dir or config.prepared_dir()).absolute()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True (--overwrite) to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        if stages is None:
            stages = adapter_for(config).prepare_stages(config)
        manifest = _run(config, staging, stages)
        _replace(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        cause = _user_error(exc)
        if cause is not None and cause is not exc:
            raise cause from None
        raise
    return PrepareResult(target, manifest)


def is_prepared(directory: str | Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def ensure_prepared(
    config: JobConfig,
    directory: str | Path | None = None,
    *,
    announce: Callable[[Path], None] | None = None,
    num_cpus: int | None = None,
) -> Path:
    """The job's prepared corpus, prepared first when its manifest is missing.

    Preparing uses the Ray this process is connected to, else a local Ray started for
    it (``num_cpus`` overrides the job's ``ray.num_cpus`` there); an existing corpus
    is reused without starting Ray.
    """
    from raytag.session import ray_session

    target = Path(directory or config.prepared_dir())
    if is_prepared(target):
        return target
    if announce is not None:
        announce(target)
    with ray_session(config.ray.address, num_cpus=num_cpus or config.ray.num_cpus,
                     object_store_memory=config.ray.object_store_memory):
        prepare(config, target)
    return target


def _user_error(exc: BaseException) -> RaytagError | None:
    """The raytag error a Ray task raised, unwrapped from Ray's task-error chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, RaytagError):
            return current
        seen.add(id(current))
        current = getattr(current, "cause", None) or current.__cause__
    return None


def _replace(staging: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _run(config: JobConfig, staging: Path, stages: Sequence[EncodeStage]) -> dict[str, Any]:
    import ray
    import ray.data

    options = reader_options(config)
    try:
        readers.check_encoding(options.encoding)
    except ValueError as exc:
        raise ConfigError(f"corpus.encoding: {exc}") from None
    # A stage that reads whole documents (document context) needs chunks that hold them.
    whole_documents = any(getattr(stage, "whole_documents", False) for stage in stages)
    chunk_rows, headers, inputs = _read_inputs(config, options, whole_documents)
    names = ", ".join(i["file"] for i in inputs) or "(no files)"
    if not chunk_rows:
        raise CorpusError(names, None, readers.EMPTY_INPUT)
    map_args: dict[str, Any] = {
        "batch_format": "pyarrow",
        "compute": ray.data.TaskPoolStrategy(size=min(config.prepare.num_workers, len(chunk_rows))),
    }
    # One block per chunk, kept through every map: a chunk is the unit of parallelism
    # and of output files, so the output never depends on the number of workers.
    chunks = ray.data.from_items(chunk_rows, override_num_blocks=len(chunk_rows))
    parsed = chunks.map_batches(
        transforms.parse_chunks, batch_size=None, fn_kwargs={"options": options, "headers": headers}, **map_args
    )
    scheme = config.corpus.scheme
    if scheme == "auto":
        parsed = parsed.materialize()
        evidence = transforms.merge_evidence(parsed.map_batches(transforms.scheme_evidence, **map_args).take_all())
        scheme = detect_scheme(evidence)
    validated = parsed.map_batches(
        transforms.validate_tags,
        batch_size=None,
        fn_kwargs={"scheme": scheme, "token_per_line": options.format != "jsonl"},
        **map_args,
    ).materialize()

    summary = _collect(validated.map_batches(
        _summary_rows, batch_size=None, fn_kwargs={"seed": config.split.seed}, **map_args
    ))
    if summary.num_rows == 0:
        # Files with bytes but no sentence: only -DOCSTART- lines, blank lines, a CSV header.
        raise CorpusError(names, None, readers.EMPTY_INPUT)
    error_report = _handle_errors(summary, config.corpus.on_error)
    layout = _split_layout(summary, config, inputs)
    layout_ref = ray.put(layout)
    fn_kwargs = {"layout": [layout_ref], "vocab_splits": list(config.vocab.from_splits)}
    stats = _statistics(validated.map_batches(_layout_statistics, batch_size=None, fn_kwargs=fn_kwargs, **map_args).take_all(), config)

    entity = scheme != "plain"
    labels = Vocabulary.labels(label_order(stats["tags_all"]))
    words = Vocabulary.build(
        stats["words"], max_size=config.vocab.max_words, min_count=config.vocab.min_count,
        lowercase=config.vocab.lowercase,
    )
    chars = Vocabulary.build(
        columnar.char_counts(stats["words"]), max_size=config.vocab.max_chars,
        min_count=config.vocab.min_char_count,
    )
    context = PrepareContext(config, words, chars, labels, scheme, entity)

    encoded = validated.map_batches(
        _layout_encode, batch_size=None, fn_kwargs={"layout": [layout_ref], "words": words, "labels": labels},
        **map_args,
    )
    stage_info: dict[str, Any] = {}
    for stage in stages:
        stage.fit(context)
        encoded = stage.apply(encoded)
    shard_rows = encoded.map_batches(
        write_chunk, batch_size=None, fn_kwargs={"root": str(staging)}, **map_args
    ).take_all()

    for stage in stages:
        stage_info[stage.name] = stage.save(staging)
    for vocabulary, name in zip((words, chars, labels), VOCAB_FILES, strict=True):
        vocabulary.save(staging / name)
    manifest = build_manifest(config, context, inputs, layout, stats, error_report, shard_rows, staging, stage_info)
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest


def _read_inputs(config: JobConfig, options: readers.ReaderOptions,
                 whole_documents: bool = False) -> tuple[list[dict], dict, list[dict]]:
    """Read every source on the driver and cut it into sentence-aligned chunks.

    Each chunk row carries the line of the last ``-DOCSTART-`` before it (0: none),
    so its sentences get the right document; with ``whole_documents`` chunks are cut
    only where documents start.
    """
    rows: list[dict] = []
    headers: dict[int, readers.Header] = {}
    inputs: list[dict] = []
    index = 0
    for split, configured in config.corpus.sources().items():
        for source in configured:
            for concrete in sources.expand(source):
                file = sources.load(concrete)
                # Fail fast on the driver with the exact byte offset; workers decode again.
                readers.decode(file.data, options.encoding, file.name)
                header = readers.read_header(file.data, options, file.name)
                headers[index] = header
                inputs.append({"file": file.name, "split": split, "sha256": file.sha256, "bytes": len(file.data)})
                # A CSV can only be cut where its first column opens a sentence.
                target = config.prepare.chunk_bytes
                if options.format == "gmb_csv" and header.sentence_index != 0:
                    target = len(file.data) + 1
                skip = options.format == "gmb_csv"
                markers = (document_starts(file.data, options.encoding, options.separator)
                           if options.format == "conll" else [])
                offsets = [offset for offset, _ in markers]
                for chunk in readers.split_chunks(file.data, options.format, target, skip_header=skip,
                                                  documents=offsets if whole_documents else None):
                    before = bisect.bisect_left(offsets, chunk.start)
                    rows.append({
                        "chunk": len(rows), "file_index": index, "file": file.name, "split": split,
                        "start": chunk.start, "first_line": chunk.first_line,
                        "document_line": markers[before - 1][1] if before else 0,
                        "data": file.data[chunk.start : chunk.end],
                    })
                index += 1
    return rows, headers, inputs


def _summary_rows(batch: pa.Table, seed: int) -> pa.Table:
    """What the driver needs about every sentence: id, split key, file split, error."""
    keys = transforms.split_keys(batch, seed)
    return pa.table({
        "sid": batch.column("sid"), "key": keys.column("key"), "split": batch.column("split"),
        "file": batch.column("file"), "error": batch.column("error"), "error_line": batch.column("error_line"),
    })


def _handle_errors(summary: pa.Table, on_error: str) -> dict[str, Any]:
    bad = summary.filter(pc.is_valid(summary.column("error"))).sort_by("sid").to_pylist()
    if bad and on_error == "raise":
        first = bad[0]
        raise CorpusError(first["file"], first["error_line"], first["error"])
    reasons: Counter[str] = Counter(_reason_kind(r["error"]) for r in bad)
    return {
        "skipped_sentences": len(bad),
        "by_reason": dict(sorted(reasons.items())),
        "examples": [f"{r['file']}:{r['error_line']}: {r['error']}" for r in bad[:ERROR_EXAMPLES]],
    }


def _reason_kind(message: str) -> str:
    # Strip the token position and quoted values so similar errors count together.
    text = message.split(": ", 1)[1] if message.startswith("token ") else message
    return text.split("'")[0].strip().rstrip(":") or text


def _split_layout(summary: pa.Table, config: JobConfig, inputs: list[dict]) -> dict[str, np.ndarray]:
    """Split name → sorted ids of its valid sentences."""
    valid = summary.filter(pc.is_null(summary.column("error")))
    if config.corpus.splits is not None:
        layout = {}
        for name in config.corpus.splits:
            mask = pc.equal(valid.column("split"), name)
            layout[name] = np.sort(valid.column("sid").filter(mask).to_numpy())
    else:
        layout = transforms.assign_splits(
            valid.column("sid").to_numpy(), valid.column("key").to_numpy(), config.split.ratios
        )
    for name, members in layout.items():
        if len(members) == 0:
            files = ", ".join(i["file"] for i in inputs if i["split"] in (name, None))
            raise CorpusError(files, None, f"empty corpus: split {name!r} has no valid sentence")
    return layout


def _collect(dataset: Any) -> pa.Table:
    import ray

    tables = [t for t in ray.get(dataset.to_arrow_refs()) if t.num_rows]
    return pa.concat_tables(tables) if tables else pa.table({})


def _with_layout(batch: pa.Table, layout: list) -> pa.Table:
    import ray

    return transforms.assign_layout(batch, ray.get(layout[0]))


def _layout_statistics(batch: pa.Table, layout: list, vocab_splits: list[str]) -> pa.Table:
    return transforms.statistics(_with_layout(batch, layout), vocab_splits)


def _layout_encode(batch: pa.Table, layout: list, words: Vocabulary, labels: Vocabulary) -> pa.Table:
    labeled = _with_layout(batch, layout).drop_columns(["error", "error_line"])
    return transforms.encode_words(labeled, words, labels)


def _statistics(rows: list[dict], config: JobConfig) -> dict[str, Any]:
    tags: dict[str, Counter[str]] = {}
    sizes: dict[str, Counter[str]] = {}
    for row in rows:
        for split, info in json.loads(row["splits"]).items():
            tags.setdefault(split, Counter()).update(info["tags"])
            sizes.setdefault(split, Counter()).update({"sentences": info["sentences"], "tokens": info["tokens"]})
    words = transforms.merge_counts(rows, "words")
    if not words:
        raise ConfigError(f"vocab.from_splits {config.vocab.from_splits} names no split with sentences")
    all_tags: Counter[str] = Counter()
    for counts in tags.values():
        all_tags.update(counts)
    return {"tags": tags, "sizes": sizes, "tags_all": all_tags, "words": words}
