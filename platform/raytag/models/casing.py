"""Word casing classes: the capitalisation signal an uncased encoder's tokenizer throws away.

Casing is the strongest single cue for names in English news text, and the bundled
encoder lowercases everything before the model sees it. Transformer taggers with
``model.casing: true`` feed each subword its word's class as the BERT token type
(``token_type_ids``), so the encoder's own attention can use it; class 0 is what a
plain tokenizer sends (lowercase, punctuation, special tokens), so a model loaded by
a tool that knows nothing of casing still runs, just without the signal.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CASING_CLASSES", "casing_class", "casing_classes"]

# Index = the class id. "other" must stay 0: it is the token type every tokenizer sends.
CASING_CLASSES = ("other", "title", "upper", "mixed", "numeric")
OTHER, TITLE, UPPER, MIXED, NUMERIC = range(len(CASING_CLASSES))


def casing_class(word: str) -> int:
    """The casing class of one word as written.

    ``title``: first letter upper, no later upper letter ("Berlin", "I");
    ``upper``: two or more letters, all upper ("EU", "NEW-YORK");
    ``mixed``: an upper letter after a lower one or after the first letter ("iPhone", "McDonald");
    ``numeric``: contains a digit ("1996", "3-0", "B2B");
    ``other``: all lowercase, punctuation, empty.
    """
    if any(c.isdigit() for c in word):
        return NUMERIC
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return OTHER
    uppers = [c.isupper() for c in letters]
    if not any(uppers):
        return OTHER
    if all(uppers):
        return UPPER if len(letters) > 1 else TITLE
    if uppers[0] and not any(uppers[1:]):
        return TITLE
    return MIXED


def casing_classes(words: Sequence[str]) -> list[int]:
    return [casing_class(w) for w in words]
