"""Batches for the BiLSTM tagger: padded model inputs and length-bucketed batch order.

Plain numpy, no TensorFlow: :mod:`raytag.models.bilstm` re-exports both functions
beside the model they feed. Id 0 is padding everywhere, so the model's mask hides
every padded position.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from raytag.corpus.vocab import PAD_ID, Vocabulary
from raytag.models.casing import casing_ids
from raytag.models.word_pieces import WordPieces

# Sentences are sorted by length inside pools of this many batches: large enough that
# batches are nearly uniform in length, small enough that epochs still differ.
BUCKET_POOL_BATCHES = 50

# Key of the [B, T] float mask in a training batch's clean originals (stability training):
# 1 where the consistency term between the clean and the perturbed sentence counts.
CLEAN_MASK = "changed"


def _pad(rows: Sequence[Sequence[int]], width: int, what: str) -> np.ndarray:
    out = np.zeros((len(rows), width), dtype=np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = np.asarray(row, dtype=np.int64).reshape(-1)
    if (out < 0).any():
        raise ValueError(f"{what} contain negative ids")
    return out


def encode_batch(
    word_ids: Sequence[Sequence[int]],
    tokens: Sequence[Sequence[str]] | None,
    chars: Vocabulary | None,
    max_word_length: int,
    tag_ids: Sequence[Sequence[int]] | None = None,
    casing: bool = False,
    pieces: WordPieces | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Pad one batch to its longest sentence.

    Returns ``({"word_ids": [B, T]} [+ "char_ids": [B, T, max_word_length]] [+ "casing_ids": [B, T]]
    [+ "piece_ids": [B, T, pieces.max_pieces]], labels [B, T] | None)``, all int32 with 0 at
    padded positions. ``char_ids`` is built only when ``chars`` is given, ``casing_ids`` only
    with ``casing``, ``piece_ids`` only with ``pieces``; they read the tokens as written
    (``tokens`` is then required). Characters past ``max_word_length`` are dropped,
    unknown ones map to the OOV id. Padded label positions hold 0, a real label id: they are
    ignored because the model masks every position where ``word_ids == 0``, which is also
    the token mask to use outside Keras.
    """
    if not len(word_ids):
        raise ValueError("cannot encode an empty batch")
    if max_word_length < 1:
        raise ValueError(f"max_word_length must be >= 1, got {max_word_length}")
    lengths = [len(sentence) for sentence in word_ids]
    for i, length in enumerate(lengths):
        if length == 0:
            # A fully masked row gives no prediction and an empty sequence for cuDNN.
            raise ValueError(f"sentence {i} of the batch has no tokens")
    width = max(lengths)
    words = _pad(word_ids, width, "word ids")
    real = np.arange(width)[None, :] < np.asarray(lengths)[:, None]
    if (words[real] == PAD_ID).any():
        raise ValueError(f"word id {PAD_ID} is padding and cannot be a real token")
    inputs = {"word_ids": words}

    if chars is not None or casing or pieces is not None:
        if tokens is None:
            raise ValueError("tokens are needed to build char, casing and piece ids")
        if len(tokens) != len(word_ids):
            raise ValueError(f"{len(tokens)} token sentences for {len(word_ids)} word-id sentences")
        for i, sentence in enumerate(tokens):
            if len(sentence) != lengths[i]:
                raise ValueError(f"sentence {i}: {len(sentence)} tokens but {lengths[i]} word ids")
    if casing:
        assert tokens is not None
        inputs["casing_ids"] = _pad([casing_ids(sentence) for sentence in tokens], width, "casing ids")
    if chars is not None:
        assert tokens is not None
        char_ids = np.zeros((len(lengths), width, max_word_length), dtype=np.int32)
        cache: dict[str, list[int]] = {}
        for i, sentence in enumerate(tokens):
            for j, token in enumerate(sentence):
                ids = cache.get(token)
                if ids is None:
                    ids = cache[token] = [chars.id(c) for c in token[:max_word_length]]
                char_ids[i, j, : len(ids)] = ids
        inputs["char_ids"] = char_ids
    if pieces is not None:
        assert tokens is not None
        piece_ids = np.zeros((len(lengths), width, pieces.max_pieces), dtype=np.int32)
        for i, sentence in enumerate(tokens):
            for j, token in enumerate(sentence):
                ids = pieces.ids(token)
                piece_ids[i, j, : len(ids)] = ids
        inputs["piece_ids"] = piece_ids

    labels = None
    if tag_ids is not None:
        if len(tag_ids) != len(word_ids):
            raise ValueError(f"{len(tag_ids)} tag sentences for {len(word_ids)} word-id sentences")
        for i, tags in enumerate(tag_ids):
            if len(tags) != lengths[i]:
                raise ValueError(f"sentence {i}: {len(tags)} tags but {lengths[i]} word ids")
        labels = _pad(tag_ids, width, "tag ids")
    return inputs, labels


def bucket_batches(lengths: Sequence[int], batch_size: int, seed: int, shuffle: bool = True) -> list[np.ndarray]:
    """Split ``range(len(lengths))`` into batches of similar sentence length.

    With ``shuffle``: a seeded permutation is cut into pools of ``BUCKET_POOL_BATCHES``
    batches, each pool is sorted by length and cut into batches, and the batch order is
    shuffled; the same seed gives the same batches. Without: one global sort by length,
    shortest first (``seed`` unused), for evaluation. Every index appears exactly once;
    only the last batch cut may be smaller than ``batch_size``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    sizes = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if (sizes < 0).any():
        raise ValueError("lengths must be non-negative")
    if not len(sizes):
        return []
    if not shuffle:
        order = np.argsort(sizes, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sizes))
    pool = batch_size * BUCKET_POOL_BATCHES
    # Pools are whole numbers of batches, so only the very last batch can be short.
    pools = np.split(order, range(pool, len(order), pool))
    order = np.concatenate([chunk[np.argsort(sizes[chunk], kind="stable")] for chunk in pools])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
