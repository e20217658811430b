"""Casing classes of words: a feature that survives lowercased vocabularies and unknown words.

A word's class comes from the word exactly as written (never from its vocabulary
form), so training, evaluation and the Tagger compute it identically from raw tokens.
Plain Python: the Tagger, batch prediction and the training loop all use it.

BiLSTM taggers embed the full class (:func:`casing_ids`). Transformer taggers with
``model.casing`` feed a coarser class as the BERT token type (:func:`token_type`): the
bundled encoder's tokenizer lowercases everything, and the token type gives the
encoder's own attention the capitalisation back. Type 0 is what a plain tokenizer
sends (lowercase, punctuation, special tokens), so a model loaded by a tool that
knows nothing of casing still runs, just without the signal.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CASING_CLASSES", "NUM_CASING_IDS", "TOKEN_TYPES", "casing_class", "casing_ids", "token_type"]

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


# Transformer token types. Index = the type id; "other" must stay 0, the type every tokenizer sends.
TOKEN_TYPES: tuple[str, ...] = ("other", "title", "upper", "mixed", "numeric")
_TYPE = {"lower": 0, "punctuation": 0, "other": 0, "title": 1, "upper": 2, "mixed": 3,
         "numeric": 4, "number": 4, "alnum_digit": 4}


def token_type(word: str) -> int:
    """The token type of ``word``: its casing class folded into :data:`TOKEN_TYPES`.

    A lone capital ("I", "A") is ``title``: at the start of a sentence every word looks like that.
    """
    kind = casing_class(word)
    if kind == "upper" and sum(c.lower() != c.upper() for c in word) == 1:
        return 1
    return _TYPE[kind]
