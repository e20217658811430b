"""ONNX Runtime vs PyTorch on CPU for a registered transformer tagger: words/s and test F1.

    python bench/onnx_speed.py <transformer ref> <prepared dir> [--registry runs/registry]
        [--limit 2000] [--batch-size 32] [--threads 2]

Exports the ``onnx`` (fp32) and ``onnx-int8`` variants of the ref first when the
registry has none made from that exact version. Each runtime is measured in its own
fresh subprocess with the same thread count: a warm-up, then ``predict`` over the first
``--limit`` test sentences (words/s, best of ``--repeats``), then test-split metrics
through ``raytag.artifact.evaluate_tagger``. Run inside the loopback namespace like the
other benchmarks; results go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from common import child

ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1",
       "PYTHONUNBUFFERED": "1", "TRANSFORMERS_VERBOSITY": "error"}
SIDES = {"torch-fp32": None, "onnx-fp32": "onnx", "onnx-int8": "onnx-int8"}


def variant_refs(ref: str, registry_root: str) -> dict[str, str]:
    """``{side: pinned ref}``, exporting a variant when its alias is missing or from another version."""
    from raytag.onnx_export import register_onnx_variant
    from raytag.registry import ModelNotFoundError, Registry

    registry = Registry(registry_root)
    source = registry.resolve(ref)
    refs = {}
    for side, alias in SIDES.items():
        if alias is None:
            refs[side] = source.ref
            continue
        try:
            variant = registry.resolve(f"{source.name}@{alias}")
            current = variant.manifest.get("config", {}).get("source") == source.ref
        except ModelNotFoundError:
            current = False
        if not current:
            variant = register_onnx_variant(registry, source.ref, "int8" if alias.endswith("int8") else None)
        refs[side] = variant.ref
    return refs


def measure(ref: str, prepared: str, registry: str, limit: int, batch_size: int, threads: int,
            repeats: int) -> dict:
    """One runtime, in this process: words/s of predict and the test-split metrics."""
    import torch

    from raytag.artifact import evaluate_tagger, headline_metrics
    from raytag.corpus.prepared import PreparedCorpus
    from raytag.onnx_tagger import OnnxTransformerTagger
    from raytag.tagger import load_tagger

    # The same cores for both runtimes: torch's intra-op pool, and onnxruntime's own.
    torch.set_num_threads(threads)
    tagger = load_tagger(ref, registry, device="cpu")
    if isinstance(tagger, OnnxTransformerTagger):
        tagger = OnnxTransformerTagger(tagger.directory, "cpu", threads=threads)
    corpus = PreparedCorpus(prepared)
    tokens = corpus.table("test", columns=["tokens"]).column("tokens").to_pylist()[:limit]
    words = sum(len(t) for t in tokens)
    tagger.predict(tokens[: max(batch_size, 64)], batch_size=batch_size)  # warm-up: allocators, kernels
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        tagger.predict(tokens, batch_size=batch_size)
        best = min(best, time.perf_counter() - t0)
    report = evaluate_tagger(tagger, corpus, "test")
    return {"ref": ref, "sentences": len(tokens), "words": words, "seconds": best, "words_per_s": words / best,
            **headline_metrics(report, "test")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ref")
    parser.add_argument("prepared")
    parser.add_argument("--registry", default="runs/registry")
    parser.add_argument("--limit", type=int, default=2000, help="test sentences timed (metrics use all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    # common.child runs this script as ``_measure <ref> <prepared> <options>`` in a fresh process.
    child_run = sys.argv[1:2] == ["_measure"]
    args = parser.parse_args(sys.argv[2:] if child_run else sys.argv[1:])
    if child_run:
        result = measure(args.ref, args.prepared, args.registry, args.limit, args.batch_size, args.threads,
                         args.repeats)
        print("RESULT " + json.dumps(result))
        return
    refs = variant_refs(args.ref, args.registry)
    options = ["--registry", args.registry, "--limit", str(args.limit), "--batch-size", str(args.batch_size),
               "--threads", str(args.threads), "--repeats", str(args.repeats)]
    results = {side: child(__file__, "measure", [ref, args.prepared, *options], ENV) for side, ref in refs.items()}
    base = results["torch-fp32"]["words_per_s"]
    for side, r in results.items():
        r["speedup_vs_torch"] = r["words_per_s"] / base
        f1 = r.get("test_f1", r["test_score"])
        print(f"{side:11s} {r['ref']:>24s}  {r['words_per_s']:9.0f} words/s  x{r['speedup_vs_torch']:.2f}  "
              f"test F1/score {f1:.4f}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
