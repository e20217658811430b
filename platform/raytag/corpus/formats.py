"""The corpus formats and how a file's columns are found.

:class:`ReaderOptions` says how to read one format (built from the corpus config);
:func:`read_header` resolves it against a file once, before any chunk is parsed:
the GMB CSV header names the columns, a CoNLL file's first token line fixes their
count. A bad layout (no header, a column out of range or unknown, a tagged corpus
with one column) raises :class:`~raytag.errors.CorpusError` naming the file (and the
line, where one is to blame).
The parsers of :mod:`raytag.corpus.readers` then read every chunk with the
resulting :class:`Header`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field

from raytag.corpus.chunks import DOCSTART, decode
from raytag.corpus.chunks import line_fields as _fields
from raytag.errors import CorpusError

FORMATS = ("conll", "gmb_csv", "jsonl")
DEFAULT_COLUMNS: dict[str, tuple[int | str, int | str]] = {"conll": (0, -1), "gmb_csv": ("Word", "Tag")}


@dataclass(frozen=True)
class ReaderOptions:
    """How to read one corpus format. Built from the corpus config."""

    format: str
    encoding: str = "utf-8"
    # Index or name; None = the format's default (DEFAULT_COLUMNS).
    token_column: int | str | None = None
    tag_column: int | str | None = None
    # CoNLL: column names (lets tag_column be a name) and the separator; None = any whitespace.
    columns: tuple[str, ...] | None = None
    separator: str | None = None
    # GMB CSV: the column whose non-empty value starts a new sentence.
    sentence_column: str = "Sentence #"
    # JSONL keys.
    tokens_key: str = "tokens"
    tags_key: str = "tags"
    # False: the corpus has no tags; every token gets readers.UNTAGGED.
    tagged: bool = True

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown corpus format {self.format!r}; expected one of {', '.join(FORMATS)}")
        token_default, tag_default = DEFAULT_COLUMNS.get(self.format, (0, -1))
        if self.token_column is None:
            object.__setattr__(self, "token_column", token_default)
        if self.tag_column is None and self.tagged:
            object.__setattr__(self, "tag_column", tag_default)


@dataclass
class Header:
    """Column layout resolved once per file (GMB CSV header, CoNLL column count)."""

    token_index: int
    # None: the corpus is untagged.
    tag_index: int | None
    width: int | None
    sentence_index: int | None = None
    names: list[str] = field(default_factory=list)


def _column_index(
    spec: int | str, names: Sequence[str] | None, what: str, file: str, width: int | None, line: int | None
) -> int:
    if isinstance(spec, int):
        index = spec
        if width is not None:
            if not -width <= spec < width:
                raise CorpusError(file, line, f"{what} {spec} is out of range for {width} columns")
            index = spec % width
        return index
    if not names:
        raise CorpusError(file, None, f"{what} {spec!r} is a name but the format declares no column names")
    if spec not in names:
        raise CorpusError(file, None, f"{what} {spec!r} is not one of the columns {list(names)}")
    return list(names).index(spec)


def _first_token_line(data: bytes, options: ReaderOptions, file: str) -> tuple[int, list[str]] | None:
    """Line number and columns of a CoNLL file's first token line (None: the file has none)."""
    start, number = 0, 1
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        text = decode(data[start:end], options.encoding, file, start, number).rstrip("\r")
        fields = _fields(text, options.separator)
        if fields and fields[0] != DOCSTART:
            return number, fields
        start, number = end + 1, number + 1
    return None


def _tagged_columns(header: Header, file: str, line: int | None) -> Header:
    if header.tag_index is None or header.tag_index != header.token_index:
        return header
    if header.width == 1:
        # One column read as both token and tag would silently "tag" every word with itself.
        reason = ("found 1 column, but a tagged corpus needs a token column and a tag column; "
                  "set corpus.tagged: false if the corpus has no tags")
    else:
        reason = f"token_column and tag_column both name column {header.token_index}"
    raise CorpusError(file, line, reason)


def read_header(data: bytes, options: ReaderOptions, file: str) -> Header:
    """Resolve column positions from the file's first line (CSV: header; CoNLL: first token line)."""
    tagged = options.tagged and options.tag_column is not None
    if options.format == "gmb_csv":
        end = data.find(b"\n")
        first = decode(data[: end if end >= 0 else len(data)], options.encoding, file)
        names = next(csv.reader([first.rstrip("\r")]), [])
        if not names:
            raise CorpusError(file, 1, "no header: the first line must name the columns, including the "
                                       f"sentence column {options.sentence_column!r}")
        if options.sentence_column not in names:
            raise CorpusError(file, 1, f"header {names} lacks the sentence column {options.sentence_column!r}")
        header = Header(
            token_index=_column_index(options.token_column, names, "token_column", file, len(names), 1),
            tag_index=_column_index(options.tag_column, names, "tag_column", file, len(names), 1) if tagged else None,
            width=len(names),
            sentence_index=names.index(options.sentence_column),
            names=names,
        )
        return _tagged_columns(header, file, 1)
    if options.format == "conll":
        names = list(options.columns) if options.columns else None
        width, line = len(names) if names else None, None
        # Without names, every sentence must have the columns of the file's first token
        # line, whichever chunk it is parsed in.
        first = None if names else _first_token_line(data, options, file)
        if first is not None:
            line, width = first[0], len(first[1])
        header = Header(
            token_index=_column_index(options.token_column, names, "token_column", file, width, line),
            tag_index=_column_index(options.tag_column, names, "tag_column", file, width, line) if tagged else None,
            width=width,
            names=names or [],
        )
        return _tagged_columns(header, file, line)
    return Header(token_index=0, tag_index=0 if tagged else None, width=None)
