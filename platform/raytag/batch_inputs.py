"""Inputs of batch prediction: which files, in which format, and every record in them.

Plain Python (no Ray): :mod:`raytag.batch_predict` runs :func:`read_records` inside
Ray Data tasks, one task per file. Formats:

* ``text``: one text per line (``.txt``); every line is a record, blank ones too, so
  output row *n* of a file is its line *n*;
* ``jsonl``: one JSON object per line (``.jsonl``, ``.json``, ``.ndjson``) with a
  ``text`` string or a ``tokens`` list (or the field named by ``column``); the
  object's other fields travel with the record; blank lines are skipped;
* ``conll``: tokens from a column (``column``, default 0) of whitespace-separated
  lines (``.conll`` and any other extension), sentences separated by blank lines,
  ``-DOCSTART-`` lines ignored;
* ``parquet``: the ``column`` (default ``text``, else ``tokens``) of each row.

A bad record (undecodable bytes, a text over ``max_chars``, a JSONL line that is not
an object or lacks the field) becomes a record with ``reject`` set, in its place, so
the records around it keep their position; an unreadable file becomes one reject.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from raytag.corpus import sources
from raytag.errors import CorpusError, RaytagError

__all__ = ["INPUT_FORMATS", "BatchInputError", "InputOptions", "Record", "detect_format", "expand_inputs",
           "parse_records", "read_records"]

INPUT_FORMATS = ("text", "jsonl", "conll", "parquet")
_EXTENSIONS = {".txt": "text", ".text": "text", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
               ".parquet": "parquet", ".pq": "parquet"}
_GLOB = "*?["
DOCSTART = "-DOCSTART-"


class BatchInputError(RaytagError):
    """The inputs of a batch prediction cannot be used as given (no such file, unknown format)."""


@dataclass(frozen=True)
class InputOptions:
    """How to read inputs; ``format`` None picks each file's format from its extension."""

    format: str | None = None
    # JSONL/Parquet: the field holding the text or token list; CoNLL: the token column index.
    column: str | None = None
    encoding: str = "utf-8"
    max_chars: int = 100_000

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in INPUT_FORMATS:
            raise BatchInputError(f"unknown input format {self.format!r}; expected one of {', '.join(INPUT_FORMATS)}")
        if self.max_chars < 1:
            raise BatchInputError(f"--max-chars must be positive, got {self.max_chars}")
        if self.column is not None and self.format == "conll" and not _is_int(self.column):
            raise BatchInputError(f"CoNLL --column is a token column index, got {self.column!r}")


@dataclass
class Record:
    """One input to tag. ``line`` is 1-based (None for Parquet); ``row`` is the record's index in its file."""

    source: str
    line: int | None
    row: int
    text: str = ""
    # None: ``text`` is raw text the tagger tokenizes; else the given tokens (``text`` joins them).
    tokens: list[str] | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    reject: str | None = None

    @property
    def where(self) -> str:
        if self.line is not None:
            return f"{self.source}:{self.line}"
        return f"{self.source} row {self.row}" if self.row >= 0 else self.source


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def detect_format(path: str, given: str | None = None) -> str:
    """``given`` if set, else by extension (``.gz``/``.zip`` ignored); anything unknown is CoNLL."""
    if given is not None:
        return given
    name = path.partition("#")[0].lower()
    for archive in (".gz", ".zip"):
        name = name.removesuffix(archive)
    return _EXTENSIONS.get(PurePosixPath(name).suffix, "conll")


def _expand_uri(uri: str) -> list[str]:
    import pyarrow.fs as pafs

    scheme, _, rest = uri.partition("://")
    parent, _, pattern = rest.rpartition("/")
    if any(ch in parent for ch in _GLOB):
        raise BatchInputError(f"{uri}: only the last part of a URI may be a pattern")
    try:
        fs, base = pafs.FileSystem.from_uri(f"{scheme}://{parent}")
        if not any(ch in pattern for ch in _GLOB):
            if fs.get_file_info(f"{base}/{pattern}").type != pafs.FileType.File:
                raise BatchInputError(f"{uri}: no such file")
            return [uri]
        infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except (OSError, ValueError) as exc:
        raise BatchInputError(f"{uri}: cannot list: {exc}") from None
    names = sorted(PurePosixPath(i.path).name for i in infos if i.type == pafs.FileType.File)
    matches = [f"{scheme}://{parent}/{n}" for n in names if fnmatch.fnmatchcase(n, pattern)]
    if not matches:
        raise BatchInputError(f"{uri}: no file matches this pattern")
    return matches


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Local paths, directories (their files), globs and ``scheme://`` URIs → concrete files, in order given.

    Missing inputs fail here, on the driver, before any work starts.
    """
    if not inputs:
        raise BatchInputError("no input given")
    files: list[str] = []
    for given in inputs:
        if "://" in given:
            files.extend(_expand_uri(given))
            continue
        path = Path(given.partition("#")[0])
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not found:
                raise BatchInputError(f"{given}: directory holds no file")
            files.extend(found)
        elif any(ch in given for ch in _GLOB):
            try:
                files.extend(sources.expand(given))
            except CorpusError as exc:
                raise BatchInputError(str(exc)) from None
        elif not path.is_file():
            raise BatchInputError(f"{given}: no such file (working directory {Path.cwd()})")
        else:
            files.append(given)
    return files


def _lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline ends the last line; it does not start another
    for number, raw in enumerate(lines, 1):
        yield number, raw.removesuffix(b"\r")


def _decode(raw: bytes, encoding: str, first: bool) -> tuple[str | None, str | None]:
    """(text, None), or (None, why) for bytes that do not decode."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        return None, f"cannot decode byte 0x{raw[exc.start:exc.start + 1].hex()} (column {exc.start + 1}) as {encoding}"
    return (text.removeprefix("\ufeff") if first else text), None


def _check_length(record: Record, max_chars: int) -> Record:
    if record.reject is None and len(record.text) > max_chars:
        record.reject = f"text has {len(record.text)} characters, over --max-chars {max_chars}"
        record.text, record.tokens = "", None  # the reject file names it; its text would only bloat the output
    return record


def _content(value: Any, name: str) -> tuple[str, list[str] | None] | str:
    """(text, tokens) from a field's value, or why it cannot be tagged."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        tokens = list(value)
        if any(not t or t != t.strip() or " " in t for t in tokens):
            return f"field {name!r} holds an empty token or one with whitespace"
        return " ".join(tokens), tokens
    return f"field {name!r} is neither a string nor a list of strings"


def _pick(obj: dict[str, Any], column: str | None) -> tuple[str | None, str | None]:
    """The field to tag: ``column``, else ``text``, else ``tokens``; (None, why) when absent."""
    names = [column] if column else ["text", "tokens"]
    for name in names:
        if name in obj:
            return name, None
    return None, f"has no {' or '.join(repr(n) for n in names)} field"


def _from_object(record: Record, obj: Any, column: str | None, kind: str) -> Record:
    if not isinstance(obj, dict):
        record.reject = f"{kind} is a JSON {type(obj).__name__}, not an object"
        return record
    name, missing = _pick(obj, column)
    if name is None:
        record.reject = f"{kind} {missing}"
        return record
    content = _content(obj[name], name)
    if isinstance(content, str):
        record.reject = content
        return record
    record.text, record.tokens = content
    record.fields = {k: v for k, v in obj.items() if k != name}
    return record


def _text_records(data: bytes, source: str, options: InputOptions) -> Iterator[Record]:
    for row, (number, raw) in enumerate(_lines(data)):
        text, why = _decode(raw, options.encoding, number == 1)
        yield Record(source, number, row, text or "", reject=why)


def _jsonl_records(data: bytes, source: str, options: InputOptions) -> Iterator[Record]:
    row = 0
    for number, raw in _lines(data):
        if not raw.strip():
            continue
        record = Record(source, number, row)
        row += 1
        text, why = _decode(raw, options.encoding, number == 1)
        if text is None:
            record.reject = why
            yield record
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            record.reject = f"not valid JSON: {exc.msg} (column {exc.colno})"
            yield record
            continue
        yield _from_object(record, obj, options.column, "line")


def _conll_records(data: bytes, source: str, options: InputOptions) -> Iterator[Record]:
    column = int(options.column) if options.column is not None else 0
    row = 0
    tokens: list[str] = []
    start: int | None = None
    problem: str | None = None

    def flush() -> Iterator[Record]:
        nonlocal tokens, start, problem, row
        if start is not None:
            record = Record(source, start, row, reject=problem)
            if problem is None:
                record.text, record.tokens = " ".join(tokens), tokens
            row += 1
            yield record
        tokens, start, problem = [], None, None

    for number, raw in _lines(data):
        text, why = _decode(raw, options.encoding, number == 1)
        fields = text.split() if text is not None else raw.split()
        if not fields or fields[0] == DOCSTART:
            yield from flush()
            continue
        if start is None:
            start = number
        if problem is not None:
            continue
        if why is not None:
            problem = f"line {number}: {why}"
        elif not -len(fields) <= column < len(fields):
            problem = f"line {number} has {len(fields)} columns; the token column is {column}"
        else:
            tokens.append(fields[column])
    yield from flush()


def _parquet_records(data: bytes, source: str, options: InputOptions) -> Iterator[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data))
    name, missing = _pick(dict.fromkeys(table.column_names), options.column)
    if name is None:
        raise CorpusError(source, None, f"Parquet file {missing}; columns: {', '.join(table.column_names)}")
    for row, obj in enumerate(table.to_pylist()):
        record = Record(source, None, row)
        value = obj[name]
        if value is None:
            record.reject = f"column {name!r} is null"
            yield record
            continue
        yield _from_object(record, obj, name, "row")


_PARSERS = {"text": _text_records, "jsonl": _jsonl_records, "conll": _conll_records, "parquet": _parquet_records}


def parse_records(data: bytes, source: str, fmt: str, options: InputOptions) -> list[Record]:
    """Every record of one file's bytes, bad ones with ``reject`` set, in file order."""
    return [_check_length(r, options.max_chars) for r in _PARSERS[fmt](data, source, options)]


def read_records(source: str, fmt: str, options: InputOptions) -> list[Record]:
    """Read and parse one file (local or URI, ``.gz``/``.zip`` too); an unreadable file is one reject."""
    try:
        loaded = sources.load(source)
        return parse_records(loaded.data, source, fmt, options)
    except CorpusError as exc:
        return [Record(source, exc.line, -1, reject=exc.reason)]
    except Exception as exc:  # noqa: BLE001 - a corrupt file must not stop the other files
        return [Record(source, None, -1, reject=f"cannot read as {fmt}: {type(exc).__name__}: {exc}")]
