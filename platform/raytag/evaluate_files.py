"""Evaluate a tagger on labelled files (CoNLL, JSONL, GMB CSV) without preparing them.

The files go through the same readers, validation and IOB2 conversion as the
prepare pipeline (:func:`raytag.corpus.readers.read_corpus`), then the gold
tokens are tagged and scored with :func:`raytag.evaluate.evaluation_report`, so
a file scores exactly what the prepared split of the same data scores with
:func:`raytag.artifact.evaluate_tagger`.

Label maps
----------
A file labelled with other names than the model's (``PERSON`` vs ``PER``) is
mapped onto the model's labels with a dict whose keys are either

* a full tag, after conversion to IOB2 (``{"B-PERSON": "B-PER"}``, or
  ``{"NN": "NOUN"}`` for plain tag sets), or
* an entity type, applied to every prefix of that type (``{"PERSON": "PER"}``
  turns ``B-PERSON``/``I-PERSON`` into ``B-PER``/``I-PER``).  Mapping a type to
  ``O`` (``{"MISC": "O"}``) drops entities the model cannot predict.

A full-tag key wins over a type key.  Targets must be model labels or model
entity types.  Without a map, any file label the model does not have is an
error that lists those labels and where each first occurs.

Entity types are scored by seqeval per type; the scheme of each file is
detected on its own (``scheme="auto"``), which for valid files converts to the
same IOB2 as detecting it over all files together.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytag.corpus import sources
from raytag.corpus.readers import FORMATS, ReaderOptions, read_corpus
from raytag.corpus.schemes import split_tag
from raytag.errors import RaytagError
from raytag.evaluate import confusion_matrix, evaluation_report, format_report, plot_confusion_matrix, save_report
from raytag.tagged import predict_in_documents

if TYPE_CHECKING:  # the tagger module pulls in model code; only its protocol is needed here
    from raytag.tagger import Tagger

__all__ = [
    "EvaluationError",
    "LabelledData",
    "evaluate_files",
    "infer_format",
    "map_labels",
    "parse_label_map",
    "read_labelled",
    "reader_options",
]

# Extensions (after stripping .gz/.zip) that name a format; anything else is CoNLL.
_EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "gmb_csv"}


class EvaluationError(RaytagError):
    """The files cannot be scored against the model as given (labels, map, format)."""


@dataclass
class LabelledData:
    """Gold sentences read from one or more files, in file order."""

    tokens: list[list[str]] = field(default_factory=list)
    tags: list[list[str]] = field(default_factory=list)
    # Per sentence: file, line of its first token, and whether each token has its
    # own line (CoNLL, CSV) so that token i sits on line + i; JSONL has one line.
    origins: list[tuple[str, int, bool]] = field(default_factory=list)
    # Per sentence, its document: (file number, -DOCSTART- line), or (file number, -line)
    # for a sentence outside any document (a document of its own).
    documents: list[tuple[int, int]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)


def infer_format(path: str | Path) -> str:
    """``jsonl`` for .jsonl/.json/.ndjson, ``gmb_csv`` for .csv, else ``conll`` (.gz/.zip ignored)."""
    name = str(path).partition("#")[0].lower()
    for archive in (".gz", ".zip"):
        name = name.removesuffix(archive)
    return _EXTENSIONS.get(Path(name).suffix, "conll")


def _column(value: int | str | None) -> int | str | None:
    # CLI values arrive as strings; "-1" means an index, "ner" a column name.
    if isinstance(value, str):
        value = value.strip()
        try:
            return int(value)
        except ValueError:
            return value or None
    return value


def reader_options(
    format: str,
    *,
    columns: str | Sequence[str] | None = None,
    token_column: int | str | None = None,
    tag_column: int | str | None = None,
    encoding: str = "utf-8",
    separator: str | None = None,
    sentence_column: str = "Sentence #",
    tokens_key: str = "tokens",
    tags_key: str = "tags",
) -> ReaderOptions:
    """Build reader options from CLI-style values, as ``corpus:`` in a job config describes them.

    ``columns`` names the CoNLL columns (``"word,pos,chunk,ner"``) so that
    ``tag_column`` can be a name; column values may be indices given as text
    (``"-1"``).  Defaults: CoNLL token column 0 and tag column -1, GMB CSV
    ``Word`` and ``Tag``, JSONL keys ``tokens`` and ``tags``.
    """
    if format not in FORMATS:
        raise EvaluationError(f"unknown corpus format {format!r}; expected one of {', '.join(FORMATS)}")
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",") if c.strip()]
    return ReaderOptions(
        format=format,
        encoding=encoding,
        token_column=_column(token_column),
        tag_column=_column(tag_column),
        columns=tuple(columns) if columns else None,
        separator=separator,
        sentence_column=sentence_column,
        tokens_key=tokens_key,
        tags_key=tags_key,
    )


def parse_label_map(spec: str | Path | Mapping[str, str] | None) -> dict[str, str]:
    """Read a label map from a dict, a JSON object file, or ``"PERSON=PER,MISC=O"``."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        pairs = dict(spec)
    elif str(spec).strip().endswith(".json") or Path(str(spec)).is_file():
        path = Path(str(spec).strip())
        try:
            pairs = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise EvaluationError(f"{path}: label map file not found") from None
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{path}:{exc.lineno}: label map is not valid JSON: {exc.msg}") from None
        if not isinstance(pairs, dict):
            raise EvaluationError(f"{path}: label map must be a JSON object of file label -> model label")
    else:
        pairs = {}
        for item in str(spec).split(","):
            if not item.strip():
                continue
            source, sep, target = item.partition("=")
            if not sep or not source.strip() or not target.strip():
                raise EvaluationError(f"label map entry {item.strip()!r} is not of the form FILE_LABEL=MODEL_LABEL")
            pairs[source.strip()] = target.strip()
    for source, target in pairs.items():
        if not isinstance(source, str) or not isinstance(target, str) or not source or not target:
            raise EvaluationError(f"label map entry {source!r}: {target!r} must map a label to a label (strings)")
    return pairs


def _check_map(label_map: Mapping[str, str], model_labels: Sequence[str]) -> None:
    labels = set(model_labels)
    types = {kind for kind in (split_tag(t)[1] for t in model_labels) if kind is not None}
    bad = []
    for source, target in label_map.items():
        if types and split_tag(source)[0] == "":
            # An entity type: it maps onto a model type, or O to drop it.
            ok = target in types or target == "O"
        else:
            ok = target in labels
        if not ok:
            bad.append(f"{source}={target}")
    if bad:
        model_types = f"; model entity types: {', '.join(sorted(types))}" if types else ""
        raise EvaluationError(
            f"label map targets unknown to the model: {', '.join(bad)}; "
            f"model labels: {', '.join(model_labels)}{model_types}"
        )


def map_labels(tags: Sequence[Sequence[str]], label_map: Mapping[str, str]) -> list[list[str]]:
    """Rename file tags with a full-tag or entity-type ``label_map`` (see the module docstring)."""

    def rename(tag: str) -> str:
        if tag in label_map:
            return label_map[tag]
        prefix, kind = split_tag(tag)
        if kind is not None and kind in label_map:
            target = label_map[kind]
            return "O" if target == "O" else f"{prefix}-{target}"
        return tag

    return [[rename(t) for t in sentence] for sentence in tags]


def read_labelled(
    files: Sequence[str | Path],
    options: ReaderOptions | None = None,
    *,
    scheme: str = "auto",
    on_error: str = "raise",
) -> LabelledData:
    """Read, validate and convert labelled files to IOB2 (entity sets) in order.

    ``files`` may hold globs and archives like corpus sources do; ``options``
    ``None`` infers each file's format from its extension (:func:`infer_format`).
    Malformed sentences raise :class:`~raytag.errors.CorpusError` naming file and
    line, or are skipped and counted with ``on_error="skip"``.
    """
    if not files:
        raise EvaluationError("no labelled file given")
    data = LabelledData()
    for given in files:
        for source in sources.expand(str(given)):
            number = len(data.files)
            opts = options or ReaderOptions(format=infer_format(source))
            read = read_corpus(source, opts, scheme=scheme, on_error=on_error)
            token_lines = opts.format != "jsonl"
            for sentence in read.sentences:
                data.tokens.append(sentence.tokens)
                data.tags.append(sentence.tags)
                data.origins.append((sentence.file, sentence.line, token_lines))
                data.documents.append((number, sentence.document if sentence.document is not None else -sentence.line))
            data.files.append({
                "file": read.sentences[0].file, "format": opts.format, "scheme": read.scheme,
                "sentences": len(read.sentences), "skipped": len(read.skipped),
            })
    return data


def _check_labels(data: LabelledData, tags: list[list[str]], model_labels: Sequence[str], mapped: bool) -> None:
    known = set(model_labels)
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for sentence, (file, line, token_lines) in zip(tags, data.origins):
        for i, tag in enumerate(sentence):
            if tag not in known:
                counts[tag] += 1
                first.setdefault(tag, f"{file}:{line + i if token_lines else line}")
    if not counts:
        return
    unknown = "; ".join(f"{tag!r} ({counts[tag]} tokens, first at {first[tag]})" for tag in sorted(counts))
    hint = "extend the label map" if mapped else "give a label map such as MISC=O or PERSON=PER"
    raise EvaluationError(
        f"labels the model does not know: {unknown}. Model labels: {', '.join(model_labels)}; {hint}"
    )


def evaluate_files(
    tagger: Tagger | str | Path,
    files: Sequence[str | Path],
    out: str | Path | None = None,
    *,
    registry_root: str | None = None,
    reader: ReaderOptions | None = None,
    scheme: str = "auto",
    on_error: str = "raise",
    label_map: str | Path | Mapping[str, str] | None = None,
    perturb: str | Sequence[str] | None = None,
    perturb_rate: float = 0.1,
    perturb_unit: str = "word",
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Tag the gold tokens of labelled ``files`` and score the tags (the ``raytag evaluate`` verb).

    ``tagger`` is a loaded tagger, an artifact directory or a registry reference
    (``name[@version|@alias]`` under ``registry_root``).  ``reader`` says how to
    read the files (:func:`reader_options`); ``None`` infers the format from each
    extension.  ``label_map`` renames file labels onto the model's
    (:func:`parse_label_map`; a dict, a JSON file or ``"PERSON=PER,MISC=O"``).
    ``perturb`` (kinds, e.g. ``"case,typos"``) adds a robustness section scoring
    perturbed copies at ``perturb_rate`` with ``seed`` (:mod:`raytag.robustness`).

    Returns the :func:`~raytag.evaluate.evaluation_report` dict plus ``files``
    (per file: format, scheme, sentences, skipped), ``model``, ``label_map``
    and, with ``perturb``, ``robustness``.  With ``out``, writes ``report.json``,
    ``report.txt`` (with the robustness table) and ``confusion.png`` there.
    Raises :class:`EvaluationError` on labels the model does not know and
    :class:`~raytag.errors.CorpusError` on malformed files.
    """
    kinds = None
    if perturb:
        from raytag.perturb import PerturbError, parse_kinds

        # Bad perturbation settings fail before any tagging is paid for.
        kinds = parse_kinds(perturb)
        if not 0.0 <= perturb_rate <= 1.0:
            raise PerturbError(f"perturbation rate must be between 0 and 1, got {perturb_rate}")
    model_ref = None
    if isinstance(tagger, (str, Path)):
        from raytag.tagger import load_tagger

        model_ref = str(tagger)
        tagger = load_tagger(tagger, registry_root)
    labels = list(tagger.labels)
    mapping = parse_label_map(label_map)
    if mapping:
        _check_map(mapping, labels)
    data = read_labelled(files, reader, scheme=scheme, on_error=on_error)
    gold = map_labels(data.tags, mapping) if mapping else data.tags
    _check_labels(data, gold, labels, bool(mapping))

    # A tagger trained with document context tags each sentence with its document's (CoNLL -DOCSTART-).
    predicted = [s.tags for s in predict_in_documents(tagger, data.tokens, data.documents, batch_size=batch_size)]
    report = evaluation_report(gold, predicted, entity=tagger.entity)
    report["files"] = data.files
    report["model"] = model_ref
    report["label_map"] = mapping or None
    robustness = None
    if kinds:
        from raytag.robustness import format_robustness, robustness_report

        robustness = robustness_report(
            tagger, list(zip(data.tokens, gold)), kinds, perturb_rate, seed,
            unit=perturb_unit, batch_size=batch_size, clean_report=report, documents=data.documents,
        )
        report["robustness"] = robustness
    if out is not None:
        out = Path(out)
        paths = save_report(report, out)
        if robustness is not None:
            paths["txt"].write_text(format_report(report) + "\n" + format_robustness(robustness), encoding="utf-8")
        plot_confusion_matrix(confusion_matrix(gold, predicted, labels), labels, out / "confusion.png")
    return report
