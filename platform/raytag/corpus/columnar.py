"""Vectorised (Arrow/NumPy) versions of the hot per-token work of the prepare stage.

The plain-Python readers and scheme functions define the behaviour; these
functions compute the same results over whole columns, falling back to the
plain path wherever exact error messages are needed. Tests compare the two.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from raytag.corpus.readers import UNTAGGED, Header
from raytag.corpus.schemes import sentence_problem, split_tag, tag_problem

# Prefix codes; INVALID marks tags that fail tag_problem under the scheme.
O, B, I, E, S, INVALID = range(6)
_PREFIX_CODE = {"O": O, "B": B, "I": I, "E": E, "S": S}


def list_parts(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Flat values and zero-based offsets of a (possibly sliced or chunked) list array."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    offsets = values.offsets.to_numpy().astype(np.int64)
    flat = values.values.slice(offsets[0], offsets[-1] - offsets[0])
    return flat, offsets - offsets[0]


def rebuild_list(offsets: np.ndarray, flat: pa.Array) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32), pa.int32()), flat)


def parse_csv_chunk(text: str, header: Header, first_line: int) -> tuple | None:
    """Parse a headerless GMB-style CSV chunk with Arrow's CSV reader.

    Returns ``None`` whenever the chunk is not perfectly regular (wrong column
    counts, blank lines, quoted newlines, rows before the first sentence id), so
    the caller re-parses it with the plain reader, which names the exact line.
    """
    width = header.width or 0
    sid_index = header.sentence_index if header.sentence_index is not None else 0
    invalid: list[object] = []

    def on_invalid(row: object) -> str:
        invalid.append(row)
        return "skip"

    names = [f"c{i}" for i in range(width)]
    try:
        table = pcsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=True),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if invalid:
        return None
    rows = table.num_rows
    if rows == 0:
        return [], pa.array([], pa.list_(pa.string())), pa.array([], pa.list_(pa.string())), [], []
    if rows != text.count("\n") + (0 if text.endswith("\n") else 1):
        return None
    opens = pc.not_equal(pc.utf8_trim_whitespace(table.column(sid_index)), "").to_numpy(zero_copy_only=False)
    if not opens[0]:
        return None
    starts = np.flatnonzero(opens)
    offsets = np.append(starts, rows)
    tokens_flat = table.column(header.token_index).combine_chunks()
    if header.tag_index is None:
        tags_flat = pa.repeat(pa.scalar(UNTAGGED, pa.string()), len(tokens_flat))
    else:
        tags_flat = table.column(header.tag_index).combine_chunks()
    empty = pc.equal(pc.utf8_trim(tokens_flat, characters=" \t\r\n"), "").to_numpy(zero_copy_only=False)
    errors: list[str | None] = [None] * len(starts)
    error_lines: list[int | None] = [None] * len(starts)
    if empty.any():
        for sentence in np.unique(np.searchsorted(offsets, np.flatnonzero(empty), side="right") - 1):
            errors[sentence] = "empty token"
            error_lines[sentence] = int(first_line + starts[sentence])
    return (
        (first_line + starts).tolist(),
        rebuild_list(offsets, tokens_flat),
        rebuild_list(offsets, tags_flat),
        errors,
        error_lines,
    )


def check_and_convert(
    tags: pa.Array | pa.ChunkedArray, skip: np.ndarray, scheme: str
) -> tuple[pa.ListArray, dict[int, tuple[int, str]]]:
    """Validate every sentence's tags under ``scheme`` and convert them to IOB2.

    ``skip`` marks sentences that already have an error. Returns the converted
    tags and, per newly invalid sentence, ``(token index, reason)`` exactly as
    :func:`raytag.corpus.schemes.sentence_problem` words it.
    """
    flat, offsets = list_parts(tags)
    lengths = np.diff(offsets)
    if scheme == "plain" or len(flat) == 0:
        problems = _plain_problems(flat, offsets, skip) if len(flat) else {}
        return rebuild_list(offsets, flat), problems
    encoded = pc.dictionary_encode(flat)
    dictionary = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    kinds = sorted({split_tag(t)[1] or "" for t in dictionary})
    kind_id = {k: i for i, k in enumerate(kinds)}
    prefix_of = np.array([INVALID if tag_problem(t, scheme) else _PREFIX_CODE[split_tag(t)[0]] for t in dictionary])
    kind_of = np.array([kind_id[split_tag(t)[1] or ""] for t in dictionary])
    prefix, kind = prefix_of[codes], kind_of[codes]

    is_start = np.zeros(len(flat), dtype=bool)
    is_start[offsets[:-1][lengths > 0]] = True
    is_end = np.zeros(len(flat), dtype=bool)
    is_end[offsets[1:][lengths > 0] - 1] = True
    prev_prefix = np.roll(prefix, 1)
    prev_kind = np.roll(kind, 1)
    prev_prefix[is_start] = O
    in_entity = np.isin(prev_prefix, (B, I))
    continues = in_entity & (prev_kind == kind)
    inside = np.isin(prefix, (I, E))

    bad = prefix == INVALID
    if scheme in ("iob2", "bioes"):
        bad |= inside & ~continues
    if scheme == "bioes":
        bad |= in_entity & ~(inside & (prev_kind == kind))
        bad |= is_end & np.isin(prefix, (B, I))

    problems: dict[int, tuple[int, str]] = {}
    sentence_of = np.searchsorted(offsets, np.flatnonzero(bad), side="right") - 1
    for sentence in np.unique(sentence_of):
        if skip[sentence]:
            continue
        sentence_tags = flat.slice(offsets[sentence], lengths[sentence]).to_pylist()
        found = sentence_problem(sentence_tags, scheme)
        if found is not None:
            problems[int(sentence)] = found

    new_prefix = prefix.copy()
    if scheme == "iob1":
        new_prefix[(prefix == I) & ~continues] = B
    elif scheme == "bioes":
        new_prefix[prefix == E] = I
        new_prefix[prefix == S] = B
    if np.array_equal(new_prefix, prefix):
        return rebuild_list(offsets, flat), problems
    names = {O: "O", B: "B", I: "I", E: "E", S: "S"}
    # One new code per distinct (prefix, kind, original tag): invalid tags keep their text.
    combined = (new_prefix.astype(np.int64) * len(kinds) + kind) * len(dictionary) + codes
    unique, new_codes = np.unique(combined, return_inverse=True)
    table = []
    for key in unique.tolist():
        code = key % len(dictionary)
        p, k = divmod(key // len(dictionary), len(kinds))
        table.append(dictionary[code] if p == INVALID else ("O" if p == O else f"{names[p]}-{kinds[k]}"))
    converted = pa.array(table, pa.string()).take(pa.array(new_codes))
    return rebuild_list(offsets, converted), problems


def scheme_evidence(tags: pa.Array | pa.ChunkedArray) -> tuple[set[str], bool]:
    """The distinct tags and whether any ``I-`` tag opens an entity (IOB1 evidence)."""
    flat, offsets = list_parts(tags)
    if len(flat) == 0:
        return set(), False
    encoded = pc.dictionary_encode(flat)
    dictionary = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    parts = [split_tag(t) for t in dictionary]
    prefix = np.array([_PREFIX_CODE.get(p, INVALID) for p, _ in parts])[codes]
    kind = np.array([hash(k) for _, k in parts])[codes]
    is_start = np.zeros(len(flat), dtype=bool)
    lengths = np.diff(offsets)
    is_start[offsets[:-1][lengths > 0]] = True
    prev_prefix = np.roll(prefix, 1)
    prev_prefix[is_start] = O
    continues = np.isin(prev_prefix, (B, I)) & (np.roll(kind, 1) == kind)
    return set(dictionary), bool(np.any((prefix == I) & ~continues))


def _plain_problems(flat: pa.Array, offsets: np.ndarray, skip: np.ndarray) -> dict[int, tuple[int, str]]:
    empty = pc.equal(pc.utf8_trim_whitespace(flat), "").to_numpy(zero_copy_only=False)
    problems: dict[int, tuple[int, str]] = {}
    for position in np.flatnonzero(empty):
        sentence = int(np.searchsorted(offsets, position, side="right") - 1)
        if not skip[sentence] and sentence not in problems:
            problems[sentence] = (int(position - offsets[sentence]), "empty tag")
    return problems


def value_counts(values: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Counts of every distinct item of a list column."""
    flat, _ = list_parts(values)
    if len(flat) == 0:
        return {}
    counted = pc.value_counts(flat)
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True))


def char_counts(word_counts: Mapping[str, int]) -> Counter[str]:
    """Character counts derived from word counts (each word's characters times its count)."""
    chars: Counter[str] = Counter()
    for word, count in word_counts.items():
        for ch in word:
            chars[ch] += count
    return chars


def encode_ids(values: pa.Array | pa.ChunkedArray, items: Sequence[str], lowercase: bool, oov_id: int | None) -> pa.ListArray:
    """Map each item of a list column to its index in ``items`` (``oov_id`` when absent)."""
    flat, offsets = list_parts(values)
    if lowercase:
        flat = pc.utf8_lower(flat)
    ids = pc.index_in(flat, value_set=pa.array(list(items), pa.string()))
    if ids.null_count:
        if oov_id is None:
            missing = pc.filter(flat, pc.is_null(ids))[0].as_py()
            raise KeyError(f"{missing!r} is not in the vocabulary and it has no OOV id")
        ids = pc.fill_null(ids, oov_id)
    return rebuild_list(offsets, ids.cast(pa.int32()))
