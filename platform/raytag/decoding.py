"""Constrained decoding of tagger outputs and entity spans over raw text.

Everything here is plain numpy/Python so it can run inside a serving replica
or a batch-inference worker without any framework installed.

IOB2 conventions: ``O`` is outside, ``B-X`` begins an entity of type ``X`` and
``I-X`` continues it.  A tag set is treated as an entity scheme only when it
contains ``O`` and at least one ``B-``/``I-`` label (see
:func:`is_entity_scheme`); anything else (POS, chunk-free tag sets) is "plain"
and decodes with a per-token argmax.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "EntitySpan",
    "TransitionScores",
    "decode",
    "is_entity_scheme",
    "offsets_for_tokens",
    "spans_from_tags",
    "tokenize_with_offsets",
    "transition_mask",
    "viterbi",
]

# Softmax outputs can underflow to exactly 0; log(0) = -inf would make a
# token's only plausible tag indistinguishable from an impossible transition.
_EPS = 1e-12

_PREFIXED = re.compile(r"^([BI])-(.+)$")


def _split_tag(tag: str) -> tuple[str | None, str | None]:
    """Return (prefix, type) for ``B-X``/``I-X`` tags, else (None, None)."""
    m = _PREFIXED.match(tag)
    if m is None:
        return None, None
    return m.group(1), m.group(2)


def is_entity_scheme(labels: Sequence[str]) -> bool:
    """True when ``labels`` look like IOB2 entity tags (``O`` plus ``B-X``/``I-X``)."""
    labels = list(labels)
    return "O" in labels and any(_split_tag(t)[0] is not None for t in labels)


def transition_mask(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Allowed IOB2 transitions ``allowed[prev, cur]`` and allowed first tags ``start``.

    ``I-X`` may only follow ``B-X`` or ``I-X`` and may not start a sentence;
    every other transition is allowed.  A plain tag set allows everything.
    """
    labels = list(labels)
    n = len(labels)
    allowed = np.ones((n, n), dtype=bool)
    start = np.ones(n, dtype=bool)
    if not is_entity_scheme(labels):
        return allowed, start
    parsed = [_split_tag(t) for t in labels]
    for cur, (prefix, etype) in enumerate(parsed):
        if prefix != "I":
            continue
        start[cur] = False
        allowed[:, cur] = [p_type == etype for _, p_type in parsed]
    return allowed, start


def viterbi(
    log_probs: np.ndarray,
    allowed: np.ndarray,
    start: np.ndarray,
    transitions: TransitionScores | None = None,
) -> np.ndarray:
    """Highest-scoring tag path for one sentence under hard transition constraints.

    ``log_probs`` is ``[T, n]``; the path score is the sum of the chosen tags'
    log-probabilities (or a CRF's emission scores), plus, with ``transitions``,
    the learned scores of its first tag, every tag pair and its last tag.
    Disallowed transitions score ``-inf``.  Ties go to the lowest tag id
    (``np.argmax`` keeps the first maximum), so the result is deterministic.
    Returns an ``int64`` array of length ``T``.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    allowed = np.asarray(allowed, dtype=bool)
    start = np.asarray(start, dtype=bool)
    if log_probs.ndim != 2:
        raise ValueError(f"log_probs must be 2-D [T, n], got shape {log_probs.shape}")
    T, n = log_probs.shape
    if allowed.shape != (n, n) or start.shape != (n,):
        raise ValueError(
            f"constraint shapes {allowed.shape}/{start.shape} do not match {n} tags"
        )
    if transitions is not None and transitions.pairwise.shape != (n, n):
        raise ValueError(f"transition scores of shape {transitions.pairwise.shape} do not match {n} tags")
    if T == 0:
        return np.zeros(0, dtype=np.int64)

    pairwise = transitions.pairwise if transitions is not None else 0.0
    trans = np.where(allowed, pairwise, -np.inf)
    first = log_probs[0] + (transitions.start if transitions is not None else 0.0)
    score = np.where(start, first, -np.inf)
    backptr = np.zeros((T, n), dtype=np.int64)
    for t in range(1, T):
        cand = score[:, None] + trans  # [prev, cur]
        backptr[t] = np.argmax(cand, axis=0)
        score = cand[backptr[t], np.arange(n)] + log_probs[t]
    if transitions is not None:
        score = score + transitions.end

    path = np.empty(T, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(T - 1, 0, -1):
        path[t - 1] = backptr[t, path[t]]
    return path


@dataclass(frozen=True)
class TransitionScores:
    """A linear-chain CRF's learned scores: ``pairwise[prev, cur]``, ``start[first]``, ``end[last]``."""

    pairwise: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __post_init__(self) -> None:
        for name in ("pairwise", "start", "end"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        n = self.start.shape[0] if self.start.ndim == 1 else -1
        if self.pairwise.shape != (n, n) or self.end.shape != (n,):
            raise ValueError(
                f"transition scores must be [n, n], [n], [n]; got {self.pairwise.shape}, "
                f"{self.start.shape}, {self.end.shape}"
            )


def decode(
    probs: np.ndarray,
    lengths: Sequence[int],
    labels: Sequence[str],
    constrained: bool = True,
    transitions: TransitionScores | None = None,
) -> list[list[int]]:
    """Decode a padded batch ``[B, T, n]`` of per-token outputs into tag-id paths.

    Each path is truncated to its sentence length.  Without ``transitions``,
    ``probs`` are probabilities: IOB2 tag sets use :func:`viterbi` unless
    ``constrained`` is False; plain tag sets always use argmax (there is
    nothing to constrain).  With ``transitions`` (a CRF output layer),
    ``probs`` are emission scores and every tag set is decoded with
    :func:`viterbi` over the learned transition scores, under the IOB2
    constraints when ``constrained``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = list(labels)
    lengths = [int(x) for x in lengths]
    if probs.ndim != 3:
        raise ValueError(f"probs must be 3-D [batch, time, tags], got shape {probs.shape}")
    B, T, n = probs.shape
    if n != len(labels):
        raise ValueError(f"probs has {n} tag columns but {len(labels)} labels were given")
    if len(lengths) != B:
        raise ValueError(f"got {len(lengths)} lengths for a batch of {B} sentences")
    for i, length in enumerate(lengths):
        if not 0 <= length <= T:
            raise ValueError(f"length {length} of sentence {i} is outside [0, {T}]")

    if transitions is not None:
        if constrained:
            allowed, start = transition_mask(labels)
        else:
            allowed, start = np.ones((n, n), dtype=bool), np.ones(n, dtype=bool)
        return [viterbi(probs[i, :length], allowed, start, transitions).tolist() for i, length in enumerate(lengths)]

    if not constrained or not is_entity_scheme(labels):
        ids = probs.argmax(axis=-1)
        return [ids[i, :length].tolist() for i, length in enumerate(lengths)]

    allowed, start = transition_mask(labels)
    log_probs = np.log(np.clip(probs, _EPS, None))
    return [
        viterbi(log_probs[i, :length], allowed, start).tolist()
        for i, length in enumerate(lengths)
    ]


@dataclass(frozen=True)
class EntitySpan:
    """An entity in raw text, shaped like Hugging Face's ``aggregation_strategy="simple"``."""

    entity_group: str
    score: float
    word: str
    start: int
    end: int

    def to_dict(self) -> dict:
        """Plain dict ``{entity_group, score, word, start, end}``."""
        # By hand: dataclasses.asdict deep-copies field by field, which shows on the serving path.
        return {"entity_group": self.entity_group, "score": self.score, "word": self.word,
                "start": self.start, "end": self.end}


def spans_from_tags(
    tags: Sequence[str],
    offsets: Sequence[tuple[int, int]],
    text: str,
    scores: Sequence[float] | None = None,
) -> list[EntitySpan]:
    """Group per-token IOB2 tags into entity spans with character offsets into ``text``.

    ``B-X`` opens an entity; ``I-X`` extends an open entity of type ``X``.  A
    stray ``I-X`` (after ``O`` or another type) opens a new entity, matching
    conlleval's lenient reading.  Any tag that is not ``B-``/``I-`` closes the
    open entity.  ``score`` is the mean token score (1.0 without scores).
    """
    tags = list(tags)
    offsets = [(int(s), int(e)) for s, e in offsets]
    if len(offsets) != len(tags):
        raise ValueError(f"got {len(tags)} tags but {len(offsets)} offsets")
    if scores is not None:
        scores = [float(s) for s in scores]
        if len(scores) != len(tags):
            raise ValueError(f"got {len(tags)} tags but {len(scores)} scores")

    spans: list[EntitySpan] = []
    current: tuple[str, list[int]] | None = None  # (type, token indices)

    def close() -> None:
        if current is None:
            return
        etype, idx = current
        s, e = offsets[idx[0]][0], offsets[idx[-1]][1]
        score = float(np.mean([scores[i] for i in idx])) if scores is not None else 1.0
        spans.append(EntitySpan(etype, score, text[s:e], s, e))

    for i, tag in enumerate(tags):
        prefix, etype = _split_tag(tag)
        if prefix == "I" and current is not None and current[0] == etype:
            current[1].append(i)
            continue
        close()
        current = (etype, [i]) if prefix is not None else None
    close()
    return spans


# Tokenizer rules, tried in order at each position (see tokenize_with_offsets).
# _MARK stands in for combining marks and joiners in a same-length "shadow"
# copy of the text, so a regex over \w still keeps words such as decomposed
# "é" or Devanagari syllables whole while offsets stay valid for the original.
_MARK = "\ue000"
_TITLES = "Mrs|Mr|Ms|Dr|Prof|Jr|Sr|St|Inc|Ltd|Corp|Co|vs"
_TOKEN = re.compile(
    rf"""
      (?:[^\W\d_]{_MARK}*\.){{2,}}                # initialisms: U.S., e.g.
    | (?<!\w)(?:{_TITLES})\.                      # common titles/abbreviations
    | \d+(?:[.,:/]\d+)+                           # 3.5  1,000  10:30  12/31
    | \w[\w{_MARK}]*(?:[-'\u2019]\w[\w{_MARK}]*)* # words, hyphenated, with apostrophes
    | \.\.\.                                      # ellipsis
    | [^\w\s{_MARK}]{_MARK}*                      # any other symbol, one at a time
    | \S                                          # a stray mark after a space
    """,
    re.VERBOSE,
)
# Penn-Treebank/CoNLL-style clitics, split so "Germany's" tags as "Germany" + "'s".
_CLITIC = re.compile(r"(?:n['\u2019]t|['\u2019](?:s|re|ve|ll|d|m))$", re.IGNORECASE)
_JOINERS = {"\u200c", "\u200d"}
_INVISIBLE_SPACES = {"\u200b", "\u2060", "\ufeff"}


def _shadow(text: str) -> str:
    if text.isascii():
        return text
    out = []
    for ch in text:
        if ch in _JOINERS or unicodedata.category(ch).startswith("M"):
            out.append(_MARK)
        elif ch in _INVISIBLE_SPACES:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def tokenize_with_offsets(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Split raw text into word tokens with ``(start, end)`` character offsets.

    Rules (CoNLL/Penn-Treebank flavoured, good enough for English NER input):

    * whitespace (any Unicode space, plus zero-width spaces) separates tokens;
    * punctuation and symbols are single tokens: ``"Berkeley, California."`` →
      ``Berkeley`` ``,`` ``California`` ``.`` (``...`` stays one token);
    * dotted initialisms keep their dots (``U.S.``, ``e.g.``), as do a few
      titles (``Mr.``, ``Dr.``, ``Inc.``, ...);
    * numbers keep inner separators (``3.5``, ``1,000``, ``10:30``);
    * hyphenated words stay whole (``state-of-the-art``, ``1996-08-22``) and
      inner apostrophes stay (``O'Neil``), except English clitics, which are
      split off: ``don't`` → ``do`` ``n't``, ``Germany's`` → ``Germany`` ``'s``;
    * combining marks and joiners stay attached to their base character.

    ``text[start:end] == token`` for every token.
    """
    tokens: list[str] = []
    offsets: list[tuple[int, int]] = []
    for m in _TOKEN.finditer(_shadow(text)):
        s, e = m.span()
        clitic = _CLITIC.search(m.group())
        if clitic is not None and clitic.start() > 0 and m.group()[0].isalnum():
            cut = s + clitic.start()
            pieces = [(s, cut), (cut, e)]
        else:
            pieces = [(s, e)]
        for ps, pe in pieces:
            tokens.append(text[ps:pe])
            offsets.append((ps, pe))
    return tokens, offsets


def offsets_for_tokens(
    tokens: Sequence[str], sep: str = " "
) -> tuple[str, list[tuple[int, int]]]:
    """Join pre-tokenized ``tokens`` with ``sep`` and return ``(text, offsets)``."""
    offsets: list[tuple[int, int]] = []
    pos = 0
    for i, tok in enumerate(tokens):
        if i:
            pos += len(sep)
        offsets.append((pos, pos + len(tok)))
        pos += len(tok)
    return sep.join(tokens), offsets
