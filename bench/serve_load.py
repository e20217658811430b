"""Load benchmark of the HTTP endpoint against Ray Serve's own floor and in-process prediction,
and the BiLSTM against spaCy.

    python bench/serve_load.py endpoint conll03_bilstm conll03_transformer --prepared runs/conll03_bilstm/prepared
    python bench/serve_load.py spacy conll03_bilstm --prepared runs/conll03_bilstm/prepared

``endpoint``, in one local Ray session (2 CPUs) on this machine, loopback only, every load bounded:

- the floor: a no-op Serve app (FastAPI ingress, JSON in, a fixed JSON answer out) with the
  same replicas, one sentence per request at each concurrency level;
- per model: in-process batched ``Tagger.predict`` (the baseline); the endpoint served the
  way ``raytag serve`` serves one model, one sentence per request at each level with batching
  on (``max_batch_size`` 32) and off (1), and 32 texts per request at concurrency 4;
- per model: an overload run, open loop at twice the sustained single-sentence rate, counting
  200 / 503 / no answer within the client timeout, and the p99 of accepted requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
KEY = os.environ.setdefault("RAYTAG_API_KEYS", secrets.token_urlsafe(16)).split(",")[0]
HEADERS = {"Authorization": f"Bearer {KEY}"}
PORT = 18765
PATH = "/v1/models/m/tag"


def _texts(prepared: str, limit: int) -> list[str]:
    from raytag.corpus.prepared import PreparedCorpus

    tokens = PreparedCorpus(prepared).table("test", columns=["tokens"]).column("tokens").to_pylist()
    return [" ".join(t) for t in tokens if t][:limit]


def _words(texts: list[str]) -> int:
    return sum(len(t.split()) for t in texts)


def in_process(ref: str, registry: str, texts: list[str]) -> float:
    from raytag.tagger import load_tagger

    tagger = load_tagger(ref, registry, device="cpu")
    tagger.predict(texts[:64], batch_size=32)
    t0 = time.perf_counter()
    tagger.predict(texts, batch_size=32)
    return _words(texts) / (time.perf_counter() - t0)


def in_process_requests(ref: str, registry: str, batches: list[list[str]]) -> float:
    """Words/s of in-process ``predict`` called once per request's texts, one after another."""
    from raytag.tagger import load_tagger

    tagger = load_tagger(ref, registry, device="cpu")
    tagger.predict(batches[0], batch_size=32)
    t0 = time.perf_counter()
    for texts in batches:
        tagger.predict(texts, batch_size=32)
    return sum(_words(t) for t in batches) / (time.perf_counter() - t0)


def _summary(latencies: list[float], seconds: float, codes: dict[int, int], words: int) -> dict:
    latencies = sorted(latencies) or [0.0]
    ok = codes.get(200, 0)
    return {"requests_per_s": ok / seconds, "words_per_s": words / seconds,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], "codes": codes}


def _body(texts: list[str]) -> bytes:
    return json.dumps({"text": texts[0]} if len(texts) == 1 else {"texts": texts}).encode()


async def closed_loop(batches: list[list[str]], concurrency: int) -> dict:
    """``concurrency`` clients, each sending its next request when the last one answered."""
    from loadgen import Client

    latencies: list[float] = []
    codes: dict[int, int] = {}
    client = Client("127.0.0.1", PORT, concurrency, HEADERS)
    queue = [(client.request(PATH, _body(texts)), _words(texts)) for texts in batches]
    words = 0

    async def client_loop() -> None:
        nonlocal words
        while queue:
            request, count = queue.pop()
            t0 = time.perf_counter()
            r = await client.post(request, timeout=60)
            latencies.append(time.perf_counter() - t0)
            codes[r.status] = codes.get(r.status, 0) + 1
            if r.status == 200:
                words += count

    t0 = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    await client.close()
    return _summary(latencies, seconds, codes, words)


async def open_loop(texts: list[str], rate: float, seconds: float, timeout: float = 20.0) -> dict:
    """Requests sent at a fixed ``rate`` whatever the answers (overload), bounded to ``seconds``."""
    from loadgen import Client

    accepted: list[float] = []
    refused: list[float] = []
    codes: dict[int | str, int] = {}
    retry_after: set[str | None] = set()
    client = Client("127.0.0.1", PORT, 1024, HEADERS)
    requests = [client.request(PATH, _body([t])) for t in texts]

    async def one(request: bytes) -> None:
        t0 = time.perf_counter()
        try:
            r = await client.post(request, timeout)
            key: int | str = r.status
            if r.status == 200:
                accepted.append(time.perf_counter() - t0)
            else:
                refused.append(time.perf_counter() - t0)
                retry_after.add(r.headers.get("retry-after"))
        except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
            key = "no answer"
        codes[key] = codes.get(key, 0) + 1

    tasks = []
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        tasks.append(asyncio.create_task(one(requests[i % len(requests)])))
        i += 1
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
    sent_s = time.perf_counter() - t0
    await asyncio.gather(*tasks)
    await client.close()
    accepted.sort()
    refused.sort()

    def pct(values: list[float], q: float) -> float | None:
        return 1000 * values[int(q * (len(values) - 1))] if values else None

    return {"offered_per_s": rate, "achieved_send_per_s": i / sent_s, "sent": i, "codes": codes,
            "accepted_p50_ms": pct(accepted, 0.5), "accepted_p99_ms": pct(accepted, 0.99),
            "refused_p50_ms": pct(refused, 0.5), "refused_p99_ms": pct(refused, 0.99),
            "retry_after": sorted(str(v) for v in retry_after)}


def _deploy_floor(replicas: int) -> None:
    from ray import serve

    from floor_app import Floor  # a module of its own: FastAPI needs its route types at runtime

    serve.run(Floor.options(num_replicas=replicas).bind(), name="floor", route_prefix="/")


def _deploy_model(ref: str, registry: str, replicas: int, batch: int) -> None:
    from raytag.serving.deploy import app_config, deploy

    # Batching off (batch 1) keeps the admission limits that batching on derives from 32.
    model = {"name": "m", "ref": ref, "max_batch_size": batch, "num_cpus": 0,
             "max_ongoing_requests": 128, "max_queued_requests": 32,
             "autoscaling": {"min_replicas": replicas, "max_replicas": replicas}}
    deploy(app_config({"registry_root": registry, "models": [model], "max_text_chars": 100000}, port=PORT))


def endpoint(refs: list[str], registry: str, prepared: str, requests: int, levels: list[int],
             replicas: int, overload_s: float) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    import cloudpickle
    import ray
    from ray import serve

    import floor_app

    # Replicas cannot import bench/ modules: ship this one by value.
    cloudpickle.register_pickle_by_value(floor_app)
    texts = _texts(prepared, max(requests, 1000))
    singles = [[t] for t in texts[:requests]]
    thirty_twos = [texts[i : i + 32] for i in range(0, 32 * 40, 32)]
    out: dict = {"replicas": replicas, "requests_per_level": requests}
    ray.init(address="local", num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1",
             logging_level="ERROR", log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    try:
        _deploy_floor(replicas)
        asyncio.run(closed_loop(singles[:50], 4))  # warm-up
        out["floor"] = {f"c{c}": asyncio.run(closed_loop(singles, c)) for c in levels}
        out["floor"]["texts32_c2"] = asyncio.run(closed_loop(thirty_twos, 2))
        out["floor"]["texts32_c4"] = asyncio.run(closed_loop(thirty_twos, 4))
        serve.delete("floor")
        for ref in refs:
            result: dict = {"in_process_batched_words_per_s": in_process(ref, registry, texts)}
            for label, batch in (("batching_off", 1), ("batching_on", 32)):
                _deploy_model(ref, registry, replicas, batch)
                asyncio.run(closed_loop(singles[:50], 4))  # warm-up
                result[label] = {f"c{c}": asyncio.run(closed_loop(singles, c)) for c in levels}
            # Still deployed with batching on (the default).
            result["texts32_c2"] = asyncio.run(closed_loop(thirty_twos, 2))
            result["texts32_c4"] = asyncio.run(closed_loop(thirty_twos, 4))
            result["in_process_same_requests_words_per_s"] = in_process_requests(ref, registry, thirty_twos)
            sustained = max(v["requests_per_s"] for v in result["batching_on"].values())
            result["overload"] = asyncio.run(open_loop(texts, 2 * sustained, overload_s))
            serve.delete("raytag")
            top = max(levels)
            result["ratios"] = {
                f"single_c{top}_req_over_floor": result["batching_on"][f"c{top}"]["requests_per_s"]
                / out["floor"][f"c{top}"]["requests_per_s"],
                "texts32_c4_words_over_in_process": result["texts32_c4"]["words_per_s"]
                / result["in_process_batched_words_per_s"],
                "texts32_best_words_over_in_process_same_requests": max(
                    result["texts32_c2"]["words_per_s"], result["texts32_c4"]["words_per_s"])
                / result["in_process_same_requests_words_per_s"],
            }
            out[ref] = result
            print(json.dumps({ref: result}), file=sys.stderr, flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    return out


def spacy_vs_bilstm(ref: str, registry: str, prepared: str, steps: int) -> dict:
    import spacy

    from raytag.corpus.prepared import PreparedCorpus
    from raytag.tagger import load_tagger
    from spacy_util import train_ner, write_docbin

    corpus = PreparedCorpus(prepared)
    work = Path(tempfile.mkdtemp(prefix="spacy-"))
    for split in ("train", "dev"):
        table = corpus.table(split, columns=["tokens", "tags"])
        write_docbin(zip(table.column("tokens").to_pylist(), table.column("tags").to_pylist()),
                     work / f"{split}.spacy")
    # Throughput only: no evaluation after step 0, and the last model.
    trained = train_ner(work, work / "train.spacy", work / "dev.spacy", steps, eval_frequency=1000000)
    train_s = trained.seconds
    texts = _texts(prepared, 100000)
    words = _words(texts)
    spacy_nlp = spacy.load(trained.last)
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
    parser.add_argument("--replicas", type=int, default=2, help="Replicas per model (raytag serve's default: 2).")
    parser.add_argument("--overload-seconds", type=float, default=30.0)
    parser.add_argument("--spacy-steps", type=int, default=1000)
    args = parser.parse_args()
    if args.command == "endpoint":
        result = endpoint(args.refs, args.registry, args.prepared, args.requests,
                          [int(c) for c in args.levels.split(",")], args.replicas, args.overload_seconds)
    else:
        result = spacy_vs_bilstm(args.refs[0], args.registry, args.prepared, args.spacy_steps)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
