"""Document context for the BiLSTM tagger: each sentence read inside the words around it.

With ``model.context`` N above 0 a sentence reaches the network as up to N words of its
document before it, the sentence, and up to N words after it (same document only,
:func:`raytag.models.doc_context.sentence_contexts`). The layers do not change, the
sequences are longer. Training labels the context words with their own gold tags, so
the loss (softmax or CRF) runs over the whole window unmasked: a CRF needs one
contiguous run of real positions. Prediction decodes the whole window and keeps the
sentence's own positions (``start`` to ``start + length``).

Plain numpy, no TensorFlow. With no context every helper leaves rows as they are, so
a model trained without context encodes, predicts and decodes exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from raytag.corpus.prepared import PreparedCorpus
from raytag.models.doc_context import sentence_contexts

__all__ = ["SplitContext", "add_context", "context_starts", "own_mask"]

T = TypeVar("T")
# The items before a sentence and those after it, in reading order (words, ids or tags).
Sides = tuple[Sequence[Any], Sequence[Any]]


def add_context(rows: Sequence[Sequence[T]], contexts: Sequence[Sides] | None) -> list[list[T]]:
    """Each row with its context items before and after it (the rows as lists without contexts)."""
    if contexts is None:
        return [list(row) for row in rows]
    if len(contexts) != len(rows):
        raise ValueError(f"{len(rows)} sentences but {len(contexts)} contexts")
    return [[*left, *row, *right] for row, (left, right) in zip(rows, contexts, strict=True)]


def context_starts(contexts: Sequence[Sides] | None, count: int) -> list[int]:
    """Where each of ``count`` sentences' own items start in its window (0 without contexts)."""
    return [0] * count if contexts is None else [len(left) for left, _ in contexts]


def own_mask(starts: Sequence[int], lengths: Sequence[int], width: int) -> np.ndarray:
    """``[rows, width]`` booleans, True at each row's own positions ``start .. start + length``."""
    positions = np.arange(width)[None, :]
    first = np.asarray(starts, dtype=np.int64)[:, None]
    return (positions >= first) & (positions < first + np.asarray(lengths, dtype=np.int64)[:, None])


class SplitContext:
    """Every sentence's document context in one prepared split, as word ids, tokens and tag ids.

    The training loop gets its rows from a Ray Data shard in no promised order; each row's
    ``sid`` finds its context here, computed once over the whole split (a document's
    sentences in sid order), from the clean words whatever the loop perturbs.
    """

    def __init__(self, corpus: PreparedCorpus, split: str, size: int) -> None:
        table = corpus.table(split, columns=["sid", "document", "word_ids", "tokens", "tag_ids"])
        sids = table.column("sid").to_pylist()
        order = sorted(range(len(sids)), key=sids.__getitem__)
        document_column = table.column("document").to_pylist()
        documents = [document_column[i] for i in order]

        def contexts(column: str) -> list[Any]:
            values = table.column(column).to_pylist()
            return sentence_contexts([values[i] for i in order], documents, size)

        self.size = size
        self.word_ids, self.tokens, self.tag_ids = contexts("word_ids"), contexts("tokens"), contexts("tag_ids")
        self._index = {sids[i]: position for position, i in enumerate(order)}

    def lookup(self, sids: Sequence[int]) -> tuple[list[Any], list[Any], list[Any]]:
        """The word-id, token and tag-id contexts of the sentences with these ids."""
        try:
            found = [self._index[sid] for sid in sids]
        except KeyError as missing:
            raise KeyError(f"sentence id {missing.args[0]} is not in the split the context was read from") from None
        return ([self.word_ids[i] for i in found], [self.tokens[i] for i in found],
                [self.tag_ids[i] for i in found])
