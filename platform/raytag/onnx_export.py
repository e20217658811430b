"""Export a registered transformer tagger to ONNX and register the result as a runtime variant.

The variant is a new version of the *same model name* (so ``models list`` shows it next
to its source and the registry verifies its checksums like any version). Its artifact
holds ``tagger.json`` (the source's labels, decoding, ``max_length`` and ``stride``,
plus ``"runtime": "onnx"``, the quantization and a ``source`` record: the source
version and one sha256 over its manifest's file checksums), ``model.onnx`` and ``tokenizer/``.
Publishing points only the alias ``onnx`` (fp32) or ``onnx-int8`` at it: ``latest`` and
``best`` keep naming PyTorch versions, so nothing that loads ``name`` changes.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

from raytag.artifact_files import ONNX_MODEL_FILE, ONNX_TOKENIZER_DIR, TAGGER_FILE, TRANSFORMER_MODEL_DIR
from raytag.errors import RaytagError
from raytag.onnx_tagger import RUNTIME, OnnxTransformerTagger
from raytag.registry import ModelVersion, Registry

__all__ = ["OPSET", "QUANTIZATIONS", "ExportError", "export_onnx", "register_onnx_variant", "variant_alias"]

# 17 is the first opset with a fused LayerNormalization, which every BERT-style encoder uses.
OPSET = 17
QUANTIZATIONS = ("int8",)
_AXES = {0: "batch", 1: "sequence"}
# The model kind whose artifacts this exporter reads: the kind its runtime tagger serves.
SOURCE_KIND = OnnxTransformerTagger.kind


class ExportError(RaytagError):
    """The model cannot be exported as asked (wrong kind, already exported, bad option)."""


def variant_alias(quantize: str | None) -> str:
    """The alias a variant is published under: ``onnx`` or ``onnx-<quantization>``."""
    return RUNTIME if quantize is None else f"{RUNTIME}-{quantize}"


def _model_inputs(model: Any) -> list[str]:
    import inspect

    accepted = inspect.signature(model.forward).parameters
    return [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted]


def _torch_export(model_dir: Path, out: Path, opset: int) -> list[str]:
    """``torch.onnx.export`` of the token classifier with dynamic batch and sequence axes."""
    import torch
    from transformers import AutoModelForTokenClassification

    # Eager attention traces to plain ops; the fused SDPA kernels do not all have ONNX forms.
    model = AutoModelForTokenClassification.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    names = _model_inputs(model)

    class Logits(torch.nn.Module):
        """Positional inputs in ``names`` order, the logits tensor out (no ModelOutput)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, args, strict=True))).logits

    example = torch.tensor([[model.config.pad_token_id or 0] * 4, [model.config.pad_token_id or 0] * 4])
    args = tuple(torch.ones_like(example) if n == "attention_mask" else example for n in names)
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter warns that it is deprecated and about traced shape
        # arithmetic; both are expected and the test suite checks the numbers instead.
        warnings.simplefilter("ignore")
        torch.onnx.export(Logits(), args, str(out), dynamo=False, opset_version=opset, input_names=names,
                          output_names=["logits"], dynamic_axes={n: _AXES for n in [*names, "logits"]})
    return names


def _quantize(src: Path, out: Path, quantize: str) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    if quantize != "int8":
        raise ExportError(f"unknown quantization {quantize!r}; choose from {', '.join(QUANTIZATIONS)}")
    # quantize_dynamic logs a hint about shape-inference preprocessing at WARNING; dynamic
    # int8 of MatMul weights does not need it.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def export_onnx(source_dir: Path, out: Path, quantize: str | None = None, opset: int = OPSET,
                source: dict[str, Any] | None = None) -> Path:
    """Write the ONNX runtime artifact of the transformer artifact ``source_dir`` into ``out``."""
    from raytag.models.transformer import load_tokenizer

    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantize!r}; choose from {', '.join(QUANTIZATIONS)}")
    if opset < 17:
        raise ExportError(f"opset {opset} is too old; use 17 or later")
    meta = json.loads((source_dir / TAGGER_FILE).read_text(encoding="utf-8"))
    if meta.get("runtime") is not None:
        raise ExportError(f"{source_dir} is already a {meta['runtime']!r} runtime variant; export its source")
    if meta.get("kind") != SOURCE_KIND:
        raise ExportError(f"only transformer taggers can be exported to ONNX; {source_dir} is {meta.get('kind')!r}")
    model_dir = source_dir / meta.get("model_dir", TRANSFORMER_MODEL_DIR)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = out / ONNX_MODEL_FILE if quantize is None else Path(tmp) / ONNX_MODEL_FILE
        inputs = _torch_export(model_dir, fp32, opset)
        if quantize is not None:
            _quantize(fp32, out / ONNX_MODEL_FILE, quantize)
    load_tokenizer(model_dir).save_pretrained(str(out / ONNX_TOKENIZER_DIR))
    keep = ("kind", "labels", "entity", "constrained_decoding", "max_length", "stride", "casing", "context")
    variant = {k: meta[k] for k in keep if k in meta}
    variant.update(runtime=RUNTIME, quantize=quantize, opset=opset, inputs=inputs, source=source or {})
    (out / TAGGER_FILE).write_text(json.dumps(variant, indent=2), encoding="utf-8")
    return out


def _files_digest(files: dict[str, Any]) -> str:
    """One sha256 over the source manifest's file checksums: names the exact weights exported."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def register_onnx_variant(registry: Registry, ref: str, quantize: str | None = None,
                          opset: int = OPSET) -> ModelVersion:
    """Export ``ref`` (a transformer tagger version) to ONNX and publish it under ``variant_alias``."""
    version = registry.resolve(ref)
    if version.kind != SOURCE_KIND:
        raise ExportError(f"{version.ref} is a {version.kind!r} tagger; only transformer taggers export to ONNX")
    source_dir = registry.fetch(version.ref)
    source = {"ref": version.ref, "version": version.version, "files_sha256": _files_digest(version.manifest["files"])}
    with tempfile.TemporaryDirectory() as tmp:
        artifact = export_onnx(source_dir, Path(tmp) / "artifact", quantize, opset, source)
        config = {"runtime": RUNTIME, "quantize": quantize, "opset": opset, "source": version.ref,
                  "source_config": version.manifest.get("config", {})}
        # Source metrics would be wrong for int8 and unchecked for fp32: the variant starts
        # with none (bench/onnx_speed.py measures its test F1).
        return registry.publish(version.name, artifact, kind=version.kind, labels=version.labels, metrics={},
                                config=config, data_fingerprint=version.manifest.get("data_fingerprint", ""),
                                aliases=[variant_alias(quantize)], data=version.manifest.get("data"))
