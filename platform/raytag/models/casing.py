"""Casing classes of words: a feature that survives lowercased vocabularies and unknown words.

A word's class comes from the word exactly as written (never from its vocabulary
form), so training, evaluation and the Tagger compute it identically from raw tokens.
Plain Python: the Tagger, batch prediction and the training loop all use it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CASING_CLASSES", "NUM_CASING_IDS", "casing_class", "casing_ids"]

# Id 0 is padding, as for words and characters; a real word's id is 1 + its index here.
CASING_CLASSES: tuple[str, ...] = (
    "lower",          # the, of
    "upper",          # EU, NATO, I
    "title",          # Germany, Obama
    "mixed",          # iPhone, McDonald
    "numeric",        # 1996, 42
    "number",         # 1,000  3.5  1996-08-22  10:30
    "alnum_digit",    # G7, 2nd, B-52: letters and digits
    "punctuation",    # , . -- (
    "other",          # uncased scripts, whitespace, empty tokens
)
NUM_CASING_IDS = len(CASING_CLASSES) + 1
_ID = {name: i + 1 for i, name in enumerate(CASING_CLASSES)}


def casing_class(token: str) -> str:
    """The casing class of ``token`` as written (see :data:`CASING_CLASSES`)."""
    if not token:
        return "other"
    letters = [c for c in token if c.isalpha()]
    digits = sum(c.isdigit() for c in token)
    if digits == len(token):
        return "numeric"
    if not letters:
        if digits:
            return "number"
        return "punctuation" if all(not c.isalnum() and not c.isspace() for c in token) else "other"
    if digits:
        return "alnum_digit"
    cased = [c for c in letters if c.lower() != c.upper()]
    if not cased:
        return "other"  # uncased scripts (CJK, Arabic, ...): no casing to tell apart
    if all(c.islower() for c in cased):
        return "lower"
    if all(c.isupper() for c in cased):
        # A single capital ("I", "A") is upper; so is "U.S." and "AT&T".
        return "upper"
    if cased[0].isupper() and all(c.islower() for c in cased[1:]):
        return "title"
    return "mixed"


def casing_ids(tokens: Sequence[str]) -> list[int]:
    """One casing id (>= 1) per token."""
    return [_ID[casing_class(t)] for t in tokens]
