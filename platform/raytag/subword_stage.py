"""The prepare pipeline's subword stage: word sentences → labelled subword windows on Ray Data.

A ``map_batches`` stage running a fast tokenizer in an actor pool (each actor
loads the tokenizer once). Every sentence row gains its windows, so a prepared
corpus still has one row per sentence and shards stay one per chunk:

* ``window_input_ids``, ``window_labels``: ``list<list<int32>>``, one inner list per window
* ``window_first_word``, ``window_last_word``: the words each window owns
* ``window_count``
* ``window_type_ids``: each subword's word casing class, read by models with ``casing``

The tokenizer is saved into the prepared directory (``tokenizer/``), so training
and prediction use exactly the vocabulary the windows were cut with.

With ``model.context`` the windows also hold words of the sentences around each
sentence in its document and split (:mod:`raytag.models.doc_context`); prepare then
cuts the corpus into chunks of whole documents, so every batch holds them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from raytag.artifact_files import TOKENIZER_DIR
from raytag.config import TransformerConfig
from raytag.encode_stage import PrepareContext

WINDOW_COLUMNS = ("window_input_ids", "window_labels", "window_first_word", "window_last_word", "window_count",
                  "window_type_ids")


class SubwordEncoder:
    """Ray Data actor: adds the window columns to a batch of sentences."""

    def __init__(self, tokenizer_source: str, max_length: int, stride: int, label_all_subwords: bool,
                 context: int = 0) -> None:
        from raytag.models.transformer import load_tokenizer

        self.tokenizer = load_tokenizer(tokenizer_source)
        self.max_length = max_length
        self.stride = stride
        self.label_all_subwords = label_all_subwords
        self.context = context

    def __call__(self, batch: pa.Table) -> pa.Table:
        return encode_windows(batch, self.tokenizer, self.max_length, self.stride, self.label_all_subwords,
                              self.context)


def encode_windows(batch: pa.Table, tokenizer: Any, max_length: int, stride: int, label_all_subwords: bool,
                   context: int = 0) -> pa.Table:
    """Add the window columns to ``batch`` (needs ``tokens`` and ``tag_ids``).

    ``context`` words of document context come from the batch's other sentences of
    the same ``document`` and ``split``, in ``sid`` order (a missing column: every
    sentence is its own document, one split, batch order).
    """
    from raytag.models.subwords import encode_sentences

    tokens = batch.column("tokens").to_pylist()
    tag_ids = batch.column("tag_ids").to_pylist()
    contexts = batch_contexts(batch, tokens, context) if context > 0 else None
    # Casing classes are always written (cheap): a casing model can train on any prepared corpus.
    windows = (encode_sentences(tokenizer, tokens, tag_ids, max_length, stride, label_all_subwords, casing=True,
                                contexts=contexts)
               if tokens else [])
    per_sentence: list[list[Any]] = [[] for _ in tokens]
    for window in windows:
        per_sentence[window.sentence].append(window)
    nested = pa.list_(pa.list_(pa.int32()))
    flat = pa.list_(pa.int32())
    columns = {
        "window_input_ids": pa.array([[w.input_ids for w in ws] for ws in per_sentence], type=nested),
        "window_labels": pa.array([[w.labels for w in ws] for ws in per_sentence], type=nested),
        "window_first_word": pa.array([[w.first_word for w in ws] for ws in per_sentence], type=flat),
        "window_last_word": pa.array([[w.last_word for w in ws] for ws in per_sentence], type=flat),
        "window_count": pa.array([len(ws) for ws in per_sentence], type=pa.int32()),
        "window_type_ids": pa.array([[w.token_type_ids for w in ws] for ws in per_sentence], type=nested),
    }
    for name, column in columns.items():
        batch = batch.append_column(name, column)
    return batch


def batch_contexts(batch: pa.Table, tokens: list[list[str]], size: int) -> list[tuple[list[str], list[str]]]:
    """Each sentence's document context from the other sentences of ``batch`` (see :func:`encode_windows`)."""
    from raytag.models.doc_context import sentence_contexts

    n, names = batch.num_rows, batch.column_names
    documents = batch.column("document").to_pylist() if "document" in names else list(range(n))
    splits = batch.column("split").to_pylist() if "split" in names else [None] * n
    order = np.argsort(batch.column("sid").to_numpy(), kind="stable") if "sid" in names else np.arange(n)
    found = sentence_contexts([tokens[i] for i in order], [(splits[i], documents[i]) for i in order], size)
    out: list[tuple[list[str], list[str]]] = [([], [])] * n
    for position, index in enumerate(order):
        out[index] = found[position]
    return out


class SubwordStage:
    """The :class:`raytag.encode_stage.EncodeStage` for transformer jobs."""

    name = "subwords"

    def __init__(self, model: TransformerConfig, num_workers: int = 1) -> None:
        from raytag.models.transformer import load_tokenizer, resolve_encoder

        self.model = model
        self.whole_documents = model.context > 0
        self.num_workers = num_workers
        self.source = resolve_encoder(model.encoder)
        # Load once on the driver: a missing encoder fails before any Ray work starts.
        self.tokenizer = load_tokenizer(self.source)

    def fit(self, context: PrepareContext) -> None:
        self.labels = list(context.labels.items)

    def apply(self, dataset: Any) -> Any:
        import ray.data

        return dataset.map_batches(
            SubwordEncoder,
            batch_size=None,
            batch_format="pyarrow",
            fn_constructor_kwargs={
                "tokenizer_source": self.source,
                "max_length": self.model.max_length,
                "stride": self.model.stride,
                "label_all_subwords": self.model.label_all_subwords,
                "context": self.model.context,
            },
            # Elastic pool: one actor always, more while CPUs are free, so upstream
            # parse tasks can still be scheduled on a 2-CPU machine.
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=self.num_workers),
            num_cpus=1,
        )

    def save(self, directory: Path) -> dict[str, Any]:
        self.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
        return {
            "encoder": self.model.encoder,
            "encoder_path": self.source,
            "tokenizer": TOKENIZER_DIR,
            "max_length": self.model.max_length,
            "stride": self.model.stride,
            "label_all_subwords": self.model.label_all_subwords,
            "casing_types": True,
            "context": self.model.context,
        }
