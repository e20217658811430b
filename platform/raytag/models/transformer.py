"""Transformer token classifiers: encoder loading, window batches, word-level probabilities.

Plain PyTorch/transformers, no Ray: the Ray Train loop, the exporter and the
Tagger API all go through these functions, so training-time evaluation and
serving compute predictions the same way. Windowing and the word ↔ subword
mapping live in :mod:`raytag.models.subwords`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from raytag.models.doc_context import Context
from raytag.models.encoders import bundled_encoder_path
from raytag.models.subwords import IGNORE_INDEX, Window, encode_sentences, words_from_windows

if TYPE_CHECKING:
    from raytag.config import TransformerConfig

__all__ = [
    "build_model",
    "length_batches",
    "load_tokenizer",
    "pad_features",
    "pad_ids",
    "resolve_encoder",
    "window_probabilities",
    "word_probabilities",
]


def resolve_encoder(encoder: str) -> str:
    """``"bundled"`` → the packaged MiniLM directory; anything else is a path or hub id as given."""
    return str(bundled_encoder_path()) if encoder == "bundled" else encoder


def load_tokenizer(source: str | Path) -> Any:
    """The fast tokenizer of an encoder directory (or hub id); slow tokenizers cannot map words."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source), use_fast=True)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{source}: no fast tokenizer; word-level tagging needs one (tokenizer.json)")
    return tokenizer


def build_model(config: TransformerConfig, labels: Sequence[str], source: str | Path | None = None) -> Any:
    """A token-classification head on the configured encoder, with the real label names."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    path = str(source) if source is not None else resolve_encoder(config.encoder)
    id2label = {i: label for i, label in enumerate(labels)}
    extra: dict[str, Any] = {}
    if config.classifier_dropout is not None:
        extra["classifier_dropout"] = config.classifier_dropout
    model_config = AutoConfig.from_pretrained(
        path, num_labels=len(labels), id2label=id2label, label2id={v: k for k, v in id2label.items()}, **extra
    )
    # The encoder's own head (if any) has another label set: replace it, keep the body.
    model = AutoModelForTokenClassification.from_pretrained(path, config=model_config, ignore_mismatched_sizes=True)
    if config.casing:
        add_casing_types(model)
    return model


def add_casing_types(model: Any) -> None:
    """Grow the encoder's token-type embedding to one row per casing class.

    Every new row starts as a copy of type 0, so the model starts out exactly as the
    pretrained encoder and learns what each class adds. The result is a plain
    ``save_pretrained`` model (``type_vocab_size`` in its config), loadable anywhere.
    """
    import torch

    from raytag.models.casing import TOKEN_TYPES

    embeddings = getattr(model.base_model, "embeddings", None)
    old = getattr(embeddings, "token_type_embeddings", None)
    if not isinstance(old, torch.nn.Embedding):
        raise ValueError(
            f"model.casing needs an encoder with token type embeddings (BERT-style); "
            f"{type(model.base_model).__name__} has none"
        )
    classes = len(TOKEN_TYPES)
    if old.num_embeddings >= classes:
        return
    new = torch.nn.Embedding(classes, old.embedding_dim)
    with torch.no_grad():
        new.weight[:] = old.weight[0]
        new.weight[: old.num_embeddings] = old.weight
    embeddings.token_type_embeddings = new
    model.config.type_vocab_size = classes


def pad_ids(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded int64 ``input_ids`` and ``attention_mask`` arrays for a batch of id lists."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def length_batches(windows: Sequence[Window], batch_size: int) -> Iterator[list[int]]:
    """Window indices in batches of similar length, so padding stays short."""
    order = np.argsort([len(w.input_ids) for w in windows], kind="stable")
    for start in range(0, len(order), batch_size):
        yield [int(i) for i in order[start : start + batch_size]]


def pad_features(rows: Sequence[dict[str, Sequence[int]]], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch of ``input_ids`` (and ``labels`` if present) into torch tensors."""
    import torch

    ids, mask = pad_ids([r["input_ids"] for r in rows], pad_id)
    width = ids.shape[1]
    batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if "token_type_ids" in rows[0]:
        types, _ = pad_ids([r["token_type_ids"] for r in rows], 0)
        batch["token_type_ids"] = torch.from_numpy(types)
    if "labels" in rows[0]:
        labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
        for i, row in enumerate(rows):
            labels[i, : len(row["labels"])] = row["labels"]
        batch["labels"] = torch.from_numpy(labels)
    return batch


def window_probabilities(model: Any, windows: Sequence[Window], pad_id: int, batch_size: int = 32) -> list[np.ndarray]:
    """Softmax outputs ``[len(window), num_labels]`` for each window, batched by similar length."""
    import torch

    out: list[np.ndarray | None] = [None] * len(windows)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for index in length_batches(windows, batch_size):
                batch = pad_features([_inputs(windows[i]) for i in index], pad_id)
                logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
                probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
                for row, i in enumerate(index):
                    out[i] = probs[row, : len(windows[i].input_ids)]
    finally:
        model.train(was_training)
    return [p for p in out if p is not None]


def _inputs(window: Window) -> dict[str, list[int]]:
    if window.token_type_ids is None:
        return {"input_ids": window.input_ids}
    return {"input_ids": window.input_ids, "token_type_ids": window.token_type_ids}


def word_probabilities(
    model: Any,
    tokenizer: Any,
    sentences: Sequence[Sequence[str]],
    max_length: int,
    stride: int,
    batch_size: int = 32,
    casing: bool = False,
    contexts: Sequence[Context] | None = None,
) -> list[np.ndarray]:
    """Per-sentence ``[num_words, num_labels]`` probabilities, read at each word's first subword.

    Sentences longer than ``max_length`` subwords are tagged through overlapping
    windows; every word is predicted exactly once. ``contexts`` adds each sentence's
    document context to its windows (:func:`raytag.models.subwords.encode_sentences`).
    """
    windows = encode_sentences(tokenizer, sentences, None, max_length, stride, casing=casing, contexts=contexts)
    probs = window_probabilities(model, windows, tokenizer.pad_token_id or 0, batch_size)
    return words_from_windows(windows, probs, [len(s) for s in sentences], num_labels=model.config.num_labels)
