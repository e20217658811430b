"""Bytes to text: encodings, decoding with exact positions, sentence-aligned chunks.

A chunk is a byte range cut at a sentence boundary that knows its first line and
byte offset in the original file, so errors found while parsing any chunk name
the same file, line and byte offset however the work is split. CoNLL chunks can
also be cut only where a document starts, so a chunk holds whole documents.
"""

from __future__ import annotations

import bisect
import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass

from raytag.errors import CorpusError

# Every printable ASCII character plus the escapes that "escape" codecs would turn into
# other characters: a codec must read and write all of it unchanged, or cutting files at
# newline bytes and splitting fields at ASCII separators would be wrong. The codecs this
# rejects (UTF-7, UTF-16, the escape codecs) are also the ones that could decode to lone
# surrogates, which no UTF-8 output (Arrow, Parquet, JSON) can hold.
_ASCII_PROBE = bytes(range(0x20, 0x7F)) + b"\t\r\n\\u0041\\x41+AGEA-"
_SURROGATE = re.compile("[\ud800-\udfff]")
# The CoNLL line that opens a document (its other columns do not matter).
DOCSTART = "-DOCSTART-"
_MARKER_LINE = re.compile(rb"^[^\n]*-DOCSTART-[^\n]*", re.MULTILINE)


@dataclass(frozen=True)
class Chunk:
    """A byte range of a file that starts and ends on sentence boundaries."""

    start: int
    end: int
    first_line: int


def check_encoding(encoding: str) -> None:
    """Reject unknown codecs and ones that do not keep ASCII bytes as they are."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise ValueError(f"unknown encoding {encoding!r}") from None
    if not getattr(info, "_is_text_encoding", True):
        raise ValueError(f"{encoding!r} is not a text encoding")
    try:
        same = _ASCII_PROBE.decode(encoding) == _ASCII_PROBE.decode("ascii")
        same = same and _ASCII_PROBE.decode("ascii").encode(encoding) == _ASCII_PROBE
    except (LookupError, UnicodeError, ValueError, TypeError):
        same = False
    if not same and codecs.lookup(encoding).name == "utf-8-sig":
        raise ValueError("use encoding 'utf-8': it already skips a byte-order mark")
    if not same:
        raise ValueError(f"encoding {encoding!r} is not ASCII-compatible; re-encode the file as UTF-8")


def decode(data: bytes, encoding: str, file: str, base_offset: int = 0, first_line: int = 1) -> str:
    """Decode bytes, naming the exact byte offset and line of the first undecodable byte."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        offset = base_offset + exc.start
        line = first_line + data.count(b"\n", 0, exc.start)
        bad = data[exc.start : exc.start + 1].hex()
        raise CorpusError(
            file,
            line,
            f"cannot decode byte 0x{bad} with encoding {encoding!r}; set corpus.encoding "
            "to the file's encoding (the Kaggle GMB CSV is latin-1)",
            byte_offset=offset,
        ) from None
    # A UTF-8 BOM at the start of a file is not part of the first token.
    if base_offset == 0 and text.startswith("\ufeff"):
        text = text[1:]
    return text


def lone_surrogate(value: str) -> str | None:
    """The first lone surrogate in ``value`` (as ``U+D800``), or ``None``."""
    found = _SURROGATE.search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


_BLANK_LINE = re.compile(rb"\n[ \t\r]*\n")
_NEW_GMB_SENTENCE = re.compile(rb"\n[^,\r\n]")


def line_fields(line: str, sep: str | None) -> list[str]:
    """A CoNLL line's columns; a blank line has none."""
    return line.split() if sep is None else line.split(sep) if line.strip() else []


def document_starts(data: bytes, encoding: str, separator: str | None) -> list[tuple[int, int]]:
    """Byte offset and line number of every ``-DOCSTART-`` line of CoNLL ``data``.

    A line counts exactly when the CoNLL parser reads it as a marker (first column).
    """
    out: list[tuple[int, int]] = []
    line, last = 1, 0
    for match in _MARKER_LINE.finditer(data):
        line += data.count(b"\n", last, match.start())
        last = match.start()
        text = match.group().decode(encoding, errors="replace").rstrip("\r")
        # decode() drops a byte-order mark at the start of a file; so must this.
        fields = line_fields(text.removeprefix("\ufeff") if match.start() == 0 else text, separator)
        if fields and fields[0] == DOCSTART:
            out.append((match.start(), line))
    return out


def split_chunks(data: bytes, fmt: str, target_bytes: int, skip_header: bool = False,
                 documents: Sequence[int] | None = None) -> list[Chunk]:
    """Cut ``data`` into chunks of about ``target_bytes`` on sentence boundaries.

    ``documents`` (CoNLL): the byte offsets of the file's ``-DOCSTART-`` lines
    (:func:`document_starts`); past the first, chunks are cut only at those, so no
    document is split over two chunks.
    """
    start, line = 0, 1
    if skip_header:
        end_of_header = data.find(b"\n")
        start = len(data) if end_of_header < 0 else end_of_header + 1
        line = 2
    chunks: list[Chunk] = []
    while start < len(data):
        pos = start + max(target_bytes, 1)
        cut = _next_boundary(data, fmt, start, pos)
        if documents and fmt == "conll":
            cut = _document_cut(documents, start, pos, cut, len(data))
        chunks.append(Chunk(start, cut, line))
        line += data.count(b"\n", start, cut)
        start = cut
    return chunks


def _document_cut(documents: Sequence[int], start: int, pos: int, cut: int, end: int) -> int:
    """The cut at or after ``pos`` that keeps documents whole (``cut``: the plain sentence cut)."""
    if start < documents[0]:
        # Before a file's first marker every sentence is a document of its own: any sentence cut will do.
        return min(cut, documents[0])
    at = bisect.bisect_left(documents, pos)
    return documents[at] if at < len(documents) else end


def _next_boundary(data: bytes, fmt: str, start: int, pos: int) -> int:
    if pos >= len(data):
        return len(data)
    if fmt == "conll":
        match = _BLANK_LINE.search(data, pos - 1)
        return len(data) if match is None else match.end()
    if fmt == "gmb_csv":
        while True:
            match = _NEW_GMB_SENTENCE.search(data, pos - 1)
            if match is None:
                return len(data)
            cut = match.start() + 1
            # An odd number of quotes before the cut means it falls inside a quoted field
            # that spans lines: cutting there would hide that error from the parser.
            if data.count(b'"', start, cut) % 2 == 0:
                return cut
            pos = cut + 1
    newline = data.find(b"\n", pos - 1)
    return len(data) if newline < 0 else newline + 1
