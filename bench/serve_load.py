"""Load benchmark of the HTTP endpoint against in-process prediction, and the BiLSTM against spaCy.

    python bench/serve_load.py endpoint conll03_bilstm conll03_transformer --prepared runs/conll03_bilstm/prepared
    python bench/serve_load.py spacy conll03_bilstm --prepared runs/conll03_bilstm/prepared

``endpoint``: for each model, in one Ray session on this machine: words/s of in-process batched
``Tagger.predict`` (the baseline), then of the Serve endpoint at fixed client concurrency (one
sentence per request, so the replica's ``@serve.batch`` has to do the grouping), with batching on
and off; p50/p99 latency per level. Bounded: ``--requests`` per level, 60 s client timeout.
Loopback only. ``spacy``: words/s of the BiLSTM Tagger vs a spaCy ``ner`` pipeline
(``spacy init config --optimize efficiency``) trained on the same CoNLL-2003 training split
(``--spacy-steps`` optimiser steps), both on the same test texts in the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
KEY = os.environ.setdefault("RAYTAG_API_KEYS", secrets.token_urlsafe(16)).split(",")[0]
PORT = 18765


def _texts(prepared: str, limit: int) -> list[str]:
    from raytag.corpus.prepared import PreparedCorpus

    tokens = PreparedCorpus(prepared).table("test", columns=["tokens"]).column("tokens").to_pylist()
    return [" ".join(t) for t in tokens if t][:limit]


def _words(texts: list[str]) -> int:
    return sum(len(t.split()) for t in texts)


def in_process(ref: str, registry: str, texts: list[str]) -> float:
    from raytag.tagger import load_tagger

    tagger = load_tagger(ref, registry)
    tagger.predict(texts[:64], batch_size=32)
    t0 = time.perf_counter()
    tagger.predict(texts, batch_size=32)
    return _words(texts) / (time.perf_counter() - t0)


async def _load(url: str, texts: list[str], concurrency: int, requests: int) -> dict:
    import httpx

    latencies: list[float] = []
    codes: dict[int, int] = {}
    queue = list(texts[:requests])
    words = 0

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal words
        while queue:
            text = queue.pop()
            t0 = time.perf_counter()
            r = await client.post(url, json={"text": text}, headers={"Authorization": f"Bearer {KEY}"})
            latencies.append(time.perf_counter() - t0)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code == 200:
                words += len(text.split())

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - t0
    latencies.sort()
    return {"words_per_s": words / seconds, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], "codes": codes}


def endpoint(refs: list[str], registry: str, prepared: str, requests: int, levels: list[int]) -> dict:
    import ray
    from ray import serve

    from raytag.serving.deploy import app_config, deploy

    texts = _texts(prepared, max(requests, 1000))
    out: dict = {}
    ray.init(address="local", num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1",
             logging_level="ERROR", log_to_driver=False)
    try:
        for ref in refs:
            name = ref.split("@")[0]
            result = {"in_process_batched_words_per_s": in_process(ref, registry, texts)}
            for label, batch in (("batching_on", 32), ("batching_off", 1)):
                model = {"name": name, "ref": ref, "max_batch_size": batch, "batch_wait_timeout_s": 0.005,
                         "num_cpus": 1, "max_ongoing_requests": 64, "max_queued_requests": 1024}
                deploy(app_config({"registry_root": registry, "models": [model], "max_text_chars": 100000},
                                  port=PORT))
                url = f"http://127.0.0.1:{PORT}/v1/models/{name}/tag"
                asyncio.run(_load(url, texts, 4, 40))  # warm-up
                result[label] = {f"c{c}": asyncio.run(_load(url, texts, c, requests)) for c in levels}
                serve.delete("raytag")
            best = max(v["words_per_s"] for v in result["batching_on"].values())
            result["endpoint_best_over_in_process"] = best / result["in_process_batched_words_per_s"]
            out[ref] = result
    finally:
        serve.shutdown()
        ray.shutdown()
    return out


def spacy_vs_bilstm(ref: str, registry: str, prepared: str, steps: int) -> dict:
    import spacy
    from spacy.tokens import Doc, DocBin

    from raytag.corpus.prepared import PreparedCorpus
    from raytag.tagger import load_tagger

    corpus = PreparedCorpus(prepared)
    work = Path(tempfile.mkdtemp(prefix="spacy-"))
    nlp = spacy.blank("en")
    for split in ("train", "dev"):
        table = corpus.table(split, columns=["tokens", "tags"])
        bin_ = DocBin()
        for words, tags in zip(table.column("tokens").to_pylist(), table.column("tags").to_pylist()):
            bin_.add(Doc(nlp.vocab, words=words, ents=tags))
        bin_.to_disk(work / f"{split}.spacy")
    python = sys.executable
    subprocess.run([python, "-m", "spacy", "init", "config", str(work / "config.cfg"), "--lang", "en",
                    "--pipeline", "ner", "--optimize", "efficiency", "--force"], check=True, capture_output=True)
    t0 = time.perf_counter()
    subprocess.run([python, "-m", "spacy", "train", str(work / "config.cfg"), "--output", str(work / "out"),
                    "--paths.train", str(work / "train.spacy"), "--paths.dev", str(work / "dev.spacy"),
                    f"--training.max_steps={steps}", "--training.eval_frequency=1000000"],
                   check=True, capture_output=True)
    train_s = time.perf_counter() - t0
    texts = _texts(prepared, 100000)
    words = _words(texts)
    spacy_nlp = spacy.load(work / "out" / "model-last")
    list(spacy_nlp.pipe(texts[:200]))
    t0 = time.perf_counter()
    list(spacy_nlp.pipe(texts, batch_size=256))
    spacy_wps = words / (time.perf_counter() - t0)
    tagger = load_tagger(ref, registry)
    tagger.predict(texts[:200], batch_size=256)
    t0 = time.perf_counter()
    tagger.predict(texts, batch_size=256)
    ours = words / (time.perf_counter() - t0)
    return {"texts": len(texts), "words": words, "spacy_train_steps": steps, "spacy_train_s": train_s,
            "spacy_words_per_s": spacy_wps, "bilstm_words_per_s": ours, "bilstm_over_spacy": ours / spacy_wps,
            "spacy_version": spacy.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["endpoint", "spacy"])
    parser.add_argument("refs", nargs="+")
    parser.add_argument("--registry", default="runs/registry")
    parser.add_argument("--prepared", required=True)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--spacy-steps", type=int, default=1000)
    args = parser.parse_args()
    if args.command == "endpoint":
        result = endpoint(args.refs, args.registry, args.prepared, args.requests,
                          [int(c) for c in args.levels.split(",")])
    else:
        result = spacy_vs_bilstm(args.refs[0], args.registry, args.prepared, args.spacy_steps)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
