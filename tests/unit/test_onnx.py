"""The ONNX runtime variant of transformer taggers: export, registry record, parity with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from raytag.artifact_files import ONNX_MODEL_FILE, TAGGER_FILE
from raytag.cli import app
from raytag.devices import DeviceError
from raytag.models import transformer
from raytag.onnx_export import ExportError, export_onnx, register_onnx_variant
from raytag.onnx_tagger import OnnxTransformerTagger, onnx_providers
from raytag.registry import ChecksumError, Registry, sha256_file
from raytag.tagger import TransformerTagger, load_tagger
from tests.helpers import NER_LABELS, publish_transformer

TEXTS = [
    "my name is wolfgang and i live in berkeley california",
    "Wolfgang lives in Berkeley .",
    "",
    # Over 16 subwords: tagged through several windows.
    " ".join(["my name is wolfgang and i live in berkeley california"] * 4),
    "unknownword xyz , california",
]
FP32_TOLERANCE = 1e-4
# Dynamic int8 rounds every weight matrix; on the tiny random model probabilities move by
# about 1e-3, far less than this.
INT8_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("registry")
    source = publish_transformer(root, "tiny", tmp_path_factory.mktemp("work"), max_length=16)
    registry = Registry(str(root))
    fp32 = register_onnx_variant(registry, "tiny@v1")
    int8 = register_onnx_variant(registry, "tiny", quantize="int8")
    return {"root": root, "registry": registry, "source": source, "fp32": fp32, "int8": int8}


def _sentences() -> list[list[str]]:
    return [t.split() for t in TEXTS]


def test_fp32_onnx_matches_torch_probabilities_tags_and_entities(exported) -> None:
    root = str(exported["root"])
    torch_tagger = load_tagger("tiny@v1", root, device="cpu")
    onnx_tagger = load_tagger("tiny@onnx", root, device="cpu")
    assert isinstance(torch_tagger, TransformerTagger) and isinstance(onnx_tagger, OnnxTransformerTagger)
    assert onnx_tagger.labels == torch_tagger.labels and onnx_tagger.device == "cpu"
    # The long text really is windowed, so the window/ownership path is what is compared.
    windows = transformer.encode_sentences(onnx_tagger.tokenizer, _sentences(), None, 16, 2)
    assert sum(w.sentence == 3 for w in windows) > 1
    expected = transformer.word_probabilities(torch_tagger.model, torch_tagger.tokenizer, _sentences(), 16, 2)
    got = onnx_tagger.word_probabilities(_sentences(), batch_size=2)
    for e, g, words in zip(expected, got, _sentences(), strict=True):
        assert g.shape == e.shape == (len(words), len(NER_LABELS))
        np.testing.assert_allclose(g, e, atol=FP32_TOLERANCE, rtol=0)
    ours, theirs = onnx_tagger.predict(TEXTS), torch_tagger.predict(TEXTS)
    for a, b in zip(ours, theirs, strict=True):
        assert a.tags == b.tags
        assert [(e.entity_group, e.word, e.start, e.end) for e in a.entities] == [
            (e.entity_group, e.word, e.start, e.end) for e in b.entities]
        assert [e.score for e in a.entities] == pytest.approx([e.score for e in b.entities], abs=FP32_TOLERANCE)
        assert [t.score for t in a.tokens] == pytest.approx([t.score for t in b.tokens], abs=FP32_TOLERANCE)
    assert ours[2].tokens == [] and len(ours[3].tokens) == 40
    # A random model still predicts more than one tag here, so equal tags are not trivially equal.
    assert len({tag for s in theirs for tag in s.tags}) > 1


def test_int8_variant_loads_and_stays_close_to_fp32(exported) -> None:
    root = str(exported["root"])
    torch_tagger = load_tagger("tiny@v1", root, device="cpu")
    int8 = load_tagger("tiny@onnx-int8", root, device="cpu")
    assert isinstance(int8, OnnxTransformerTagger) and int8.quantize == "int8"
    expected = transformer.word_probabilities(torch_tagger.model, torch_tagger.tokenizer, _sentences(), 16, 2)
    got = int8.word_probabilities(_sentences())
    for e, g in zip(expected, got, strict=True):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, atol=INT8_TOLERANCE, rtol=0)
    results = int8.predict(TEXTS)
    assert [len(s.tokens) for s in results] == [len(t.split()) for t in TEXTS]
    assert {tag for s in results for tag in s.tags} <= set(NER_LABELS)
    # Quantized weights really are smaller: the variant is not an fp32 copy.
    fp32_dir, int8_dir = (exported["registry"].fetch(f"tiny@{a}") for a in ("onnx", "onnx-int8"))
    assert (int8_dir / ONNX_MODEL_FILE).stat().st_size < (fp32_dir / ONNX_MODEL_FILE).stat().st_size


def test_onnx_reads_document_context_as_the_torch_tagger_does(exported, tmp_path: Path) -> None:
    import shutil

    from raytag.models.doc_context import flatten_documents, sentence_contexts

    registry: Registry = exported["registry"]
    taggers = []
    for alias in ("v1", "onnx"):
        # Copies of both artifacts, marked as trained with 4 words of document context.
        copy = Path(shutil.copytree(registry.fetch(f"tiny@{alias}"), tmp_path / alias))
        meta = json.loads((copy / TAGGER_FILE).read_text())
        (copy / TAGGER_FILE).write_text(json.dumps({**meta, "context": 4}))
        taggers.append(load_tagger(copy, device="cpu"))
    torch_tagger, onnx_tagger = taggers
    assert isinstance(onnx_tagger, OnnxTransformerTagger) and onnx_tagger.context == torch_tagger.context == 4
    documents = [_sentences()[:2], _sentences()[3:]]
    sentences, keys = flatten_documents(documents)
    contexts = sentence_contexts(sentences, keys, 4)
    expected = transformer.word_probabilities(torch_tagger.model, torch_tagger.tokenizer, sentences, 16, 2,
                                              contexts=contexts)
    got = onnx_tagger.word_probabilities(sentences, batch_size=2, contexts=contexts)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(g, e, atol=FP32_TOLERANCE, rtol=0)
    ours, theirs = onnx_tagger.predict_documents(documents), torch_tagger.predict_documents(documents)
    assert [len(d) for d in ours] == [2, 2]
    assert [[s.tags for s in d] for d in ours] == [[s.tags for s in d] for d in theirs]
    assert [t.score for d in ours for s in d for t in s.tokens] == pytest.approx(
        [t.score for d in theirs for s in d for t in s.tokens], abs=FP32_TOLERANCE)


def test_registry_records_variants_with_checksums_aliases_and_source(exported) -> None:
    registry: Registry = exported["registry"]
    fp32, int8 = exported["fp32"], exported["int8"]
    assert (fp32.version, int8.version) == (2, 3)
    assert registry.aliases("tiny") == {"latest": 1, "onnx": 2, "onnx-int8": 3}
    for variant, quantize in ((fp32, None), (int8, "int8")):
        artifact = registry.fetch(variant.ref)
        assert variant.manifest["files"][ONNX_MODEL_FILE]["sha256"] == sha256_file(artifact / ONNX_MODEL_FILE)
        assert variant.manifest["config"]["source"] == "tiny@v1" and variant.kind == "transformer"
        meta = json.loads((artifact / TAGGER_FILE).read_text())
        assert meta["runtime"] == "onnx" and meta["quantize"] == quantize and meta["opset"] >= 17
        assert (meta["max_length"], meta["stride"], meta["labels"]) == (16, 2, NER_LABELS)
        assert meta["source"]["ref"] == "tiny@v1" and len(meta["source"]["files_sha256"]) == 64
        assert set(meta["inputs"]) >= {"input_ids", "attention_mask"}
    # ``name`` alone still loads the PyTorch source.
    assert isinstance(load_tagger("tiny", str(exported["root"]), device="cpu"), TransformerTagger)


def test_a_changed_onnx_file_fails_the_checksum(exported, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "registry"
    shutil.copytree(exported["root"], copy)
    model = copy / "tiny" / "v2" / "artifact" / ONNX_MODEL_FILE
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    with pytest.raises(ChecksumError, match=ONNX_MODEL_FILE):
        load_tagger("tiny@onnx", str(copy), device="cpu")


def _publish_bilstm_stub(registry: Registry, name: str, tmp: Path) -> None:
    """A registered non-transformer version (its files are never read: the kind is refused first)."""
    fake = tmp / "artifact"
    fake.mkdir()
    (fake / TAGGER_FILE).write_text(json.dumps({"kind": "bilstm", "labels": NER_LABELS}))
    registry.publish(name, fake, kind="bilstm", labels=NER_LABELS, metrics={}, config={}, data_fingerprint="x")


def test_only_transformer_sources_export(exported, tmp_path: Path) -> None:
    registry: Registry = exported["registry"]
    _publish_bilstm_stub(registry, "lstm", tmp_path)
    with pytest.raises(ExportError, match="'bilstm' tagger; only transformer taggers"):
        register_onnx_variant(registry, "lstm")
    with pytest.raises(ExportError, match="already a 'onnx' runtime variant"):
        register_onnx_variant(registry, "tiny@onnx")
    with pytest.raises(ExportError, match="unknown quantization"):
        export_onnx(registry.fetch("tiny@v1"), tmp_path / "out", quantize="int4")


def test_cli_export_registers_and_reports_errors(exported, tmp_path: Path) -> None:
    root = str(exported["root"])
    _publish_bilstm_stub(exported["registry"], "lstm-cli", tmp_path)
    runner = CliRunner()
    bad = runner.invoke(app, ["export", "lstm-cli", "--format", "onnx", "--registry", root])
    assert bad.exit_code == 2 and "error:" in bad.output and "only transformer taggers" in bad.output
    ok = runner.invoke(app, ["export", "tiny@v1", "--format", "onnx", "--registry", root])
    assert ok.exit_code == 0, ok.output
    assert "tiny@onnx" in ok.output
    assert Registry(root).resolve("tiny@onnx").version == max(v.version for v in Registry(root).list_versions("tiny"))
    listing = runner.invoke(app, ["models", "list", "--registry", root])
    assert listing.exit_code == 0 and "(onnx int8)" in listing.output and "(onnx)" in listing.output


def test_unknown_runtime_is_refused(tmp_path: Path) -> None:
    (tmp_path / TAGGER_FILE).write_text(json.dumps({"kind": "transformer", "runtime": "tensorrt"}))
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        load_tagger(tmp_path, device="cpu")


def test_devices_map_to_execution_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    import raytag.onnx_tagger as onnx_tagger

    cpu_only = ["CPUExecutionProvider"]
    assert onnx_providers("auto", cpu_only) == ("cpu", ["CPUExecutionProvider"])
    with pytest.raises(DeviceError, match="no CUDAExecutionProvider"):
        onnx_providers("cuda", cpu_only)
    monkeypatch.setattr(onnx_tagger, "_cuda_gpus", lambda: 2)
    with_cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cuda:1", with_cuda) == (
        "cuda:1", [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"])
    assert onnx_providers("cpu", with_cuda) == ("cpu", ["CPUExecutionProvider"])
    monkeypatch.setattr(onnx_tagger, "_cuda_gpus", lambda: 0)
    assert onnx_providers("auto", with_cuda)[0] == "cpu"


def test_a_serve_replica_loads_and_serves_the_int8_variant(exported) -> None:
    """What a replica does with ``ref: <name>@onnx-int8``: load it through the registry, tag with it."""
    import asyncio

    from raytag.onnx_tagger import OnnxTransformerTagger
    from raytag.serving.settings import ModelDeployment
    from raytag.serving.slot import ModelSlot
    from raytag.serving.metrics import SlotMetrics
    from tests.unit.test_serve_metrics import FakeFactory

    root = str(exported["root"])
    slot = ModelSlot(ModelDeployment(name="tiny", ref="tiny@onnx-int8", device="cpu").runtime(root), "tiny",
                     SlotMetrics("tiny", FakeFactory()))
    batched = ModelSlot._tag.__wrapped__  # @serve.batch needs a replica context; call the batch body

    async def one_batch(chunk: list[str]) -> tuple[int, list[dict]]:
        [answer] = await batched(slot, [chunk])
        return answer

    texts = ["Ada lives in Paris .", "Grace left Oslo ."]

    async def scenario() -> tuple[int, list[dict]]:
        await slot.reconfigure(None)
        slot._tag = one_batch
        return await slot.tag(texts, True)

    version, results = asyncio.run(scenario())
    assert isinstance(slot.tagger, OnnxTransformerTagger) and slot.info()["ref_resolved"] == "tiny@v3"
    direct = load_tagger("tiny@onnx-int8", root, device="cpu").predict(texts)
    assert version == 3 and results == [{"entities": d.to_dict()["entities"], "tokens": d.to_dict(with_tokens=True)[
        "tokens"]} for d in direct]
