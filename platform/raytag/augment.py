"""Noise-aware training data: seeded perturbations of training sentences, afresh every epoch.

Both model kinds' training loops call :func:`augment_sentence` on every training
sentence of an epoch; a picked sentence gets one of :mod:`raytag.perturb`'s kinds
applied to a share of its words. Perturbations change characters inside words only,
so the sentence keeps its length and its gold tags stay aligned; each loop then
re-encodes the perturbed words for its model (word and char ids, subword windows).

Which sentences are picked and how they change depends only on the seed, the epoch
and the sentence's own words, never on the order in which Ray Data hands sentences
to a worker or on the worker: every replica and every rerun sees the same data.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from raytag.config import AugmentConfig
from raytag.corpus.schemes import split_tag
from raytag.perturb import is_eligible, perturb

__all__ = ["augment_sentence", "augment_sentences", "entity_flags", "entity_tag_ids", "sentence_rng"]


def entity_tag_ids(labels: Sequence[str]) -> frozenset[int]:
    """The ids of ``labels`` that mark entity words (a type after the prefix: ``B-PER``, not ``O`` or ``NN``)."""
    return frozenset(i for i, label in enumerate(labels) if split_tag(label)[1] is not None)


def entity_flags(tag_ids: Sequence[int], entity_ids: frozenset[int]) -> list[bool]:
    """Per word, whether its gold tag id is one of ``entity_ids``."""
    return [tag in entity_ids for tag in tag_ids]


def sentence_rng(seed: int, epoch: int, words: Sequence[str], stream: str = "") -> random.Random:
    """The random draws of one training sentence in one epoch: from the seed, the epoch and the
    sentence's words only, never its place, so every worker and rerun draws the same. ``stream``
    names an independent sequence of draws (the perturbations use the unnamed one)."""
    # A digest, not hash(): str hashes are salted per process.
    text = "\x1e".join(words)
    prefix = f"{stream}\x1f" if stream else ""
    digest = hashlib.blake2b(f"{prefix}{seed}\x1f{epoch}\x1f{text}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _kind_order(config: AugmentConfig, rng: random.Random) -> list[str]:
    # The kinds in the order they are tried: a plain shuffle without weights (the draws every
    # earlier unweighted run made), else a weighted draw without replacement.
    kinds = list(config.kinds)
    if not config.weights:
        rng.shuffle(kinds)
        return kinds
    order = []
    while kinds:
        pick = rng.choices(range(len(kinds)), weights=[config.weights.get(k, 1.0) for k in kinds])[0]
        order.append(kinds.pop(pick))
    return order


def augment_sentence(words: Sequence[str], config: AugmentConfig, seed: int, epoch: int,
                     entities: Sequence[bool] | None = None) -> list[str] | None:
    """The perturbed copy of ``words`` for ``epoch``, or None when it stays as it is.

    The sentence is picked with probability ``config.sentences``; a picked sentence gets
    the first of ``config.kinds`` (in a random order, ``config.weights`` favouring some)
    that can change one of its words (``ocr`` cannot change "the"), applied to each such
    word with probability ``config.words`` (all of them at 1, with one casing for the whole
    sentence) and to one of them at least. None when no kind can change the sentence. With
    ``config.entity_words`` and ``entities`` (per word, whether it is an entity word),
    entity words are perturbed with that probability instead.
    """
    if not config.enabled or not words:
        return None
    rng = sentence_rng(seed, epoch, words)
    if rng.random() >= config.sentences:
        return None
    kinds = _kind_order(config, rng)
    unit = "sentence" if config.words >= 1.0 else "word"
    words = list(words)
    for kind in kinds:
        eligible = [i for i, word in enumerate(words) if is_eligible(word, kind)]
        if not eligible:
            continue
        if unit == "word" and config.entity_words is not None and entities is not None:
            changed = _perturb_by_role(words, eligible, entities, kind, config, rng)
        else:
            changed = perturb([words], kind, rate=1.0 if unit == "sentence" else config.words,
                              seed=rng.getrandbits(63), unit=unit)[0]
        if changed == words:
            # The draw hit no word: a picked sentence still changes, in one of its eligible words.
            at = rng.choice(eligible)
            changed[at] = perturb([[words[at]]], kind, rate=1.0, seed=rng.getrandbits(63))[0][0]
        return changed
    return None


def _perturb_by_role(words: list[str], eligible: list[int], entities: Sequence[bool], kind: str,
                     config: AugmentConfig, rng: random.Random) -> list[str]:
    # One draw per eligible word at its role's rate, then each chosen word edited on its own.
    assert config.entity_words is not None
    if len(entities) != len(words):
        raise ValueError(f"{len(words)} words but {len(entities)} entity flags")
    changed = list(words)
    for at in eligible:
        if rng.random() < (config.entity_words if entities[at] else config.words):
            changed[at] = perturb([[words[at]]], kind, rate=1.0, seed=rng.getrandbits(63))[0][0]
    return changed


def augment_sentences(
    sentences: Sequence[Sequence[str]], config: AugmentConfig, seed: int, epoch: int,
    entities: Sequence[Sequence[bool]] | None = None,
) -> list[list[str] | None]:
    """:func:`augment_sentence` for each sentence (None where a sentence stays as it is)."""
    flags = entities if entities is not None else [None] * len(sentences)
    return [augment_sentence(words, config, seed, epoch, marks) for words, marks in zip(sentences, flags, strict=True)]
