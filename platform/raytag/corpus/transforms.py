"""Batch transforms of the prepare pipeline, as plain functions on Arrow tables.

Ray Data runs them in its workers (see :mod:`raytag.prepare`), but nothing here
imports Ray, so each transform is unit-tested on hand-made tables.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raytag.corpus import columnar
from raytag.corpus.readers import Header, ReaderOptions, Sentence, decode, parse_chunk, structural_problem
from raytag.corpus.schemes import SchemeEvidence
from raytag.corpus.vocab import OOV_ID, Vocabulary

# A sentence id orders sentences by file, then line, independently of how the
# files were cut into chunks or how many workers parsed them.
LINE_BITS = 40
# A sentence's ``document`` is the sentence id of its -DOCSTART- line (file and line,
# so unique across files and chunks, and never a sentence's own id), or, for a sentence
# outside any document, its own id. A document's sentences come in sid order.

SENTENCE_SCHEMA = pa.schema(
    [
        ("sid", pa.int64()),
        ("chunk", pa.int64()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("document", pa.int64()),
        ("split", pa.string()),
        ("tokens", pa.list_(pa.string())),
        ("tags", pa.list_(pa.string())),
        ("error", pa.string()),
        ("error_line", pa.int64()),
    ]
)


def sentence_id(file_index: int, line: int) -> int:
    return (file_index << LINE_BITS) | line


def parse_chunks(batch: pa.Table, options: ReaderOptions, headers: Mapping[int, Header]) -> pa.Table:
    """Chunk rows (``chunk, file_index, file, split, start, first_line, data``) → sentence rows.

    An optional ``document_line`` (0 or absent: none) is the line of the last ``-DOCSTART-``
    before the chunk, so a document cut over two chunks keeps one id.
    """
    tables = []
    for row in batch.to_pylist():
        text = decode(row["data"], options.encoding, row["file"], row["start"], row["first_line"])
        header = headers[row["file_index"]]
        parsed = None
        markers: list[int | None] = []
        if options.format == "gmb_csv":
            parsed = columnar.parse_csv_chunk(text, header, row["first_line"])
        if parsed is None:
            sentences = parse_chunk(text, options, header, row["file"], row["first_line"],
                                    row.get("document_line") or None)
            parsed = _sentence_columns(sentences)
            markers = [s.document for s in sentences]
        lines, tokens, tags, errors, error_lines = parsed
        n = len(lines)
        file_bits = np.int64(row["file_index"]) << LINE_BITS
        sids = file_bits | np.asarray(lines, dtype=np.int64)
        marks = np.asarray([m or 0 for m in markers] if markers else np.zeros(n), dtype=np.int64)
        documents = np.where(marks > 0, file_bits | marks, sids)
        tables.append(pa.table({
            "sid": pa.array(sids, pa.int64()),
            "chunk": pa.array(np.full(n, row["chunk"], dtype=np.int64)),
            "file": pa.array([row["file"]] * n, pa.string()),
            "line": pa.array(lines, pa.int64()),
            "document": pa.array(documents, pa.int64()),
            "split": pa.array([row["split"]] * n, pa.string()),
            "tokens": tokens,
            "tags": tags,
            "error": pa.array(errors, pa.string()),
            "error_line": pa.array(error_lines, pa.int64()),
        }, schema=SENTENCE_SCHEMA))
    return pa.concat_tables(tables) if tables else SENTENCE_SCHEMA.empty_table()


def _sentence_columns(sentences: Sequence[Sentence]) -> tuple:
    errors: list[str | None] = []
    error_lines: list[int | None] = []
    for sentence in sentences:
        problem = structural_problem(sentence)
        errors.append(problem)
        if problem is None:
            error_lines.append(None)
        else:
            error_lines.append(sentence.error_line if sentence.error_line is not None else sentence.line)
    return (
        [s.line for s in sentences],
        pa.array([s.tokens for s in sentences], pa.list_(pa.string())),
        pa.array([s.tags for s in sentences], pa.list_(pa.string())),
        errors,
        error_lines,
    )


def scheme_evidence(batch: pa.Table) -> pa.Table:
    """One summary row per batch: the tag set and whether an I- tag opens an entity."""
    valid = batch.filter(pc.is_null(batch.column("error")))
    tags, opening_i = columnar.scheme_evidence(valid.column("tags"))
    return pa.table({"tags": [sorted(tags)], "opening_i": [opening_i]})


def merge_evidence(rows: Sequence[Mapping]) -> SchemeEvidence:
    evidence = SchemeEvidence()
    for row in rows:
        evidence = evidence.merge(SchemeEvidence(set(row["tags"]), bool(row["opening_i"])))
    return evidence


def validate_tags(batch: pa.Table, scheme: str, token_per_line: bool = True) -> pa.Table:
    """Check tags and transitions under ``scheme``; convert valid sentences to IOB2.

    ``token_per_line`` says whether a token's line is its sentence's line plus its
    index (CoNLL, GMB CSV) or the sentence's own line (JSONL).
    """
    errors = batch.column("error").to_pylist()
    skip = np.array([e is not None for e in errors], dtype=bool)
    tags, problems = columnar.check_and_convert(batch.column("tags"), skip, scheme)
    if problems:
        error_lines = batch.column("error_line").to_pylist()
        lines = batch.column("line").to_pylist()
        tokens = batch.column("tokens")
        for i, (index, reason) in problems.items():
            token = tokens[i][index].as_py()
            errors[i] = f"token {index + 1} ({token!r}): {reason}"
            error_lines[i] = lines[i] + index if token_per_line else lines[i]
        batch = batch.set_column(batch.schema.get_field_index("error"), "error", pa.array(errors, pa.string()))
        batch = batch.set_column(
            batch.schema.get_field_index("error_line"), "error_line", pa.array(error_lines, pa.int64())
        )
    return batch.set_column(batch.schema.get_field_index("tags"), "tags", tags)


def split_keys(batch: pa.Table, seed: int) -> pa.Table:
    """A seeded 64-bit key per sentence; ranking by it gives the ratio split."""
    sids = batch.column("sid").to_pylist()
    keys = [
        int.from_bytes(hashlib.blake2b(f"{seed}:{sid}".encode(), digest_size=8).digest(), "big") >> 1
        for sid in sids
    ]
    return pa.table({"sid": pa.array(sids, pa.int64()), "key": pa.array(keys, pa.int64())})


def split_counts(total: int, ratios: Mapping[str, float]) -> dict[str, int]:
    """Exact split sizes by largest remainder, so counts always add up to ``total``."""
    # Normalise: configs accept ratios that sum to 1 within a tolerance.
    norm = sum(ratios.values())
    raw = {name: total * r / norm for name, r in ratios.items()}
    counts = {name: int(np.floor(v)) for name, v in raw.items()}
    leftover = total - sum(counts.values())
    by_remainder = sorted(raw, key=lambda n: (-(raw[n] - counts[n]), list(ratios).index(n)))
    for name in by_remainder[:leftover]:
        counts[name] += 1
    return counts


def assign_splits(
    sids: np.ndarray, keys: np.ndarray, ratios: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """Rank sentences by (key, sid) and cut the ranking by exact ratio counts."""
    order = np.lexsort((sids, keys))
    counts = split_counts(len(sids), ratios)
    out: dict[str, np.ndarray] = {}
    start = 0
    for name in ratios:
        out[name] = np.sort(sids[order[start : start + counts[name]]])
        start += counts[name]
    return out


def assign_layout(batch: pa.Table, layout: Mapping[str, np.ndarray]) -> pa.Table:
    """Set ``split`` from a split → sorted-sid layout; drop rows in no split."""
    sids = batch.column("sid").to_numpy()
    splits = np.empty(len(sids), dtype=object)
    keep = np.zeros(len(sids), dtype=bool)
    for name, members in layout.items():
        if len(members) == 0:
            continue
        pos = np.minimum(np.searchsorted(members, sids), len(members) - 1)
        hit = members[pos] == sids
        splits[hit] = name
        keep |= hit
    out = batch.filter(pa.array(keep))
    return out.set_column(out.schema.get_field_index("split"), "split", pa.array(splits[keep].tolist(), pa.string()))


def statistics(batch: pa.Table, vocab_splits: Sequence[str]) -> pa.Table:
    """Per-split sizes and tag counts plus word counts of the vocabulary splits, one row per batch."""
    per_split: dict[str, dict] = {}
    split_column = batch.column("split")
    for name in pc.unique(split_column).to_pylist():
        part = batch.filter(pc.equal(split_column, name))
        _, offsets = columnar.list_parts(part.column("tags"))
        per_split[name] = {
            "sentences": part.num_rows,
            "tokens": int(offsets[-1]),
            "tags": columnar.value_counts(part.column("tags")),
        }
    vocab_rows = batch.filter(pc.is_in(split_column, pa.array(list(vocab_splits), pa.string())))
    words = columnar.value_counts(vocab_rows.column("tokens"))
    return pa.table({"splits": [json.dumps(per_split)], "words": [json.dumps(words)]})


def merge_counts(rows: Sequence[Mapping], key: str) -> Counter[str]:
    total: Counter[str] = Counter()
    for row in rows:
        total.update(json.loads(row[key]))
    return total


def encode_words(batch: pa.Table, words: Vocabulary, labels: Vocabulary) -> pa.Table:
    """Add ``word_ids``, ``tag_ids`` and ``length`` (characters are encoded at train time)."""
    word_ids = columnar.encode_ids(batch.column("tokens"), words.items, words.lowercase, OOV_ID)
    tag_ids = columnar.encode_ids(batch.column("tags"), labels.items, False, None)
    _, offsets = columnar.list_parts(batch.column("tokens"))
    out = batch.append_column("word_ids", word_ids).append_column("tag_ids", tag_ids)
    return out.append_column("length", pa.array(np.diff(offsets).astype(np.int32)))
