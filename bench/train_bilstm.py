"""BiLSTM benchmarks: quality of a job, Ray Train overhead, Tagger throughput.

    # quality: train + evaluate + register a job, print dev/test metrics and wall time
    python bench/train_bilstm.py quality jobs/gmb_ner_bilstm.yaml --set train.num_workers=1
    # overhead: the same model and steps as plain model.fit in one process, then on Ray Train
    python bench/train_bilstm.py overhead jobs/gmb_ner_bilstm.yaml --steps 200 --epochs 2
    # stability: the step-time cost of train.augment.stability (off vs the job's weight, plain fit)
    python bench/train_bilstm.py stability jobs/conll03_bilstm.yaml --steps 200 --epochs 2
    # throughput of the Tagger API (words/s, batched) on a prepared split
    python bench/train_bilstm.py throughput <model ref or artifact dir> <prepared dir>

Run inside the loopback namespace (``make bench-train``). Every side of a
comparison runs in its own fresh subprocess, in the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from common import child, ensure_prepared, load

ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1",
       "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "PYTHONUNBUFFERED": "1"}


class TableShard:
    """A pyarrow table behind the slice of the Ray Data shard API the train loop uses."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def iter_batches(self, batch_size: int, batch_format: str = "pyarrow"):
        for offset in range(0, self.table.num_rows, batch_size):
            yield self.table.slice(offset, batch_size)


_job = load
_ensure_prepared = ensure_prepared


def plain_fit(config: str, overrides: list[str]) -> dict:
    """The workshop's way: one process, model.fit, the same batches and dev evaluation."""
    t0 = time.perf_counter()
    import tensorflow as tf

    from raytag.corpus.prepared import PreparedCorpus
    from raytag.models import bilstm
    from raytag.train.keras_loop import DevSet, _as_tf_dataset, _epoch_batches, word_pieces

    job = _job(config, overrides)
    corpus = PreparedCorpus(job.prepared_dir())
    tf.keras.utils.set_random_seed(job.train.seed)
    model = bilstm.build_model(job.model, len(corpus.words), len(corpus.chars), len(corpus.labels))
    bilstm.compile_model(model, job.train.learning_rate)
    if job.train.augment.stability:
        model.stability_weight = float(job.train.augment.stability)
    dev = DevSet(corpus, job.train.dev_split, job.model.char_features != "none", job.model.max_word_length,
                 casing=job.model.casing_features, pieces=word_pieces(job.model))
    shard = TableShard(corpus.table("train", columns=["word_ids", "tag_ids", "tokens"]))
    history = []
    for epoch in range(job.train.epochs):
        started = time.perf_counter()
        batches = _epoch_batches(shard, corpus, job.model, job.train, job.train.batch_size,
                                 epoch)[: job.train.max_steps_per_epoch]
        fit_started = time.perf_counter()
        fit = model.fit(_as_tf_dataset(batches, job.model, tf), epochs=1, steps_per_epoch=len(batches), verbose=0)
        fit_seconds = time.perf_counter() - fit_started
        history.append({"epoch": epoch + 1, "loss": fit.history["loss"][-1], **dev.evaluate(model, corpus),
                        "epoch_seconds": time.perf_counter() - started, "fit_seconds": fit_seconds})
    return {"seconds": time.perf_counter() - t0, "history": history}


def ray_fit(config: str, overrides: list[str]) -> dict:
    import ray

    from raytag.train.run import train

    job = _job(config, overrides)
    directory = _ensure_prepared(job)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    t0 = time.perf_counter()
    outcome = train(job, directory, fresh=True)
    seconds = time.perf_counter() - t0
    ray.shutdown()
    return {"seconds": seconds, "history": outcome.history}


def quality(config: str, overrides: list[str]) -> dict:
    from raytag.artifact import train_and_register
    from raytag.session import ray_session

    job = _job(config, overrides)
    directory = _ensure_prepared(job)
    with ray_session(num_cpus=2):
        t0 = time.perf_counter()
        version = train_and_register(job, directory, fresh=True)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "model": f"{version.name}@v{version.version}", "metrics": version.metrics}


def throughput(ref: str, prepared: str, registry: str) -> dict:
    from raytag.corpus.prepared import PreparedCorpus
    from raytag.tagger import load_tagger

    tagger = load_tagger(ref, registry)
    corpus = PreparedCorpus(prepared)
    tokens = corpus.table("test", columns=["tokens"]).column("tokens").to_pylist()
    words = sum(len(t) for t in tokens)
    tagger.predict(tokens[:512], batch_size=256)  # warm-up: tracing, allocator
    out = {"sentences": len(tokens), "words": words}
    for batch_size in (1, 32, 256):
        sample = tokens if batch_size > 1 else tokens[:300]
        t0 = time.perf_counter()
        tagger.predict(sample, batch_size=batch_size)
        seconds = time.perf_counter() - t0
        out[f"batch{batch_size}_words_per_s"] = sum(len(t) for t in sample) / seconds
    # 20 words.
    sentence = "The United Nations said on Monday that John Smith would travel by train to Berlin and Paris next week ."
    latencies = []
    for _ in range(50):
        t0 = time.perf_counter()
        tagger.predict([sentence])
        latencies.append(time.perf_counter() - t0)
    latencies.sort()
    out["one_sentence_p50_ms"] = latencies[len(latencies) // 2] * 1000
    return out


def _child(kind: str, argv: list[str]) -> dict:
    return child(__file__, kind, argv, ENV)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--registry", default="runs/registry")
    args = parser.parse_args()
    sets = [arg for o in args.overrides for arg in ("--set", o)]
    if args.command.startswith("_"):
        kind = args.command[1:]
        if kind == "plain":
            result = plain_fit(args.args[0], args.overrides)
        elif kind == "ray":
            result = ray_fit(args.args[0], args.overrides)
        elif kind == "quality":
            result = quality(args.args[0], args.overrides)
        else:
            result = throughput(args.args[0], args.args[1], args.registry)
        print("RESULT " + json.dumps(result))
        return
    if args.command == "overhead":
        config = args.args[0]
        budget = [f"train.epochs={args.epochs}", f"train.max_steps_per_epoch={args.steps}",
                  "train.early_stopping_patience=null"]
        base = ["--set", "train.num_workers=1", "--set", "train.cpus_per_worker=2"]
        budget_sets = [arg for o in budget for arg in ("--set", o)]
        _ensure_prepared(_job(config, args.overrides))
        plain = _child("plain", [config, *sets, *budget_sets, *base])
        one = _child("ray", [config, *sets, *budget_sets, *base, "--set", "name=overhead_w1"])
        two = _child("ray", [config, *sets, *budget_sets, "--set", "train.num_workers=2",
                             "--set", "train.cpus_per_worker=1", "--set", "name=overhead_w2"])
        last = {name: r["history"][-1]["epoch_seconds"] for name, r in (("plain", plain), ("ray1", one), ("ray2", two))}
        print(json.dumps({"last_epoch_s": last, "ray1_over_plain_last_epoch": last["ray1"] / last["plain"],
                          "ray2_over_ray1_last_epoch": last["ray2"] / last["ray1"],
                          "plain_s": plain["seconds"], "ray_1_worker_s": one["seconds"],
                          "ray_2_workers_s": two["seconds"],
                          "ray1_over_plain": one["seconds"] / plain["seconds"],
                          "ray2_over_ray1": two["seconds"] / one["seconds"],
                          "dev_f1": {"plain": plain["history"][-1].get("dev_score"),
                                     "ray1": one["history"][-1].get("dev_score"),
                                     "ray2": two["history"][-1].get("dev_score")}}, indent=2))
    elif args.command == "stability":
        # The cost of the consistency term: the same batches and steps without it and with it.
        config = args.args[0]
        budget = [f"train.epochs={args.epochs}", f"train.max_steps_per_epoch={args.steps}",
                  "train.early_stopping_patience=null", "train.num_workers=1", "train.cpus_per_worker=2"]
        budget_sets = [arg for o in budget for arg in ("--set", o)]
        job = _job(config, args.overrides)
        _ensure_prepared(job)
        off = _child("plain", [config, *sets, *budget_sets, "--set", "train.augment.stability=0"])
        on = _child("plain", [config, *sets, *budget_sets])
        last = {"off": off["history"][-1], "on": on["history"][-1]}
        print(json.dumps({"stability": job.train.augment.stability, "steps_per_epoch": args.steps,
                          "last_epoch": last,
                          "fit_on_over_off": last["on"]["fit_seconds"] / last["off"]["fit_seconds"],
                          "epoch_on_over_off": last["on"]["epoch_seconds"] / last["off"]["epoch_seconds"],
                          "run_on_over_off": on["seconds"] / off["seconds"]}, indent=2))
    elif args.command == "quality":
        print(json.dumps(_child("quality", [args.args[0], *sets]), indent=2))
    elif args.command == "throughput":
        print(json.dumps(_child("throughput", [*args.args, "--registry", args.registry]), indent=2))
    else:
        raise SystemExit(f"unknown command {args.command!r}")


if __name__ == "__main__":
    main()
