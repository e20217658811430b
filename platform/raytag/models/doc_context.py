"""Document context for subword windows: the words around a sentence in its document.

A transformer tags a sentence better when it also sees the sentences around it
(FLERT, Schweter & Akbik 2020; the "maximal document context" of Devlin et al. 2019).
With ``model.context`` words, each window of a sentence gains, where the sentence
starts or ends inside that window, up to that many words of the same document on
that side, as many whole words as the window's ``max_length`` leaves room for.
Context subwords are labelled ``-100`` and never read for a prediction, so the
sentence's own words are windowed, labelled and predicted exactly as without it.

Context is counted in words, not sentences: a window's room is counted in subwords,
and CoNLL sentences run from one word (a headline, a dateline) to over a hundred, so
a number of sentences would be either nothing or far more than a window holds.

A document is a run of sentences sharing a key; which sentences share one is the
reader's business (CoNLL: ``-DOCSTART-`` lines, see :mod:`raytag.corpus.readers`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

__all__ = ["Context", "ContextPieces", "context_pieces", "fit_context", "flatten_documents", "sentence_contexts"]

# The words before a sentence and the words after it, both in reading order.
Context = tuple[Sequence[str], Sequence[str]]
# The same words with their subword ids: (word, pieces) pairs.
ContextPieces = tuple[list[tuple[str, list[int]]], list[tuple[str, list[int]]]]


def sentence_contexts(sentences: Sequence[Sequence[str]], documents: Sequence[Hashable],
                      size: int) -> list[tuple[list[str], list[str]]]:
    """Up to ``size`` words before and after each sentence within its document.

    ``documents[i]`` is sentence ``i``'s document key; a document's sentences are taken
    in the order they come in ``sentences`` (they need not be adjacent). Context runs
    across sentence boundaries inside the document and stops at its edges.
    """
    if size < 0:
        raise ValueError(f"context must be >= 0 words, got {size}")
    if len(documents) != len(sentences):
        raise ValueError(f"{len(sentences)} sentences but {len(documents)} document keys")
    out: list[tuple[list[str], list[str]]] = [([], []) for _ in sentences]
    if size == 0:
        return out
    members: dict[Hashable, list[int]] = {}
    for index, key in enumerate(documents):
        members.setdefault(key, []).append(index)
    for indices in members.values():
        if len(indices) == 1:
            continue
        words = [word for i in indices for word in sentences[i]]
        start = 0
        for i in indices:
            end = start + len(sentences[i])
            out[i] = (words[max(0, start - size) : start], words[end : end + size])
            start = end
    return out


def flatten_documents(documents: Sequence[Sequence[Sequence[str]]]) -> tuple[list[list[str]], list[int]]:
    """Documents (lists of token lists) → their sentences in order, and each one's document index."""
    if isinstance(documents, str):
        raise TypeError("expected a list of documents, each a list of token lists")
    sentences: list[list[str]] = []
    keys: list[int] = []
    for index, document in enumerate(documents):
        if isinstance(document, str) or any(isinstance(s, str) for s in document):
            raise TypeError(f"document {index} must be a list of token lists, not text")
        for sentence in document:
            if not all(isinstance(token, str) for token in sentence):
                raise TypeError(f"document {index} holds a sentence that is not a list of token strings")
            sentences.append(list(sentence))
            keys.append(index)
    return sentences, keys


def context_pieces(tokenizer: Any, contexts: Sequence[Context]) -> list[ContextPieces]:
    """The subword ids of every context word, tokenizing each distinct word once.

    Words are tokenized as pre-split words, as the sentences are, so a word has the
    same pieces in context as in its own sentence. A word the tokenizer maps to no
    subword becomes the unknown token (dropped when the tokenizer has none).
    """
    distinct = sorted({word for left, right in contexts for word in (*left, *right)})
    pieces: dict[str, list[int]] = {word: [] for word in distinct}
    if distinct:
        encoded = tokenizer([distinct], is_split_into_words=True, add_special_tokens=False, truncation=False,
                            verbose=False)
        for token, word in zip(encoded["input_ids"][0], encoded.word_ids(0), strict=True):
            if word is not None:
                pieces[distinct[word]].append(token)
        if tokenizer.unk_token_id is not None:
            for word in distinct:
                pieces[word] = pieces[word] or [tokenizer.unk_token_id]

    def side(words: Sequence[str]) -> list[tuple[str, list[int]]]:
        return [(word, pieces[word]) for word in words if pieces[word]]

    return [(side(left), side(right)) for left, right in contexts]


def fit_context(left: Sequence[int], right: Sequence[int], room: int) -> tuple[int, int]:
    """How many context words fit on each side in ``room`` subwords.

    ``left`` and ``right`` are the words' subword counts in reading order (the nearest
    left word is the last). Whole words only, nearest first, one word a side in turn
    (left first), so both sides grow evenly until a side's next word does not fit.
    """
    n_left = n_right = 0
    grew = True
    while grew:
        grew = False
        if n_left < len(left) and left[len(left) - 1 - n_left] <= room:
            room -= left[len(left) - 1 - n_left]
            n_left += 1
            grew = True
        if n_right < len(right) and right[n_right] <= room:
            room -= right[n_right]
            n_right += 1
            grew = True
    return n_left, n_right
