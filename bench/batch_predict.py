"""Batch prediction throughput: in-process ``Tagger.predict`` vs ``raytag predict --out`` with 1 and 2 actors.

    python bench/batch_predict.py <model ref or artifact dir> <input files...> [--registry runs/registry]
        [--copies 20] [--batch-size 256] [--format conll]

The inputs (any format ``raytag predict`` reads) are turned into one JSONL file of
texts, repeated ``--copies`` times, so every side tags the same records. Each side
runs in its own fresh subprocess, in the same invocation. ``tagging_words_per_s`` counts
tagging only: in process, after the model is loaded and warmed up; on Ray, from the first
tagger call's start to the last one's end (actors started and models loaded). ``words_per_s``
on Ray is over the whole pipeline run (actor start-up and model loading included), ``wall_s``
the whole side including Ray start-up.

Run inside the loopback namespace, on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import child

ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "TF_CPP_MIN_LOG_LEVEL": "2",
       "TF_USE_LEGACY_KERAS": "1", "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "PYTHONUNBUFFERED": "1"}


def make_input(files: list[str], fmt: str | None, copies: int, directory: Path) -> tuple[Path, int]:
    from raytag.batch_inputs import InputOptions, detect_format, expand_inputs, read_records

    texts = []
    for source in expand_inputs(files):
        records = read_records(source, detect_format(source, fmt), InputOptions(format=fmt))
        texts.extend(r.text for r in records if r.reject is None and r.text)
    path = directory / "input.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for copy in range(copies):
            for i, text in enumerate(texts):
                out.write(json.dumps({"id": f"{copy}-{i}", "text": text}) + "\n")
    return path, len(texts) * copies


def in_process(path: str, ref: str, registry: str, batch_size: int) -> dict:
    # Ray starts its workers at niceness 15 (its worker_niceness default): run the baseline at
    # the same priority, so other load on the machine weighs on both sides alike.
    os.nice(15)
    t0 = time.perf_counter()
    from raytag.tagger import load_tagger

    texts = [json.loads(line)["text"] for line in Path(path).read_text(encoding="utf-8").splitlines()]
    tagger = load_tagger(ref, registry)
    tagger.predict(texts[:batch_size], batch_size=batch_size)  # warm-up, as each actor's first batch is
    t1 = time.perf_counter()
    results = tagger.predict(texts, batch_size=batch_size)
    seconds = time.perf_counter() - t1
    words = sum(len(r.tokens) for r in results)
    return {"rows": len(results), "words": words, "tagging_words_per_s": words / seconds,
            "wall_s": time.perf_counter() - t0}


def on_ray(path: str, ref: str, registry: str, batch_size: int, concurrency: int) -> dict:
    t0 = time.perf_counter()
    from raytag.batch_predict import BatchOptions, batch_predict
    from raytag.session import ray_session

    out = Path(tempfile.mkdtemp(prefix="bench-batch-")) / "out"
    # What `raytag predict --concurrency N` runs: one CPU per actor.
    options = BatchOptions(batch_size=batch_size, concurrency=concurrency)
    with ray_session(num_cpus=os.cpu_count(), log_to_driver=False):
        summary = batch_predict([path], out, ref, registry_root=registry, options=options)
    return {"rows": summary.rows, "rejects": summary.rejects, "words": summary.words,
            "words_per_s": summary.words_per_second, "tagging_words_per_s": summary.tagging_words_per_second,
            "tagging_s": summary.tagging_seconds, "run_s": summary.seconds, "wall_s": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ref")
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--registry", default="runs/registry")
    parser.add_argument("--format", default=None)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path, rows = make_input(args.inputs, args.format, args.copies, Path(tmp))
        common = [str(path), args.ref, args.registry, str(args.batch_size)]
        results = {"rows": rows, "batch_size": args.batch_size,
                   "in_process": child(__file__, "in_process", common, ENV)}
        for concurrency in (1, 2):
            results[f"ray_{concurrency}_actor{'s' * (concurrency > 1)}"] = child(
                __file__, "on_ray", [*common, str(concurrency)], ENV)
    base = results["in_process"]["tagging_words_per_s"]
    for key in ("ray_1_actor", "ray_2_actors"):
        results[key]["tagging_vs_in_process"] = results[key]["tagging_words_per_s"] / base
        results[key]["run_vs_in_process"] = results[key]["words_per_s"] / base
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("_in_process", "_on_ray"):
        kind, rest = sys.argv[1], sys.argv[2:]
        if kind == "_in_process":
            result = in_process(rest[0], rest[1], rest[2], int(rest[3]))
        else:
            result = on_ray(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]))
        print("RESULT " + json.dumps(result))
    else:
        main()
