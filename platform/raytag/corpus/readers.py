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
layout: :mod:`raytag.corpus.formats`) raise :class:`~raytag.errors.CorpusError` when
the file is opened.

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

from raytag.corpus.chunks import DOCSTART, Chunk, check_encoding, decode, lone_surrogate, split_chunks
from raytag.corpus.chunks import line_fields as _fields
from raytag.corpus.formats import DEFAULT_COLUMNS, FORMATS, Header, ReaderOptions, read_header
from raytag.errors import CorpusError

# Re-exported: the byte-level half of reading lives in chunks.py, the formats and column
# layout in formats.py; callers import all of it from here.
__all__ = [
    "DEFAULT_COLUMNS", "DOCSTART", "EMPTY_INPUT", "FORMATS", "UNTAGGED", "Chunk", "CorpusRead", "Header",
    "ReaderOptions", "Sentence", "check_encoding", "decode", "lone_surrogate", "parse_chunk", "read_corpus",
    "read_header", "read_sentences", "split_chunks", "structural_problem",
]

# The tag every token of an untagged corpus (``tagged: false``) gets.
UNTAGGED = "O"
EMPTY_INPUT = "empty corpus: the input holds no sentence"


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
