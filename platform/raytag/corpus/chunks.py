"""Bytes to text: encodings, decoding with exact positions, sentence-aligned chunks.

A chunk is a byte range cut at a sentence boundary that knows its first line and
byte offset in the original file, so errors found while parsing any chunk name
the same file, line and byte offset however the work is split.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from raytag.errors import CorpusError

# Every printable ASCII character plus the escapes that "escape" codecs would turn into
# other characters: a codec must read and write all of it unchanged, or cutting files at
# newline bytes and splitting fields at ASCII separators would be wrong. The codecs this
# rejects (UTF-7, UTF-16, the escape codecs) are also the ones that could decode to lone
# surrogates, which no UTF-8 output (Arrow, Parquet, JSON) can hold.
_ASCII_PROBE = bytes(range(0x20, 0x7F)) + b"\t\r\n\\u0041\\x41+AGEA-"
_SURROGATE = re.compile("[\ud800-\udfff]")


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


def split_chunks(data: bytes, fmt: str, target_bytes: int, skip_header: bool = False) -> list[Chunk]:
    """Cut ``data`` into chunks of about ``target_bytes`` on sentence boundaries."""
    start, line = 0, 1
    if skip_header:
        end_of_header = data.find(b"\n")
        start = len(data) if end_of_header < 0 else end_of_header + 1
        line = 2
    chunks: list[Chunk] = []
    while start < len(data):
        cut = _next_boundary(data, fmt, start, start + max(target_bytes, 1))
        chunks.append(Chunk(start, cut, line))
        line += data.count(b"\n", start, cut)
        start = cut
    return chunks


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
