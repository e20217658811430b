"""Seeded, alignment-preserving perturbations of tokenized sentences.

Every perturbation edits the *characters* of single tokens and nothing else: the
number of sentences, the number of tokens per sentence and therefore the
alignment with gold tags never change, so the gold tags of a clean sentence
still score its perturbed copy.  That is what lets the robustness report reuse
the gold tags and what lets training-time augmentation reuse these functions.

Kinds (:data:`KINDS`):

``case``
    lowercase, UPPERCASE or Title-case a word (or, per sentence, every word).
``typos``
    one random character insertion, deletion, swap of two adjacent differing
    characters, or replacement, in words that contain a letter.
``keyboard``
    one letter replaced by a neighbouring key on a QWERTY keyboard
    (:data:`QWERTY_NEIGHBOURS`), keeping its case.
``ocr``
    one OCR confusion from :data:`OCR_CONFUSIONS` (``rn``→``m``, ``l``→``1``, …).
``truncate-entities``
    drop the last character(s) of words inside gold entities: it simulates
    clipped mentions (cut-off lines, truncated names) and shows how much a model
    leans on memorised full surface forms.  It needs the gold ``tags`` because
    only they say which words are entity words; words whose tag has no
    ``B-``/``I-``/``E-``/``S-`` type prefix (``O``, plain POS tags) are never touched.

Determinism: randomness comes from :class:`random.Random` instances seeded by a
BLAKE2 digest of ``(seed, purpose, sentence index)``, never from ``hash()``, so
the output depends only on the inputs and the seed (not on
``PYTHONHASHSEED``, the process, or how many kinds are run).  The words chosen
for perturbation depend on the seed and the sentence, not on the kind, so the
kinds of one robustness run hit the same positions wherever they are eligible.

Guarantees: no token becomes empty (an edit that would empty a token is never
chosen; truncation keeps at least one character), no whitespace is introduced
(taggers join tokens with spaces), and a perturbed eligible token always differs
from the original.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from raytag.corpus.schemes import split_tag
from raytag.errors import RaytagError

__all__ = [
    "KINDS",
    "OCR_CONFUSIONS",
    "PerturbError",
    "QWERTY_NEIGHBOURS",
    "UNITS",
    "is_eligible",
    "parse_kinds",
    "perturb",
]

KINDS = ("case", "typos", "keyboard", "ocr", "truncate-entities")
UNITS = ("word", "sentence")


class PerturbError(RaytagError):
    """An unknown perturbation kind or an invalid perturbation setting."""


# Letters only: digits and punctuation rarely get fat-fingered into words the
# tagger cares about, and a letter for a letter keeps the token's shape.
QWERTY_NEIGHBOURS: dict[str, str] = {
    "q": "wa", "w": "qeas", "e": "wrsd", "r": "etdf", "t": "ryfg", "y": "tugh",
    "u": "yihj", "i": "uojk", "o": "ipkl", "p": "ol",
    "a": "qwsz", "s": "adwezx", "d": "sferxc", "f": "dgrtcv", "g": "fhtyvb",
    "h": "gjyubn", "j": "hkuinm", "k": "jliom", "l": "kop",
    "z": "asx", "x": "zcsd", "c": "xvdf", "v": "cbfg", "b": "vngh", "n": "bmhj", "m": "njk",
}

# (seen, read as): classic confusions of OCR engines on printed Latin text.
OCR_CONFUSIONS: tuple[tuple[str, str], ...] = (
    ("rn", "m"), ("m", "rn"), ("cl", "d"), ("d", "cl"), ("vv", "w"), ("w", "vv"),
    ("l", "1"), ("1", "l"), ("I", "l"), ("l", "I"), ("O", "0"), ("0", "O"),
    ("S", "5"), ("5", "S"), ("B", "8"), ("8", "B"), ("e", "c"), ("c", "e"),
    ("g", "9"), ("Z", "2"), ("h", "b"), ("u", "v"),
)

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_CASE_MODES = ("lower", "upper", "title")


def parse_kinds(text: str | Sequence[str]) -> list[str]:
    """Parse ``"case,typos"`` (or a list of names) into known kinds, in order, without duplicates.

    ``"all"`` stands for every kind.  Raises :class:`PerturbError` naming the
    unknown kind and listing the valid ones.
    """
    parts = text.split(",") if isinstance(text, str) else list(text)
    kinds: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        names = KINDS if part == "all" else (part,)
        for name in names:
            if name not in KINDS:
                raise PerturbError(f"unknown perturbation kind {name!r}; expected one of {', '.join(KINDS)} or all")
            if name not in kinds:
                kinds.append(name)
    if not kinds:
        raise PerturbError(f"no perturbation kind given; expected one of {', '.join(KINDS)} or all")
    return kinds


def is_eligible(token: str, kind: str, tag: str | None = None) -> bool:
    """Whether ``kind`` can change ``token`` (with gold ``tag`` for ``truncate-entities``)."""
    if kind == "case":
        return token.lower() != token.upper()
    if kind == "typos":
        return any(ch.isalpha() for ch in token)
    if kind == "keyboard":
        return any(ch.lower() in QWERTY_NEIGHBOURS for ch in token)
    if kind == "ocr":
        return any(src in token for src, _ in OCR_CONFUSIONS)
    if kind == "truncate-entities":
        return tag is not None and split_tag(tag)[1] is not None and len(token) >= 2
    raise PerturbError(f"unknown perturbation kind {kind!r}; expected one of {', '.join(KINDS)}")


def perturb(
    tokens: Sequence[Sequence[str]],
    kind: str,
    *,
    rate: float = 0.1,
    seed: int = 0,
    tags: Sequence[Sequence[str]] | None = None,
    unit: str = "word",
) -> list[list[str]]:
    """Return a perturbed copy of ``tokens`` (a list of sentences, each a list of tokens).

    ``unit="word"``: each eligible word is perturbed with probability ``rate``.
    ``unit="sentence"``: each sentence is picked with probability ``rate`` and
    every eligible word in it is perturbed (``case`` then applies one mode, e.g.
    lowercase, to the whole sentence).  ``rate=0`` returns an equal copy;
    ``rate=1`` perturbs every eligible word.  ``tags`` (aligned with ``tokens``)
    is required for ``truncate-entities`` and checked for alignment whenever given.

    The same ``(tokens, kind, rate, seed, tags, unit)`` always gives the same
    output; the input is never modified.
    """
    if kind not in KINDS:
        raise PerturbError(f"unknown perturbation kind {kind!r}; expected one of {', '.join(KINDS)}")
    if unit not in UNITS:
        raise PerturbError(f"unknown perturbation unit {unit!r}; expected one of {', '.join(UNITS)}")
    if not 0.0 <= float(rate) <= 1.0:
        raise PerturbError(f"perturbation rate must be between 0 and 1, got {rate}")
    if isinstance(tokens, str) or any(isinstance(s, str) for s in tokens):
        raise TypeError("tokens must be a list of token lists, not strings")
    if kind == "truncate-entities" and tags is None:
        raise PerturbError("perturbation 'truncate-entities' needs the gold tags to know which words are entities")
    if tags is not None:
        if len(tags) != len(tokens):
            raise PerturbError(f"{len(tokens)} sentences of tokens but {len(tags)} of tags")
        for i, (words, labels) in enumerate(zip(tokens, tags)):
            if len(words) != len(labels):
                raise PerturbError(f"sentence {i}: {len(words)} tokens but {len(labels)} tags")

    out: list[list[str]] = []
    for index, words in enumerate(tokens):
        labels = tags[index] if tags is not None else [None] * len(words)
        out.append(_perturb_sentence(list(words), list(labels), kind, float(rate), seed, index, unit))
    return out


def _rng(seed: int, purpose: str, index: int) -> random.Random:
    # hash() of strings is salted per process; a digest is stable everywhere.
    digest = hashlib.blake2b(f"{seed}\x1f{purpose}\x1f{index}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _perturb_sentence(
    words: list[str], labels: list[str | None], kind: str, rate: float, seed: int, index: int, unit: str
) -> list[str]:
    # Selection draws one number per position whatever the kind, so every kind
    # of one run considers the same positions.
    select = _rng(seed, "select", index)
    if unit == "sentence":
        chosen = [select.random() < rate] * len(words)
    else:
        chosen = [select.random() < rate for _ in words]
    positions = [i for i, (w, t) in enumerate(zip(words, labels)) if chosen[i] and is_eligible(w, kind, t)]
    if not positions:
        return words
    edit = _rng(seed, kind, index)
    if kind == "case" and unit == "sentence":
        return _case_sentence(words, positions, edit)
    out = list(words)
    for i in positions:
        out[i] = _EDITS[kind](words[i], edit)
    return out


def _case_modes(token: str) -> list[str]:
    return [m for m in _CASE_MODES if _apply_case(token, m) != token]


def _apply_case(token: str, mode: str) -> str:
    if mode == "lower":
        return token.lower()
    if mode == "upper":
        return token.upper()
    # str.title() would also capitalise after apostrophes ("Mcdonald'S").
    return token[:1].upper() + token[1:].lower()


def _case_word(token: str, rng: random.Random) -> str:
    return _apply_case(token, rng.choice(_case_modes(token)))


def _case_sentence(words: list[str], positions: list[int], rng: random.Random) -> list[str]:
    # Only modes that change something: "title" on an already title-cased
    # sentence would count as perturbed while leaving it as it was.
    modes = [m for m in _CASE_MODES if any(_apply_case(words[i], m) != words[i] for i in positions)]
    mode = rng.choice(modes)
    out = list(words)
    for i in positions:
        out[i] = _apply_case(words[i], mode)
    return out


def _like(original: str, letter: str) -> str:
    return letter.upper() if original.isupper() else letter


def _typo(token: str, rng: random.Random) -> str:
    swaps = [i for i in range(len(token) - 1) if token[i] != token[i + 1]]
    ops = ["insert", "replace"]
    if len(token) >= 2:  # deleting the only character would empty the token
        ops.append("delete")
    if swaps:
        ops.append("swap")
    op = rng.choice(ops)
    if op == "insert":
        at = rng.randint(0, len(token))
        neighbour = token[at - 1] if at > 0 else token[0]
        return token[:at] + _like(neighbour, rng.choice(_LETTERS)) + token[at:]
    if op == "delete":
        at = rng.randrange(len(token))
        return token[:at] + token[at + 1 :]
    if op == "swap":
        at = rng.choice(swaps)
        return token[:at] + token[at + 1] + token[at] + token[at + 2 :]
    at = rng.randrange(len(token))
    letter = rng.choice([c for c in _LETTERS if c != token[at].lower()])
    return token[:at] + _like(token[at], letter) + token[at + 1 :]


def _keyboard(token: str, rng: random.Random) -> str:
    at = rng.choice([i for i, ch in enumerate(token) if ch.lower() in QWERTY_NEIGHBOURS])
    letter = rng.choice(QWERTY_NEIGHBOURS[token[at].lower()])
    return token[:at] + _like(token[at], letter) + token[at + 1 :]


def _ocr(token: str, rng: random.Random) -> str:
    # Every (position, confusion) that applies, in a fixed order, then one at random.
    options = [
        (at, src, dst)
        for src, dst in OCR_CONFUSIONS
        for at in range(len(token) - len(src) + 1)
        if token.startswith(src, at)
    ]
    at, src, dst = rng.choice(options)
    return token[:at] + dst + token[at + len(src) :]


def _truncate(token: str, rng: random.Random) -> str:
    # Up to a third of the word, at least one character, never all of it.
    cut = min(rng.randint(1, max(1, len(token) // 3)), len(token) - 1)
    return token[: len(token) - cut]


_EDITS = {
    "case": _case_word,
    "typos": _typo,
    "keyboard": _keyboard,
    "ocr": _ocr,
    "truncate-entities": _truncate,
}
