"""Tag schemes: detection, validation and conversion to IOB2.

Entity tag sets are read in one of ``iob1``, ``iob2`` or ``bioes`` and always
stored as IOB2, the scheme seqeval and the decoders downstream expect. Plain tag
sets (POS, anything without ``O`` + prefixed tags) are kept as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

ENTITY_SCHEMES = ("iob1", "iob2", "bioes")
SCHEMES = (*ENTITY_SCHEMES, "plain")

_PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES"}
_ENTITY_TAG = re.compile(r"^([BIES])-(\S+)$")


def split_tag(tag: str) -> tuple[str, str | None]:
    """Split ``B-PER`` into ``("B", "PER")``; ``O`` gives ``("O", None)``.

    Anything else gives ``("", None)``: the caller decides whether that is an error.
    """
    if tag == "O":
        return "O", None
    match = _ENTITY_TAG.match(tag)
    if match is None:
        return "", None
    return match.group(1), match.group(2)


def tag_problem(tag: str, scheme: str) -> str | None:
    """Why ``tag`` is not a valid tag under ``scheme``, or ``None`` when it is."""
    if tag == "" or tag.isspace():
        return "empty tag"
    if scheme == "plain":
        return None
    prefix, kind = split_tag(tag)
    if prefix == "O":
        return None
    if prefix and prefix in _PREFIXES[scheme]:
        return None
    allowed = "/".join(f"{p}-" for p in _PREFIXES[scheme])
    if tag.endswith("-") and tag[:-1] in _PREFIXES[scheme]:
        return f"invalid tag {tag!r}: prefix without an entity type"
    return f"invalid tag {tag!r} under scheme {scheme}: expected O or {allowed} followed by a type"


def transition_problem(prev: str | None, tag: str, scheme: str) -> str | None:
    """Why ``tag`` cannot follow ``prev`` (``None`` = sentence start) under ``scheme``."""
    if scheme in ("plain", "iob1"):
        # IOB1 lets I- open an entity, so any predecessor is legal.
        return None
    prefix, kind = split_tag(tag)
    prev_prefix, prev_kind = split_tag(prev) if prev is not None else ("O", None)
    continues = prev_prefix in ("B", "I") and prev_kind == kind
    if prefix in ("I", "E") and not continues:
        after = "the sentence start" if prev is None else repr(prev)
        return f"{tag!r} cannot follow {after} under scheme {scheme}"
    if scheme == "bioes" and prev_prefix in ("B", "I") and not (prefix in ("I", "E") and kind == prev_kind):
        return f"{prev!r} must be followed by I-{prev_kind} or E-{prev_kind} under scheme bioes, got {tag!r}"
    return None


def sentence_problem(tags: Sequence[str], scheme: str) -> tuple[int, str] | None:
    """The first invalid tag or transition in a sentence as ``(token index, reason)``."""
    prev: str | None = None
    for i, tag in enumerate(tags):
        reason = tag_problem(tag, scheme) or transition_problem(prev, tag, scheme)
        if reason is not None:
            return i, reason
        prev = tag
    if scheme == "bioes" and tags and split_tag(tags[-1])[0] in ("B", "I"):
        return len(tags) - 1, f"entity {tags[-1]!r} is left open at the end of the sentence under scheme bioes"
    return None


def to_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    """Convert a valid sentence from ``scheme`` to IOB2 (plain sets are returned as is)."""
    if scheme in ("plain", "iob2"):
        return list(tags)
    out: list[str] = []
    prev_prefix, prev_kind = "O", None
    for tag in tags:
        prefix, kind = split_tag(tag)
        if scheme == "bioes":
            prefix = {"E": "I", "S": "B"}.get(prefix, prefix)
        elif prefix == "I" and not (prev_prefix in ("B", "I") and prev_kind == kind):
            prefix = "B"
        out.append("O" if prefix == "O" else f"{prefix}-{kind}")
        prev_prefix, prev_kind = prefix, kind
    return out


@dataclass
class SchemeEvidence:
    """What scheme detection needs to know about a corpus, mergeable across shards."""

    tags: set[str] = field(default_factory=set)
    # An I- tag that opens an entity is legal only in IOB1.
    opening_i: bool = False

    def add(self, tags: Sequence[str]) -> None:
        self.tags.update(tags)
        prev_prefix, prev_kind = "O", None
        for tag in tags:
            prefix, kind = split_tag(tag)
            if prefix == "I" and not (prev_prefix in ("B", "I") and prev_kind == kind):
                self.opening_i = True
            prev_prefix, prev_kind = prefix, kind

    def merge(self, other: SchemeEvidence) -> SchemeEvidence:
        return SchemeEvidence(self.tags | other.tags, self.opening_i or other.opening_i)


def detect_scheme(evidence: SchemeEvidence) -> str:
    """Pick ``iob1``, ``iob2``, ``bioes`` or ``plain`` for a corpus.

    A tag set is an entity set when it has ``O`` and at least one well-formed
    prefixed tag; malformed tags in such a set are then reported as errors rather
    than turning the whole set into a plain one.
    """
    prefixes = {split_tag(t)[0] for t in evidence.tags}
    if "O" not in prefixes or not prefixes & set("BIES"):
        return "plain"
    if prefixes & set("ES"):
        return "bioes"
    return "iob1" if evidence.opening_i else "iob2"


def detect_scheme_of(sentences: Iterable[Sequence[str]]) -> str:
    """Convenience wrapper of :func:`detect_scheme` over tag sequences."""
    evidence = SchemeEvidence()
    for tags in sentences:
        evidence.add(tags)
    return detect_scheme(evidence)


def label_order(tags: Iterable[str]) -> list[str]:
    """A stable label order: ``O`` first, then entity tags grouped by type, else sorted."""
    unique = set(tags)

    def key(tag: str) -> tuple[int, str, str]:
        prefix, kind = split_tag(tag)
        if prefix == "O":
            return (0, "", "")
        if kind is not None:
            return (1, kind, prefix)
        return (2, tag, "")

    return sorted(unique, key=key)
