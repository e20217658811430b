"""Tagger results, and the input and output plumbing every tagger runtime shares.

Texts are tokenized (or token lists joined) the same way, and per-word probabilities
plus decoded tag ids become the same :class:`TaggedSentence`, whichever framework or
runtime computed the probabilities.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from raytag.decoding import EntitySpan, decode, offsets_for_tokens, spans_from_tags, tokenize_with_offsets

__all__ = ["DocumentTagger", "Prepared", "TaggedSentence", "TaggedToken", "by_document", "document_inputs", "predict_in_documents",
           "prepare_inputs", "tag_words", "tagged_sentence"]

# One input: its text, its words and their character offsets in the text.
Prepared = tuple[str, list[str], list[tuple[int, int]]]


@dataclass
class TaggedToken:
    text: str
    start: int
    end: int
    tag: str
    score: float


@dataclass
class TaggedSentence:
    """One input's result; offsets index into ``text`` (the raw input, or the tokens joined by spaces)."""

    text: str
    tokens: list[TaggedToken] = field(default_factory=list)
    entities: list[EntitySpan] = field(default_factory=list)

    @property
    def tags(self) -> list[str]:
        return [t.tag for t in self.tokens]

    def to_dict(self, with_tokens: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "entities": [e.to_dict() for e in self.entities]}
        if with_tokens:
            out["tokens"] = [{"text": t.text, "start": t.start, "end": t.end, "tag": t.tag, "score": t.score}
                             for t in self.tokens]
        return out


def prepare_inputs(inputs: Sequence[str] | Sequence[Sequence[str]]) -> list[Prepared]:
    if isinstance(inputs, str):
        raise TypeError("predict() takes a list of texts or a list of token lists, not a single string")
    out = []
    for item in inputs:
        if isinstance(item, str):
            tokens, offsets = tokenize_with_offsets(item)
            out.append((item, tokens, offsets))
        elif isinstance(item, Sequence) and all(isinstance(t, str) for t in item):
            text, offsets = offsets_for_tokens(list(item))
            out.append((text, list(item), offsets))
        else:
            raise TypeError(f"expected a text or a list of token strings, got {type(item).__name__}")
    return out


def tagged_sentence(item: Prepared, probs: np.ndarray, path: Sequence[int],
            labels: Sequence[str], entity: bool) -> TaggedSentence:
    """One sentence's result from its per-word probabilities and decoded tag ids."""
    text, words, offsets = item
    scores = [float(probs[t, tag]) for t, tag in enumerate(path)]
    tags = [labels[t] for t in path]
    return TaggedSentence(
        text,
        [TaggedToken(w, s, e, tag, sc) for w, (s, e), tag, sc in zip(words, offsets, tags, scores, strict=True)],
        spans_from_tags(tags, offsets, text, scores) if entity else [],
    )


def tag_words(prepared: Sequence[Prepared], probs: Sequence[np.ndarray], labels: Sequence[str], entity: bool,
              constrained: bool) -> list[TaggedSentence]:
    """Decode each sentence's ``[num_words, num_labels]`` probabilities into its result."""
    results = []
    for item, p in zip(prepared, probs, strict=True):
        if not item[1]:
            results.append(TaggedSentence(item[0]))
            continue
        path = decode(p[None], [len(p)], labels, constrained=constrained)[0]
        results.append(tagged_sentence(item, p, path, labels, entity))
    return results


# --- documents ------------------------------------------------------------------------------


def document_inputs(documents: Sequence[Sequence[Sequence[str]]],
                    size: int) -> tuple[list[Prepared], list[Any] | None, list[int]]:
    """Documents (lists of token lists) → prepared sentences, their ``size``-word contexts, document indices."""
    from raytag.models.doc_context import flatten_documents, sentence_contexts

    sentences, keys = flatten_documents(documents)
    contexts = sentence_contexts(sentences, keys, size) if size else None
    return prepare_inputs(sentences), contexts, keys


class DocumentTagger:
    """``predict`` and ``predict_documents`` over one ``_tag(prepared, contexts, batch_size)``.

    Every runtime tags a list of prepared sentences, each with its document context
    (``contexts``: the words before and after it) or none; this base turns texts or
    token lists, and documents, into that call. ``context`` is the number of words the
    model was trained to read on each side (0: documents are tagged sentence by sentence).
    """

    context: int = 0

    def predict(self, inputs: Sequence[str] | Sequence[Sequence[str]], batch_size: int = 64) -> list[TaggedSentence]:
        """Tag texts (tokenized by :func:`raytag.decoding.tokenize_with_offsets`) or token lists."""
        return self._tag(prepare_inputs(inputs), None, batch_size)

    def predict_documents(self, documents: Sequence[Sequence[Sequence[str]]],
                          batch_size: int = 64) -> list[list[TaggedSentence]]:
        """Tag documents (each a list of token lists), every sentence with the words around it.

        One result list per document, one result per sentence. With a model trained
        without document context this tags exactly as :meth:`predict`.
        """
        prepared, contexts, keys = document_inputs(documents, self.context)
        return by_document(self._tag(prepared, contexts, batch_size), keys, len(documents))

    def _tag(self, prepared: list[Prepared], contexts: list[Any] | None, batch_size: int) -> list[TaggedSentence]:
        raise NotImplementedError


def by_document(results: Sequence[TaggedSentence], keys: Sequence[int], count: int) -> list[list[TaggedSentence]]:
    """Sentence results back into their ``count`` documents."""
    out: list[list[TaggedSentence]] = [[] for _ in range(count)]
    for result, key in zip(results, keys, strict=True):
        out[key].append(result)
    return out


def predict_in_documents(tagger: Any, sentences: Sequence[Sequence[str]], documents: Sequence[Hashable],
                         batch_size: int = 64) -> list[TaggedSentence]:
    """Tag token lists with their documents' context where the tagger reads context, else one by one.

    ``documents[i]`` is sentence ``i``'s document key; a document's sentences are read
    in the order given. A tagger reads context when it has ``predict_documents`` and a
    ``context`` above 0 (a model trained with ``model.context``).
    """
    if len(documents) != len(sentences):
        raise ValueError(f"{len(sentences)} sentences but {len(documents)} document keys")
    if not getattr(tagger, "context", 0) or not hasattr(tagger, "predict_documents"):
        return list(tagger.predict(sentences, batch_size=batch_size))
    members: dict[Hashable, list[int]] = {}
    for index, key in enumerate(documents):
        members.setdefault(key, []).append(index)
    groups = list(members.values())
    tagged = tagger.predict_documents([[sentences[i] for i in group] for group in groups], batch_size=batch_size)
    out: list[Any] = [None] * len(sentences)
    for group, results in zip(groups, tagged, strict=True):
        for index, result in zip(group, results, strict=True):
            out[index] = result
    return out
