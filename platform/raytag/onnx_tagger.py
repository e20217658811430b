"""Transformer taggers on ONNX Runtime: the exported graph of a fine-tuned model, no PyTorch.

The artifact (written by :mod:`raytag.onnx_export`) holds ``tagger.json`` with
``"runtime": "onnx"``, the graph and the tokenizer. Prediction goes through the same
windows, word mapping and decoding as :class:`raytag.tagger.TransformerTagger`, so the
two differ only in the numbers the model computes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from raytag.artifact_files import ONNX_MODEL_FILE, ONNX_TOKENIZER_DIR, TAGGER_FILE
from raytag.devices import DeviceError, check_device, resolve_device
from raytag.tagged import DocumentTagger, Prepared, TaggedSentence, tag_words

__all__ = ["RUNTIME", "OnnxTransformerTagger", "onnx_providers", "softmax"]

RUNTIME = "onnx"
_CUDA, _CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float32 like the PyTorch path."""
    shifted = logits.astype(np.float32) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _cuda_gpus() -> int:
    # onnxruntime cannot count GPUs itself; its CUDA provider sees what CUDA sees.
    from raytag.devices import torch_gpus

    return torch_gpus()


def onnx_providers(device: str, available: Sequence[str]) -> tuple[str, list[Any]]:
    """The resolved device and the execution providers for it, given the runtime's providers.

    ``auto`` takes a GPU only where this onnxruntime build has the CUDA provider; asking
    for ``cuda`` on a CPU-only build is a :class:`DeviceError` that says why.
    """
    wanted = check_device(device)
    if wanted != "cpu" and _CUDA not in available:
        if wanted != "auto":
            raise DeviceError(f"device {device!r} requested but this onnxruntime has no {_CUDA} "
                              "(install onnxruntime-gpu)")
        wanted = "cpu"
    resolved = resolve_device(wanted, _cuda_gpus)
    if resolved == "cpu":
        return resolved, [_CPU]
    return resolved, [(_CUDA, {"device_id": int(resolved.split(":")[1])}), _CPU]


class OnnxTransformerTagger(DocumentTagger):
    """An ONNX runtime variant of a transformer tagger, for in-process prediction.

    Texts longer than the window are tagged through overlapping windows (``stride``
    words of context), exactly as by the PyTorch tagger it was exported from, document
    context (:meth:`predict_documents`) included.
    """

    kind = "transformer"
    runtime = RUNTIME

    def __init__(self, directory: str | Path, device: str = "auto", threads: int | None = None) -> None:
        """``threads`` caps onnxruntime's intra-op pool (default: one thread per physical core)."""
        import onnxruntime as ort

        from raytag.models.transformer import load_tokenizer

        self.directory = Path(directory)
        meta = json.loads((self.directory / TAGGER_FILE).read_text(encoding="utf-8"))
        if meta.get("runtime") != RUNTIME:
            raise ValueError(f"{self.directory}: {TAGGER_FILE} runtime is {meta.get('runtime')!r}, not {RUNTIME!r}")
        self.labels: list[str] = list(meta["labels"])
        self.entity = bool(meta["entity"])
        self.constrained = bool(meta.get("constrained_decoding", True))
        self.max_length = int(meta["max_length"])
        self.stride = int(meta["stride"])
        self.casing = bool(meta.get("casing", False))
        self.context = int(meta.get("context", 0))
        self.quantize: str | None = meta.get("quantize")
        self.source: dict[str, Any] = dict(meta.get("source", {}))
        self.tokenizer = load_tokenizer(self.directory / ONNX_TOKENIZER_DIR)
        self.device, providers = onnx_providers(device, ort.get_available_providers())
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.directory / ONNX_MODEL_FILE), options, providers=providers)
        self._inputs = [i.name for i in self.session.get_inputs()]
        width = self.session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != len(self.labels):
            raise ValueError(f"{self.directory}: the graph has {width} outputs, "
                             f"{TAGGER_FILE} has {len(self.labels)} labels")

    def _logits(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None = None) -> np.ndarray:
        # Without casing the PyTorch tagger passes no token_type_ids, so the model uses zeros.
        feeds = {"input_ids": ids, "attention_mask": mask,
                 "token_type_ids": np.zeros_like(ids) if types is None else types}
        return self.session.run(None, {name: feeds[name] for name in self._inputs})[0]

    def word_probabilities(self, sentences: Sequence[Sequence[str]], batch_size: int = 64,
                           contexts: Sequence[Any] | None = None) -> list[np.ndarray]:
        """Per-sentence ``[num_words, num_labels]`` probabilities, read at each word's first subword."""
        from raytag.models.transformer import encode_sentences, length_batches, pad_ids, words_from_windows

        windows = encode_sentences(self.tokenizer, sentences, None, self.max_length, self.stride, casing=self.casing,
                                   contexts=contexts)
        pad_id = self.tokenizer.pad_token_id or 0
        out: list[np.ndarray] = [np.empty(0)] * len(windows)
        for index in length_batches(windows, batch_size):
            ids, mask = pad_ids([windows[i].input_ids for i in index], pad_id)
            types = pad_ids([windows[i].token_type_ids or [] for i in index], 0)[0] if self.casing else None
            probs = softmax(self._logits(ids, mask, types))
            for row, i in enumerate(index):
                out[i] = probs[row, : len(windows[i].input_ids)]
        return words_from_windows(windows, out, [len(s) for s in sentences], num_labels=len(self.labels))

    def _tag(self, prepared: list[Prepared], contexts: list[Any] | None, batch_size: int) -> list[TaggedSentence]:
        probs = self.word_probabilities([p[1] for p in prepared], batch_size, contexts)
        return tag_words(prepared, probs, self.labels, self.entity, self.constrained)
