"""The Tagger API: raw text or pre-tokenized sentences in, tags and entity spans out.

Plain Python (no Ray): the CLI, the benchmarks and the HTTP API all call
``load_tagger(ref).predict(...)``. A tagger artifact directory holds ``tagger.json``
(kind, labels, decoding), the vocabularies and the model in its framework's
standard format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from raytag.artifact_files import CHARS_FILE, TAGGER_FILE, TRANSFORMER_MODEL_DIR, WORDS_FILE
from raytag.onnx_tagger import OnnxTransformerTagger
from raytag.tagged import DocumentTagger, Prepared, TaggedSentence, TaggedToken, tag_words, tagged_sentence

__all__ = ["RUNTIMES", "TAGGERS", "TAGGER_FILE", "TRANSFORMER_MODEL_DIR", "BiLSTMTagger", "TaggedSentence",
           "TaggedToken", "Tagger", "TransformerTagger", "load_tagger"]


class Tagger(Protocol):
    kind: str
    labels: list[str]
    entity: bool
    device: str

    def predict(self, inputs: Sequence[str] | Sequence[Sequence[str]], batch_size: int = 64) -> list[TaggedSentence]:
        ...


class BiLSTMTagger(DocumentTagger):
    """A BiLSTM tagger artifact loaded for in-process prediction.

    A model trained with document context (``context`` words) uses it in
    :meth:`predict_documents`; :meth:`predict` tags each input on its own.
    """

    kind = "bilstm"

    def __init__(self, directory: str | Path, device: str = "auto") -> None:
        import tensorflow as tf

        from raytag.corpus.vocab import Vocabulary
        from raytag.devices import resolve_device, tensorflow_device, tensorflow_gpus
        from raytag.models import bilstm

        self.directory = Path(directory)
        meta = json.loads((self.directory / TAGGER_FILE).read_text(encoding="utf-8"))
        self.labels: list[str] = list(meta["labels"])
        self.entity: bool = bool(meta["entity"])
        self.constrained: bool = bool(meta.get("constrained_decoding", True))
        self.max_word_length = int(meta["max_word_length"])
        self.context = int(meta.get("context", 0))
        self.words = Vocabulary.load(self.directory / WORDS_FILE)
        self.chars = Vocabulary.load(self.directory / CHARS_FILE) if meta["char_features"] != "none" else None
        self.device = resolve_device(device, tensorflow_gpus)
        # Variables are placed when created and ops follow the scope they run in, so
        # both loading and every predict call run under the chosen device.
        self._scope = lambda: tf.device(tensorflow_device(self.device))
        with self._scope():
            self.model = bilstm.load_model(self.directory, compile=False)
        # The model's own inputs say whether it reads casing (artifacts before casing features do not).
        self.casing = "casing_ids" in self.model.input_names
        self.pieces = (bilstm.WordPieces.load(self.directory, int(meta["max_word_pieces"]))
                       if "piece_ids" in self.model.input_names else None)
        self.transitions = bilstm.transition_scores(self.model)

    def _tag(self, prepared: list[Prepared], contexts: list | None, batch_size: int) -> list[TaggedSentence]:
        """Tag each sentence inside its context words (none: on its own), keeping its own positions."""
        from raytag.models import bilstm
        from raytag.models.bilstm_context import add_context, context_starts

        windows = add_context([p[1] for p in prepared], contexts)
        starts = context_starts(contexts, len(prepared))
        results: list[TaggedSentence | None] = [None] * len(prepared)
        order = np.argsort([len(w) for w in windows], kind="stable")
        for start in range(0, len(order), batch_size):
            index = [int(i) for i in order[start : start + batch_size]]
            nonempty = [i for i in index if prepared[i][1]]
            for i in index:
                if not prepared[i][1]:
                    results[i] = TaggedSentence(prepared[i][0])
            if not nonempty:
                continue
            tokens = [windows[i] for i in nonempty]
            model_inputs, _ = bilstm.encode_batch(
                [self.words.encode(t) for t in tokens], tokens, self.chars,
                self.max_word_length, casing=self.casing, pieces=self.pieces,
            )
            with self._scope():
                probs, emissions = bilstm.predict_outputs(self.model, model_inputs)
            paths = bilstm.decode_outputs(probs, emissions, self.transitions, [len(t) for t in tokens], self.labels,
                                          constrained=self.constrained)
            for row, (i, path) in enumerate(zip(nonempty, paths, strict=True)):
                # The whole window is decoded; the sentence's own positions are its result.
                own = slice(starts[i], starts[i] + len(prepared[i][1]))
                results[i] = tagged_sentence(prepared[i], probs[row, own], path[own], self.labels, self.entity)
        return [r for r in results if r is not None]


class TransformerTagger(DocumentTagger):
    """A fine-tuned transformer artifact (a ``save_pretrained`` directory) for in-process prediction.

    Texts longer than the model's window are tagged through overlapping windows
    (``stride`` words of context), so every word gets a prediction. A model trained with
    document context (``context`` words) uses it in :meth:`predict_documents`;
    :meth:`predict` tags each input on its own.
    """

    kind = "transformer"

    def __init__(self, directory: str | Path, device: str = "auto") -> None:
        from transformers import AutoModelForTokenClassification

        from raytag.devices import resolve_device, torch_gpus
        from raytag.models.transformer import load_tokenizer

        self.directory = Path(directory)
        meta = json.loads((self.directory / TAGGER_FILE).read_text(encoding="utf-8"))
        self.labels = list(meta["labels"])
        self.entity = bool(meta["entity"])
        self.constrained = bool(meta.get("constrained_decoding", True))
        self.max_length = int(meta["max_length"])
        self.stride = int(meta["stride"])
        self.casing = bool(meta.get("casing", False))
        self.context = int(meta.get("context", 0))
        model_dir = self.directory / meta.get("model_dir", TRANSFORMER_MODEL_DIR)
        self.tokenizer = load_tokenizer(model_dir)
        self.model = AutoModelForTokenClassification.from_pretrained(str(model_dir))
        self.device = resolve_device(device, torch_gpus)
        self.model.to(self.device)
        self.model.eval()
        stored = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        if stored != self.labels:
            raise ValueError(f"{model_dir}: model labels {stored} differ from {TAGGER_FILE} labels {self.labels}")

    def _tag(self, prepared: list[Prepared], contexts: list | None, batch_size: int) -> list[TaggedSentence]:
        from raytag.models.transformer import word_probabilities

        probs = word_probabilities(
            self.model, self.tokenizer, [p[1] for p in prepared], self.max_length, self.stride, batch_size,
            casing=self.casing, contexts=contexts,
        )
        return tag_words(prepared, probs, self.labels, self.entity, self.constrained)


# Which class loads the artifact of each model kind (tagger.json's ``kind``). The runtime
# side of a kind registers here; its training side is an adapter in raytag.train.kinds.
TAGGERS: dict[str, Callable[[Path, str], Tagger]] = {
    BiLSTMTagger.kind: BiLSTMTagger,
    TransformerTagger.kind: TransformerTagger,
}

# Artifacts of a kind exported to another inference runtime (tagger.json's ``runtime``):
# same kind, labels and decoding, a different model format. No ``runtime`` means the
# kind's own framework, as in every artifact written before runtimes existed.
RUNTIMES: dict[tuple[str, str], Callable[[Path, str], Tagger]] = {
    (OnnxTransformerTagger.kind, OnnxTransformerTagger.runtime): OnnxTransformerTagger,
}


def load_tagger(ref: str | Path, registry_root: str | None = None, device: str = "auto") -> Tagger:
    """Load a tagger from an artifact directory or a registry reference (``name[@version|@alias]``).

    ``device`` is ``auto`` (a visible GPU if there is one, else the CPU), ``cpu``, ``cuda``
    or ``cuda:N``; a malformed or invisible device is a :class:`raytag.devices.DeviceError`.
    """
    from raytag.devices import check_device

    check_device(device)
    path = Path(ref)
    if not (path / TAGGER_FILE).is_file():
        from raytag.registry import Registry

        path = Registry(registry_root or "runs/registry").fetch(str(ref))
    meta = json.loads((path / TAGGER_FILE).read_text(encoding="utf-8"))
    kind, runtime = meta.get("kind"), meta.get("runtime")
    if runtime is not None:
        if (kind, runtime) not in RUNTIMES:
            raise ValueError(f"{path}: unknown runtime {runtime!r} for tagger kind {kind!r}")
        return RUNTIMES[kind, runtime](path, device)
    if kind not in TAGGERS:
        raise ValueError(f"{path}: unknown tagger kind {kind!r}")
    return TAGGERS[kind](path, device)
