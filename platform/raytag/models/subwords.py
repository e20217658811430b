"""Word-level tags on subword tokenizers: label alignment, windows, and back again.

Transformer taggers see subwords, but corpora and predictions are per word.  This
module turns word sentences into model-ready :class:`Window` s and maps the
model's per-position outputs back to one row per word.

Windowing, in words (a window never starts or ends inside a word):

* A window holds ``max_length`` subwords at most, special tokens included.
* Each window *owns* a contiguous run of words; owned runs partition the
  sentence, so every word is owned (labelled for training, read for
  prediction) by exactly one window.  Only owned words carry labels, so a word
  seen in two windows counts once in the loss, exactly as it is predicted.
* ``stride`` is a number of *words* of context kept on each side of the owned
  run, where the subword budget allows and the sentence does not end sooner:
  consecutive windows overlap by up to ``2 * stride`` words and each word is
  owned by the window in which it sits in the middle, away from a cut edge.
* A word whose subwords alone exceed the budget gets a window of its own
  holding its *first* ``max_length - specials`` subwords (the first subword is
  where its label and prediction live); the dropped tail is counted in
  :attr:`Window.dropped_subwords` and reported with a warning.  Such a word
  is never context in another window: neighbours treat it like a sentence edge.
* A word the tokenizer maps to no subword at all (e.g. a lone zero-width space)
  is encoded as the unknown token so it can still be labelled and predicted.
* An empty sentence yields no window; :func:`words_from_windows` gives it an
  empty ``[0, num_labels]`` array.
* With document context (:mod:`raytag.models.doc_context`), a window where the
  sentence starts or ends also holds neighbouring words of the document, in the
  room the window's own words leave: never labelled, never read.  The windows'
  own words, their labels and the number of windows do not change.

Plain Python/numpy: transformers and tokenizers are imported only by the
functions that need them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from raytag.models.doc_context import Context, context_pieces, fit_context
# Re-exported: they lived here before the encoders got a module of their own.
from raytag.models.encoders import bundled_encoder_path, tiny_wordpiece_tokenizer

__all__ = [
    "IGNORE_INDEX",
    "Window",
    "bundled_encoder_path",
    "encode_sentences",
    "tiny_wordpiece_tokenizer",
    "words_from_windows",
]

# The label value PyTorch's cross-entropy (and HF models) skip.
IGNORE_INDEX = -100


@dataclass
class Window:
    """One model input: a run of whole words of one sentence between special tokens.

    ``word_ids[p]`` is the sentence-level index of the word at position ``p``
    (``None`` for special tokens and document context words).  The window owns words
    ``[first_word, last_word)``: only they carry labels and only their
    predictions are used.
    """

    input_ids: list[int]
    attention_mask: list[int]
    labels: list[int]
    word_ids: list[int | None]
    first_word: int
    last_word: int
    sentence: int
    dropped_subwords: int = 0
    # Each position's word casing type (:func:`raytag.models.casing.token_type`), 0 on special
    # tokens; ``None`` when the model takes no casing input.
    token_type_ids: list[int] | None = None

    def __post_init__(self) -> None:
        n = len(self.input_ids)
        if not (len(self.attention_mask) == len(self.labels) == len(self.word_ids) == n):
            raise ValueError("window input_ids, attention_mask, labels and word_ids differ in length")
        if self.token_type_ids is not None and len(self.token_type_ids) != n:
            raise ValueError("window token_type_ids and input_ids differ in length")
        if not 0 <= self.first_word < self.last_word:
            raise ValueError(f"window owns an empty word range [{self.first_word}, {self.last_word})")

    def owned_positions(self) -> list[tuple[int, int]]:
        """``(word, position of its first subword)`` for each owned word, in word order."""
        found: dict[int, int] = {}
        for pos, word in enumerate(self.word_ids):
            if word is not None and self.first_word <= word < self.last_word:
                found.setdefault(word, pos)
        if len(found) != self.last_word - self.first_word:
            raise ValueError(
                f"window of sentence {self.sentence} lacks some of its owned words "
                f"[{self.first_word}, {self.last_word})"
            )
        return sorted(found.items())

    def as_features(self) -> dict[str, list[int]]:
        """The fields a Hugging Face token-classification model takes."""
        features = {"input_ids": self.input_ids, "attention_mask": self.attention_mask, "labels": self.labels}
        if self.token_type_ids is not None:
            features["token_type_ids"] = self.token_type_ids
        return features


def _owned_runs(costs: Sequence[int], budget: int, stride: int) -> list[tuple[int, int, int, int]]:
    """Plan windows as ``(start, owned_start, owned_end, end)`` word indices.

    ``costs[i]`` is word ``i``'s subword count; a window's words must cost at
    most ``budget`` unless it is a lone over-long word.
    """
    n = len(costs)
    prefix = np.concatenate([[0], np.cumsum(costs, dtype=np.int64)])

    def cost(a: int, b: int) -> int:
        return int(prefix[b] - prefix[a])

    plan: list[tuple[int, int, int, int]] = []
    o = 0
    while o < n:
        if costs[o] > budget:
            plan.append((o, o, o + 1, o + 1))
            o += 1
            continue
        s = max(0, o - stride)
        while cost(s, o + 1) > budget:
            s += 1
        # Largest e with cost(s, e) <= budget; prefix sums are monotone.
        e = int(np.searchsorted(prefix, prefix[s] + budget, side="right")) - 1
        e = min(max(e, o + 1), n)
        if e == n or costs[e] > budget:
            # No later window can see past the sentence end or an over-long word,
            # so reserving right context would only add windows, not context.
            own_end = e
        else:
            own_end = max(o + 1, e - stride)
        plan.append((s, o, own_end, e))
        o = own_end
    return plan


def _special_template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """Special-token ids a single-sequence encoding puts before and after the words."""
    # Probe with one plain word: every subword vocabulary can encode "a", and
    # it tells prefix from suffix, which an empty or all-special encoding cannot.
    probe = tokenizer(["a"], is_split_into_words=True, add_special_tokens=True)
    wids = probe.word_ids()
    inner = [p for p, w in enumerate(wids) if w is not None]
    if not inner:
        raise ValueError("tokenizer produced no subword for the probe word 'a'")
    ids = list(probe["input_ids"])
    return ids[: inner[0]], ids[inner[-1] + 1 :]


def encode_sentences(
    tokenizer: Any,
    sentences: Sequence[Sequence[str]],
    tag_ids: Sequence[Sequence[int]] | None,
    max_length: int,
    stride: int,
    label_all_subwords: bool = False,
    casing: bool = False,
    contexts: Sequence[Context] | None = None,
) -> list[Window]:
    """Tokenize word sentences into labelled windows of at most ``max_length`` subwords.

    ``tokenizer`` must be a fast (Rust-backed) Hugging Face tokenizer.  Each
    owned word's first subword gets its tag id; its other subwords get
    ``-100``, or the same tag when ``label_all_subwords``.  Special tokens and
    context (non-owned) words get ``-100``; with ``tag_ids=None`` every label
    is ``-100``.  ``stride`` is context in words; see the module docstring for
    the windowing and over-long word rules.  Windows come in sentence order.
    With ``casing``, every window also carries ``token_type_ids``: each subword
    gets its word's casing class (computed from the word as written), specials 0.
    ``contexts[i]`` holds the document words before and after sentence ``i``
    (:func:`raytag.models.doc_context.sentence_contexts`); they fill the room left in
    the windows at the sentence's edges, labelled ``-100``.
    """
    from raytag.models.casing import token_type

    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("encode_sentences needs a fast tokenizer (word_ids() is only available on those)")
    if stride < 0:
        raise ValueError(f"stride must be >= 0 words, got {stride}")
    if tag_ids is not None and len(tag_ids) != len(sentences):
        raise ValueError(f"{len(sentences)} sentences but {len(tag_ids)} tag sequences")
    if contexts is not None and len(contexts) != len(sentences):
        raise ValueError(f"{len(sentences)} sentences but {len(contexts)} contexts")
    for i, words in enumerate(sentences):
        if isinstance(words, str):
            raise ValueError(f"sentence {i} is a string; pass a sequence of words")
        if tag_ids is not None:
            if len(tag_ids[i]) != len(words):
                raise ValueError(f"sentence {i} has {len(words)} words but {len(tag_ids[i])} tags")
            if any(t < 0 for t in tag_ids[i]):
                raise ValueError(f"sentence {i} has a negative tag id; tag ids must be >= 0")

    head, tail = _special_template(tokenizer)
    budget = max_length - len(head) - len(tail)
    if budget < 1:
        raise ValueError(
            f"max_length={max_length} leaves no room for a subword after "
            f"{len(head) + len(tail)} special tokens"
        )

    nonempty = [i for i, words in enumerate(sentences) if len(words)]
    if not nonempty:
        return []
    encoded = tokenizer(
        [list(sentences[i]) for i in nonempty],
        is_split_into_words=True,
        add_special_tokens=True,
        truncation=False,
        verbose=False,  # long sentences are expected here; they get windowed below
    )

    around = context_pieces(tokenizer, [contexts[i] for i in nonempty]) if contexts is not None else None
    windows: list[Window] = []
    truncated_words = 0
    for row, sent in enumerate(nonempty):
        ids: list[int] = encoded["input_ids"][row]
        wids: list[int | None] = encoded.word_ids(row)
        first, last = len(head), len(ids) - len(tail)
        if (
            ids[:first] != head
            or ids[last:] != tail
            or any(w is None for w in wids[first:last])
            or any(w is not None for w in wids[:first] + wids[last:])
        ):
            raise ValueError(
                f"sentence {sent}: the tokenizer's special tokens do not wrap the words as "
                "[prefix] words [suffix]; unsupported tokenizer"
            )

        n_words = len(sentences[sent])
        pieces: list[list[int]] = [[] for _ in range(n_words)]
        for p in range(first, last):
            pieces[wids[p]].append(ids[p])
        for w, piece in enumerate(pieces):
            if not piece:
                if tokenizer.unk_token_id is None:
                    raise ValueError(
                        f"word {w} of sentence {sent} ({sentences[sent][w]!r}) has no subwords "
                        "and the tokenizer has no unknown token to stand in for it"
                    )
                piece.append(tokenizer.unk_token_id)

        tags = tag_ids[sent] if tag_ids is not None else None
        for s, o, own_end, e in _owned_runs([len(p) for p in pieces], budget, stride):
            body_ids: list[int] = []
            body_words: list[int | None] = []
            body_labels: list[int] = []
            body_types: list[int] = []
            dropped = 0
            for w in range(s, e):
                piece = pieces[w]
                if len(piece) > budget:
                    dropped = len(piece) - budget
                    piece = piece[:budget]
                owned = tags is not None and o <= w < own_end
                word_type = token_type(sentences[sent][w]) if casing else 0
                for k, tok in enumerate(piece):
                    body_types.append(word_type)
                    body_ids.append(tok)
                    body_words.append(w)
                    labelled = owned and (k == 0 or label_all_subwords)
                    body_labels.append(int(tags[w]) if labelled else IGNORE_INDEX)
            truncated_words += dropped > 0
            if around is not None:
                # Document context in the room the window's own words leave, at the sentence's edges.
                left = around[row][0] if s == 0 else []
                right = around[row][1] if e == n_words else []
                n_left, n_right = fit_context([len(p) for _, p in left], [len(p) for _, p in right],
                                              budget - len(body_ids))
                pre = [(word, tok) for word, piece in left[len(left) - n_left :] for tok in piece]
                post = [(word, tok) for word, piece in right[:n_right] for tok in piece]
                body_ids = [tok for _, tok in pre] + body_ids + [tok for _, tok in post]
                body_words = [None] * len(pre) + body_words + [None] * len(post)
                body_labels = [IGNORE_INDEX] * len(pre) + body_labels + [IGNORE_INDEX] * len(post)
                body_types = ([token_type(word) if casing else 0 for word, _ in pre] + body_types
                              + [token_type(word) if casing else 0 for word, _ in post])
            input_ids = list(head) + body_ids + list(tail)
            windows.append(
                Window(
                    input_ids=input_ids,
                    attention_mask=[1] * len(input_ids),
                    labels=[IGNORE_INDEX] * len(head) + body_labels + [IGNORE_INDEX] * len(tail),
                    word_ids=[None] * len(head) + body_words + [None] * len(tail),
                    first_word=o,
                    last_word=own_end,
                    sentence=sent,
                    dropped_subwords=dropped,
                    token_type_ids=[0] * len(head) + body_types + [0] * len(tail) if casing else None,
                )
            )
    if truncated_words:
        warnings.warn(
            f"{truncated_words} word(s) have more subwords than max_length={max_length} allows; "
            "each kept its first subwords (see Window.dropped_subwords)",
            stacklevel=2,
        )
    return windows


def words_from_windows(
    windows: Sequence[Window],
    logits_or_probs: Sequence[np.ndarray],
    num_words: Sequence[int],
    num_labels: int | None = None,
) -> list[np.ndarray]:
    """Per-sentence ``[num_words, num_labels]`` arrays read at each word's first subword.

    ``logits_or_probs[k]`` is window ``k``'s ``[T, num_labels]`` output with
    ``T >= len(windows[k].input_ids)`` (right padding is fine; a padded
    ``[W, T, L]`` batch works too).  Each word's row comes from the window
    that owns it.  ``num_labels`` is inferred from the arrays and only needed
    when there are no windows (e.g. all sentences empty).
    """
    if len(logits_or_probs) != len(windows):
        raise ValueError(f"{len(windows)} windows but {len(logits_or_probs)} output arrays")
    arrays = [np.asarray(a) for a in logits_or_probs]
    if arrays:
        inferred = arrays[0].shape[-1]
        if num_labels is not None and num_labels != inferred:
            raise ValueError(f"num_labels={num_labels} but the outputs have {inferred} columns")
        num_labels = inferred
    elif num_labels is None:
        raise ValueError("cannot infer num_labels without any window output; pass num_labels")
    dtype = np.result_type(*arrays) if arrays else np.dtype(np.float32)

    out = [np.zeros((int(n), num_labels), dtype=dtype) for n in num_words]
    seen = [np.zeros(int(n), dtype=bool) for n in num_words]
    for k, (window, arr) in enumerate(zip(windows, arrays)):
        if arr.ndim != 2 or arr.shape[1] != num_labels or arr.shape[0] < len(window.input_ids):
            raise ValueError(
                f"output {k} has shape {arr.shape}; expected [>= {len(window.input_ids)}, {num_labels}]"
            )
        if not 0 <= window.sentence < len(num_words):
            raise ValueError(f"window {k} belongs to sentence {window.sentence}, outside num_words")
        if window.last_word > num_words[window.sentence]:
            raise ValueError(
                f"window {k} owns words up to {window.last_word} but sentence "
                f"{window.sentence} has {num_words[window.sentence]}"
            )
        owned = seen[window.sentence]
        for word, pos in window.owned_positions():
            if owned[word]:
                raise ValueError(
                    f"word {word} of sentence {window.sentence} is owned by more than one window"
                )
            owned[word] = True
            out[window.sentence][word] = arr[pos]
    for sent, owned in enumerate(seen):
        if not owned.all():
            raise ValueError(
                f"word {int(np.argmin(owned))} of sentence {sent} is not owned by any window"
            )
    return out
