"""Transformer benchmarks: quality of a job, and Ray Train overhead against the plain HF Trainer.

    # quality: prepare, train, evaluate and register a job on Ray; dev/test F1, wall time, samples/s
    python bench/train_transformer.py quality jobs/conll03_transformer.yaml
    # overhead: the workshop's way (HF Trainer in one process) vs Ray Train at 1 worker,
    # the same encoder, windows, steps and seed, each in a fresh subprocess of this invocation
    python bench/train_transformer.py overhead jobs/conll03_transformer.yaml --steps 100 --epochs 2

Tagger throughput: ``python bench/train_bilstm.py throughput <ref> <prepared dir>`` works for
every tagger kind. Run inside the loopback namespace (``make bench-transformer``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from common import child, ensure_prepared, load

ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1",
       "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "PYTHONUNBUFFERED": "1", "USE_TF": "0",
       "TOKENIZERS_PARALLELISM": "false"}


_job = load
_ensure_prepared = ensure_prepared


def plain_fit(config: str, overrides: list[str]) -> dict:
    """The workshop's way: one process, the HF Trainer, the same windows, arguments and dev scoring."""
    import torch
    import transformers

    from raytag.corpus.prepared import PreparedCorpus
    from raytag.subword_stage import WINDOW_COLUMNS
    from raytag.train.hf_loop import build_trainer, training_features

    transformers.logging.set_verbosity_error()
    job = _job(config, overrides)
    corpus = PreparedCorpus(job.prepared_dir())
    torch.set_num_threads(max(1, int(job.train.cpus_per_worker)))
    t0 = time.perf_counter()
    features = training_features(corpus.table("train", columns=list(WINDOW_COLUMNS[:2])).to_batches())
    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(job, corpus, features, out, world=1)
        result = trainer.train()
        history = [log for log in trainer.state.log_history if "dev_score" in log]
    return {"seconds": time.perf_counter() - t0, "train_runtime": result.metrics["train_runtime"],
            "steps": trainer.state.global_step, "history": history}


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
    return {"seconds": seconds, "steps": outcome.history[-1]["step"], "history": outcome.history}


def quality(config: str, overrides: list[str]) -> dict:
    from raytag.artifact import train_and_register
    from raytag.corpus.prepared import PreparedCorpus
    from raytag.registry import Registry
    from raytag.session import ray_session

    job = _job(config, overrides)
    t0 = time.perf_counter()
    directory = _ensure_prepared(job)
    prepare_s = time.perf_counter() - t0
    windows = sum(PreparedCorpus(directory).table("train", columns=["window_count"]).column("window_count")
                  .to_pylist())
    with ray_session(num_cpus=2, log_to_driver=False):
        t0 = time.perf_counter()
        version = train_and_register(job, directory, fresh=True)
        seconds = time.perf_counter() - t0
    history = json.loads((Registry(job.registry.root).fetch(f"{version.name}@v{version.version}")
                          / "history.json").read_text())
    steps = history[-1]["step"]
    return {"prepare_s": prepare_s, "train_evaluate_register_s": seconds, "train_windows": windows,
            "steps": steps, "samples_per_s": steps * job.train.batch_size / seconds,
            "model": f"{version.name}@v{version.version}", "metrics": version.metrics, "history": history}


def _child(kind: str, argv: list[str]) -> dict:
    return child(__file__, kind, argv, ENV)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    sets = [arg for o in args.overrides for arg in ("--set", o)]
    if args.command.startswith("_"):
        runner = {"plain": plain_fit, "ray": ray_fit, "quality": quality}[args.command[1:]]
        print("RESULT " + json.dumps(runner(args.args[0], args.overrides)))
        return
    if args.command == "overhead":
        config = args.args[0]
        budget = [f"train.epochs={args.epochs}", f"train.max_steps_per_epoch={args.steps}",
                  "train.num_workers=1", "train.cpus_per_worker=2"]
        budget_sets = [arg for o in budget for arg in ("--set", o)]
        _ensure_prepared(_job(config, args.overrides))
        plain = _child("plain", [config, *sets, *budget_sets])
        ray1 = _child("ray", [config, *sets, *budget_sets, "--set", "name=transformer_overhead_w1"])
        f1 = {"plain": plain["history"][-1].get("dev_f1"), "ray1": ray1["history"][-1].get("dev_f1")}
        print(json.dumps({
            "steps": {"plain": plain["steps"], "ray1": ray1["steps"]},
            "plain_s": plain["seconds"], "plain_train_runtime_s": plain["train_runtime"],
            "ray_1_worker_s": ray1["seconds"], "ray1_over_plain": ray1["seconds"] / plain["seconds"],
            "dev_f1": f1, "dev_f1_gap_points": None if None in f1.values() else 100 * (f1["ray1"] - f1["plain"]),
        }, indent=2))
    elif args.command == "quality":
        print(json.dumps(_child("quality", [args.args[0], *sets]), indent=2))
    else:
        raise SystemExit(f"unknown command {args.command!r}")


if __name__ == "__main__":
    main()
