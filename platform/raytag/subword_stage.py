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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from raytag.artifact_files import TOKENIZER_DIR
from raytag.config import TransformerConfig
from raytag.encode_stage import PrepareContext

WINDOW_COLUMNS = ("window_input_ids", "window_labels", "window_first_word", "window_last_word", "window_count",
                  "window_type_ids")


class SubwordEncoder:
    """Ray Data actor: adds the window columns to a batch of sentences."""

    def __init__(self, tokenizer_source: str, max_length: int, stride: int, label_all_subwords: bool) -> None:
        from raytag.models.transformer import load_tokenizer

        self.tokenizer = load_tokenizer(tokenizer_source)
        self.max_length = max_length
        self.stride = stride
        self.label_all_subwords = label_all_subwords

    def __call__(self, batch: pa.Table) -> pa.Table:
        return encode_windows(batch, self.tokenizer, self.max_length, self.stride, self.label_all_subwords)


def encode_windows(batch: pa.Table, tokenizer: Any, max_length: int, stride: int, label_all_subwords: bool) -> pa.Table:
    """Add the window columns to ``batch`` (needs ``tokens`` and ``tag_ids``)."""
    from raytag.models.subwords import encode_sentences

    tokens = batch.column("tokens").to_pylist()
    tag_ids = batch.column("tag_ids").to_pylist()
    # Casing classes are always written (cheap): a casing model can train on any prepared corpus.
    windows = (encode_sentences(tokenizer, tokens, tag_ids, max_length, stride, label_all_subwords, casing=True)
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


class SubwordStage:
    """The :class:`raytag.encode_stage.EncodeStage` for transformer jobs."""

    name = "subwords"

    def __init__(self, model: TransformerConfig, num_workers: int = 1) -> None:
        from raytag.models.transformer import load_tokenizer, resolve_encoder

        self.model = model
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
        }
