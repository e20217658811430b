"""Corpus readers for CoNLL column files, the Kaggle/GMB CSV and JSONL.

Every reader works on *chunks*: byte ranges cut at sentence boundaries, each
knowing its first line and byte offset in the original file. Reading a whole
file is one chunk; the Ray Data pipeline parses many chunks in parallel with the
very same functions, so error messages name the same file, line and byte offset
however the work is split.

Parsers never raise on malformed sentences: they return a :class:`Sentence` with
``error`` set, and the caller decides (raise on the first, or skip and count).
Whole-file problems (missing file, undecodable bytes, missing header) raise
:class:`~raytag.errors.CorpusError`.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from raytag.errors import CorpusError

FORMATS = ("conll", "gmb_csv", "jsonl")
DOCSTART = "-DOCSTART-"
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

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown corpus format {self.format!r}; expected one of {', '.join(FORMATS)}")
        token_default, tag_default = DEFAULT_COLUMNS.get(self.format, (0, -1))
        if self.token_column is None:
            object.__setattr__(self, "token_column", token_default)
        if self.tag_column is None:
            object.__setattr__(self, "tag_column", tag_default)


@dataclass
class Sentence:
    """One parsed sentence; ``line`` is the 1-based line of its first token."""

    tokens: list[str]
    tags: list[str]
    file: str
    line: int
    error: str | None = None
    error_line: int | None = None


@dataclass(frozen=True)
class Chunk:
    """A byte range of a file that starts and ends on sentence boundaries."""

    start: int
    end: int
    first_line: int


@dataclass
class Header:
    """Column layout resolved once per file (GMB CSV header, CoNLL column count)."""

    token_index: int
    tag_index: int
    width: int | None
    sentence_index: int | None = None
    names: list[str] = field(default_factory=list)


# --- bytes and chunks ---------------------------------------------------------------------


def check_encoding(encoding: str) -> None:
    """Reject unknown codecs and ones that cannot be cut at newline bytes."""
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise ValueError(f"unknown encoding {encoding!r}") from exc
    if "\n".encode(encoding) != b"\n":
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
        cut = _next_boundary(data, fmt, start + max(target_bytes, 1))
        chunks.append(Chunk(start, cut, line))
        line += data.count(b"\n", start, cut)
        start = cut
    return chunks


def _next_boundary(data: bytes, fmt: str, pos: int) -> int:
    if pos >= len(data):
        return len(data)
    if fmt == "conll":
        match = _BLANK_LINE.search(data, pos - 1)
        return len(data) if match is None else match.end()
    if fmt == "gmb_csv":
        match = _NEW_GMB_SENTENCE.search(data, pos - 1)
        return len(data) if match is None else match.start() + 1
    newline = data.find(b"\n", pos - 1)
    return len(data) if newline < 0 else newline + 1


# --- headers --------------------------------------------------------------------------------


def _column_index(spec: int | str, names: Sequence[str] | None, what: str, file: str, width: int | None) -> int:
    if isinstance(spec, int):
        index = spec
        if width is not None:
            if not -width <= spec < width:
                raise CorpusError(file, None, f"{what} {spec} is out of range for {width} columns")
            index = spec % width
        return index
    if not names:
        raise CorpusError(file, None, f"{what} {spec!r} is a name but the format declares no column names")
    if spec not in names:
        raise CorpusError(file, None, f"{what} {spec!r} is not one of the columns {list(names)}")
    return list(names).index(spec)


def read_header(data: bytes, options: ReaderOptions, file: str) -> Header:
    """Resolve column positions from the file's first line (CSV) or the options (CoNLL)."""
    if options.format == "gmb_csv":
        end = data.find(b"\n")
        first = decode(data[: end if end >= 0 else len(data)], options.encoding, file)
        names = next(csv.reader([first.rstrip("\r")]), [])
        if not names or options.sentence_column not in names:
            raise CorpusError(file, 1, f"header {names} lacks the sentence column {options.sentence_column!r}")
        return Header(
            token_index=_column_index(options.token_column, names, "token_column", file, len(names)),
            tag_index=_column_index(options.tag_column, names, "tag_column", file, len(names)),
            width=len(names),
            sentence_index=names.index(options.sentence_column),
            names=names,
        )
    if options.format == "conll":
        names = list(options.columns) if options.columns else None
        width = len(names) if names else None
        return Header(
            token_index=_column_index(options.token_column, names, "token_column", file, width),
            tag_index=_column_index(options.tag_column, names, "tag_column", file, width),
            width=width,
            names=names or [],
        )
    return Header(token_index=0, tag_index=0, width=None)


# --- parsers --------------------------------------------------------------------------------


def parse_chunk(text: str, options: ReaderOptions, header: Header, file: str, first_line: int) -> list[Sentence]:
    """Parse decoded chunk text into sentences (errors recorded, never raised)."""
    if options.format == "conll":
        return list(_parse_conll(text, header, options.separator, file, first_line))
    if options.format == "gmb_csv":
        return list(_parse_gmb(text, header, file, first_line))
    return list(_parse_jsonl(text, options, file, first_line))


def _parse_conll(text: str, header: Header, sep: str | None, file: str, first_line: int) -> Iterator[Sentence]:
    width = header.width
    tokens: list[str] = []
    tags: list[str] = []
    start = first_line
    error: tuple[int, str] | None = None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for offset, raw in enumerate(lines):
        number = first_line + offset
        line = raw.rstrip("\r")
        fields = line.split(sep) if sep is not None else line.split()
        if sep is not None and not line.strip():
            fields = []
        if not fields or fields[0] == DOCSTART:
            if tokens or error:
                yield _sentence(tokens, tags, file, start, error)
            tokens, tags, error = [], [], None
            continue
        if not tokens and error is None:
            start = number
        if width is None:
            width = len(fields)
        if error is not None:
            continue
        if len(fields) != width:
            error = (number, f"expected {width} columns, found {len(fields)}")
            continue
        tokens.append(fields[header.token_index])
        tags.append(fields[header.tag_index])
    if tokens or error:
        yield _sentence(tokens, tags, file, start, error)


def _sentence(tokens: list[str], tags: list[str], file: str, line: int, error: tuple[int, str] | None) -> Sentence:
    if error is None:
        return Sentence(tokens, tags, file, line)
    return Sentence(tokens, tags, file, line, error=error[1], error_line=error[0])


def _parse_gmb(text: str, header: Header, file: str, first_line: int) -> Iterator[Sentence]:
    width = header.width
    sid_index = header.sentence_index if header.sentence_index is not None else 0
    tokens: list[str] = []
    tags: list[str] = []
    start = first_line
    error: tuple[int, str] | None = None
    started = False
    # Split on "\n" only: str.splitlines() would also break at U+0085, which is how
    # latin-1 decodes the 0x85 bytes inside GMB words.
    reader = csv.reader(line.rstrip("\r") for line in text.split("\n"))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # Quoted fields spanning lines and stray carriage returns are not supported.
            raise CorpusError(file, first_line + reader.line_num - 1, f"malformed CSV row: {exc}") from None
        number = first_line + reader.line_num - 1
        if not row:
            continue
        opens = len(row) > sid_index and row[sid_index].strip() != ""
        if opens or not started:
            if started:
                yield _sentence(tokens, tags, file, start, error)
            tokens, tags, error, start, started = [], [], None, number, True
            if not opens:
                name = header.names[sid_index] if header.names else "sentence id"
                error = (number, f"row has no {name!r} value and no sentence is open")
        if error is not None:
            continue
        if len(row) != width:
            error = (number, f"expected {width} columns, found {len(row)}")
            continue
        tokens.append(row[header.token_index])
        tags.append(row[header.tag_index])
    if started:
        yield _sentence(tokens, tags, file, start, error)


def _parse_jsonl(text: str, options: ReaderOptions, file: str, first_line: int) -> Iterator[Sentence]:
    for offset, line in enumerate(text.split("\n")):
        number = first_line + offset
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Sentence([], [], file, number, error=f"invalid JSON: {exc.msg} at column {exc.colno}", error_line=number)
            continue
        problem = None
        if not isinstance(record, dict):
            problem = "expected a JSON object"
        else:
            for key in (options.tokens_key, options.tags_key):
                value = record.get(key)
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    problem = f"{key!r} must be a list of strings"
                    break
        if problem is not None:
            yield Sentence([], [], file, number, error=problem, error_line=number)
            continue
        yield Sentence(list(record[options.tokens_key]), list(record[options.tags_key]), file, number)


# --- validation -----------------------------------------------------------------------------


def structural_problem(sentence: Sentence) -> str | None:
    """Problems any format can have regardless of tag scheme."""
    if sentence.error is not None:
        return sentence.error
    if len(sentence.tokens) != len(sentence.tags):
        return f"{len(sentence.tokens)} tokens but {len(sentence.tags)} tags"
    if not sentence.tokens:
        return "empty sentence"
    for token in sentence.tokens:
        # ASCII whitespace only: latin-1 text legitimately holds U+0085 tokens.
        if token.strip(" \t\r\n") == "":
            return "empty token"
    return None


def read_sentences(data: bytes, options: ReaderOptions, file: str) -> list[Sentence]:
    """Parse a whole file's bytes in one chunk (the plain-Python path)."""
    check_encoding(options.encoding)
    header = read_header(data, options, file)
    skip = options.format == "gmb_csv"
    sentences: list[Sentence] = []
    for chunk in split_chunks(data, options.format, len(data) + 1, skip_header=skip):
        text = decode(data[chunk.start : chunk.end], options.encoding, file, chunk.start, chunk.first_line)
        sentences.extend(parse_chunk(text, options, header, file, chunk.first_line))
    return sentences


@dataclass
class CorpusRead:
    """Sentences of one file, converted to IOB2 (entity sets) and validated."""

    sentences: list[Sentence]
    scheme: str
    skipped: list[Sentence] = field(default_factory=list)


def read_corpus(
    source: str, options: ReaderOptions, *, scheme: str = "auto", on_error: str = "raise"
) -> CorpusRead:
    """Read, validate and convert one corpus file in-process (no Ray).

    The same rules as the prepare pipeline: with ``on_error="raise"`` the first
    bad sentence raises :class:`CorpusError` naming file, line and reason; with
    ``"skip"`` bad sentences are returned in ``skipped`` with their reason.
    """
    from raytag.corpus import schemes, sources

    file = sources.load(source)
    parsed = read_sentences(file.data, options, file.name)
    if scheme == "auto":
        scheme = schemes.detect_scheme_of(s.tags for s in parsed if structural_problem(s) is None)
    good: list[Sentence] = []
    bad: list[Sentence] = []
    token_lines = options.format != "jsonl"
    for sentence in parsed:
        reason = structural_problem(sentence)
        line = sentence.error_line if sentence.error_line is not None else sentence.line
        if reason is None:
            found = schemes.sentence_problem(sentence.tags, scheme)
            if found is not None:
                index, why = found
                reason = f"token {index + 1} ({sentence.tokens[index]!r}): {why}"
                line = sentence.line + index if token_lines else sentence.line
        if reason is None:
            sentence.tags = schemes.to_iob2(sentence.tags, scheme)
            good.append(sentence)
            continue
        if on_error == "raise":
            raise CorpusError(sentence.file, line, reason)
        sentence.error, sentence.error_line = reason, line
        bad.append(sentence)
    if not good:
        raise CorpusError(file.name, None, "empty corpus: no valid sentence")
    return CorpusRead(good, scheme, bad)
