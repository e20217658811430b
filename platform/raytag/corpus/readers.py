"""Corpus readers for CoNLL column files, the Kaggle/GMB CSV and JSONL.

Every reader works on *chunks*: byte ranges cut at sentence boundaries, each
knowing its first line and byte offset in the original file. Reading a whole
file is one chunk; the Ray Data pipeline parses many chunks in parallel with the
very same functions, so error messages name the same file, line and byte offset
however the work is split.

Parsers never raise on malformed sentences: they return a :class:`Sentence` with
``error`` set, and the caller decides (raise on the first, or skip and count). They
must not raise in Ray workers either, where an error loses its type on the way back.
Whole-file problems (missing file, undecodable bytes, missing header, the column
layout) raise :class:`~raytag.errors.CorpusError` when the file is opened.

Documents: in CoNLL files a ``-DOCSTART-`` line opens a document that runs to the
next one; a sentence records the line of its document's marker. Sentences before a
file's first marker (all of them in a file without one) and every sentence of the
other formats have no document: each is a document of its own, so nothing unrelated
becomes context (:mod:`raytag.models.doc_context`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

# Re-exported: the byte-level half of reading lives in chunks.py.
from raytag.corpus.chunks import DOCSTART, Chunk, check_encoding, decode, lone_surrogate, split_chunks  # noqa: F401
from raytag.corpus.chunks import line_fields as _fields
from raytag.errors import CorpusError

FORMATS = ("conll", "gmb_csv", "jsonl")
DEFAULT_COLUMNS: dict[str, tuple[int | str, int | str]] = {"conll": (0, -1), "gmb_csv": ("Word", "Tag")}
# The tag every token of an untagged corpus (``tagged: false``) gets.
UNTAGGED = "O"
EMPTY_INPUT = "empty corpus: the input holds no sentence"


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
    # False: the corpus has no tags; every token gets UNTAGGED.
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
class Sentence:
    """One parsed sentence; ``line`` is the 1-based line of its first token."""

    tokens: list[str]
    tags: list[str]
    file: str
    line: int
    error: str | None = None
    error_line: int | None = None
    # Line of the ``-DOCSTART-`` that opened the sentence's document; None: a document of its own.
    document: int | None = None


@dataclass
class Header:
    """Column layout resolved once per file (GMB CSV header, CoNLL column count)."""

    token_index: int
    # None: the corpus is untagged.
    tag_index: int | None
    width: int | None
    sentence_index: int | None = None
    names: list[str] = field(default_factory=list)


# --- headers --------------------------------------------------------------------------------


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


# --- parsers --------------------------------------------------------------------------------


def parse_chunk(text: str, options: ReaderOptions, header: Header, file: str, first_line: int,
                document: int | None = None) -> list[Sentence]:
    """Parse decoded chunk text into sentences (errors recorded, never raised).

    ``document``: the line of the last ``-DOCSTART-`` before the chunk (CoNLL), whose
    document the chunk's first sentences belong to.
    """
    if options.format == "conll":
        return list(_parse_conll(text, header, options.separator, file, first_line, document))
    if options.format == "gmb_csv":
        return list(_parse_gmb(text, header, file, first_line))
    return list(_parse_jsonl(text, options, file, first_line))


def _parse_conll(text: str, header: Header, sep: str | None, file: str, first_line: int,
                 document: int | None) -> Iterator[Sentence]:
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
        fields = _fields(raw.rstrip("\r"), sep)
        if not fields or fields[0] == DOCSTART:
            if tokens or error:
                yield _sentence(tokens, tags, file, start, error, document)
            tokens, tags, error = [], [], None
            document = number if fields else document
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
        tags.append(UNTAGGED if header.tag_index is None else fields[header.tag_index])
    if tokens or error:
        yield _sentence(tokens, tags, file, start, error, document)


def _sentence(tokens: list[str], tags: list[str], file: str, line: int, error: tuple[int, str] | None,
              document: int | None = None) -> Sentence:
    if error is None:
        return Sentence(tokens, tags, file, line, document=document)
    return Sentence(tokens, tags, file, line, error=error[1], error_line=error[0], document=document)


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
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    reader = csv.reader(line.rstrip("\r") for line in lines)
    while True:
        before = reader.line_num
        malformed = None
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # A carriage return inside a line, for one. The row's sentence is bad (it cannot
            # tell whether it opens a new one) and reading goes on at the next line.
            row, malformed = [], f"malformed CSV row: {exc}"
        number = first_line + before
        if not row and malformed is None:
            continue
        opens = len(row) > sid_index and row[sid_index].strip() != ""
        if opens or not started:
            if started:
                yield _sentence(tokens, tags, file, start, error)
            tokens, tags, error, start, started = [], [], None, number, True
            if not opens and malformed is None:
                name = header.names[sid_index] if header.names else "sentence id"
                error = (number, f"row has no {name!r} value and no sentence is open")
        if error is not None:
            continue
        if malformed is not None:
            error = (number, malformed)
            continue
        if reader.line_num - before > 1:
            # The reader joined the lines of a quoted field without their line break; a token
            # cannot hold one, and every later line number would be off. Refuse it here.
            last = first_line + reader.line_num - 1
            error = (number, f"a quoted field runs from line {number} to line {last}; a field cannot "
                             "span lines (is a closing quote missing?)")
            continue
        if len(row) != width:
            error = (number, f"expected {width} columns, found {len(row)}")
            continue
        tokens.append(row[header.token_index])
        tags.append(UNTAGGED if header.tag_index is None else row[header.tag_index])
    if started:
        yield _sentence(tokens, tags, file, start, error)


def _parse_jsonl(text: str, options: ReaderOptions, file: str, first_line: int) -> Iterator[Sentence]:
    keys = (options.tokens_key, options.tags_key) if options.tagged else (options.tokens_key,)
    for offset, line in enumerate(text.split("\n")):
        number = first_line + offset
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Sentence([], [], file, number, error=f"invalid JSON: {exc.msg} at column {exc.colno}", error_line=number)
            continue
        except (RecursionError, ValueError) as exc:
            # Python refuses very deep nesting and integers of thousands of digits.
            why = "nested too deeply" if isinstance(exc, RecursionError) else "a number has too many digits"
            yield Sentence([], [], file, number, error=f"invalid JSON: {why}", error_line=number)
            continue
        # Decoded text holds no surrogates; only a \u escape can spell one.
        problem = _record_problem(record, keys, escapes="\\u" in line)
        if problem is not None:
            yield Sentence([], [], file, number, error=problem, error_line=number)
            continue
        tokens = list(record[options.tokens_key])
        tags = list(record[options.tags_key]) if options.tagged else [UNTAGGED] * len(tokens)
        yield Sentence(tokens, tags, file, number)


def _record_problem(record: object, keys: Sequence[str], escapes: bool) -> str | None:
    if not isinstance(record, dict):
        return "expected a JSON object"
    for key in keys:
        value = record.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"{key!r} must be a list of strings"
        for index, item in enumerate(value if escapes else ()):
            # JSON escapes can spell a lone surrogate (\ud800), which no UTF-8 output can hold.
            surrogate = lone_surrogate(item)
            if surrogate is not None:
                return f"{key!r} item {index + 1} holds the lone surrogate {surrogate}, which is not valid Unicode"
    return None


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
    if not parsed:
        raise CorpusError(file.name, None, EMPTY_INPUT)
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
