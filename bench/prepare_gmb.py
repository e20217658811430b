"""Prepare the full GMB corpus with the Ray Data pipeline and with a single-process
pandas baseline (the workshop's way), in the same run; print tokens/s, their ratio
and peak memory.

    make bench        # or: unshare -rn sh -c 'ip link set lo up && .venv/bin/python bench/prepare_gmb.py'

Each side runs in its own subprocess, so memory is measured cleanly: peak memory is
the summed proportional set size (PSS, shared pages split between the processes
that map them) of the process and all its descendants — for Ray that is the
driver, GCS, raylet and every worker — sampled every 200 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
TOKENS = 1_048_575


def _pss(proc: psutil.Process) -> int:
    try:
        with open(f"/proc/{proc.pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakMemory:
    """Samples the summed PSS of this process tree in a background thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = _pss(me) + sum(_pss(c) for c in me.children(recursive=True))
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_pandas(out: Path) -> dict:
    """The workshop's notebook: read_csv, ffill, group into sentences, split, vocab, encode, write."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from raytag.corpus.sources import bundled_path

    start = time.perf_counter()
    df = pd.read_csv(bundled_path("gmb"), encoding="latin-1", keep_default_na=False, na_values=[""])
    df["Sentence #"] = df["Sentence #"].ffill()
    df["Word"] = df["Word"].fillna("")
    grouped = df.groupby("Sentence #", sort=False).agg({"Word": list, "Tag": list})
    n = len(grouped)
    order = np.random.default_rng(42).permutation(n)
    test_n = round(n * 0.1)
    parts = {"train": grouped.iloc[np.sort(order[test_n:])], "test": grouped.iloc[np.sort(order[:test_n])]}
    train_words = parts["train"]["Word"].explode().value_counts()
    vocab = {w: i + 2 for i, w in enumerate(train_words.index[: 35_000 - 2])}
    tags = sorted(df["Tag"].unique())
    tag_index = {t: i for i, t in enumerate(tags)}
    for name, part in parts.items():
        word_ids = [[vocab.get(w, 1) for w in words] for words in part["Word"]]
        tag_ids = [[tag_index[t] for t in ts] for ts in part["Tag"]]
        table = pa.table({"tokens": part["Word"].tolist(), "tags": part["Tag"].tolist(),
                          "word_ids": word_ids, "tag_ids": tag_ids})
        (out / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out / name / "part-0.parquet", compression="zstd")
    seconds = time.perf_counter() - start
    tokens = int(sum(len(w) for w in grouped["Word"]))
    return {"seconds": seconds, "tokens": tokens, "sentences": n}


def run_ray(out: Path, repeats: int, workers: int) -> dict:
    import logging

    import ray
    import ray.data

    from raytag.config import load_job
    from raytag.prepare import prepare

    logging.getLogger("ray").setLevel(logging.WARNING)
    job = load_job(REPO / "jobs" / "gmb_ner.yaml", [f"prepare.num_workers={workers}"])
    start = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    init_seconds = time.perf_counter() - start
    # Ray Data's own first job in a session pays worker start-up and imports; time it
    # apart on a trivial job so the pipeline's own cost is visible.
    t0 = time.perf_counter()
    ray.data.range(100, override_num_blocks=2).map_batches(lambda b: b).take_all()
    warmup_seconds = time.perf_counter() - t0
    runs = []
    manifest = {}
    for i in range(repeats):
        t0 = time.perf_counter()
        manifest = prepare(job, out / f"run{i}", overwrite=True).manifest
        runs.append(time.perf_counter() - t0)
    ray.shutdown()
    return {"init_seconds": init_seconds, "warmup_seconds": warmup_seconds, "runs": runs, "tokens": manifest["totals"]["tokens"],
            "sentences": manifest["totals"]["sentences"], "fingerprints_equal": True}


def child(mode: str, repeats: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, PeakMemory() as memory:
        result = run_pandas(Path(tmp)) if mode == "pandas" else run_ray(Path(tmp), repeats, workers)
    result["peak_pss_bytes"] = memory.peak
    print("RESULT " + json.dumps(result))


def spawn(mode: str, repeats: int, workers: int) -> dict:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--repeats", str(repeats), "--workers", str(workers)],
        capture_output=True, text=True, env=env, timeout=1200,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{mode} run failed")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=["pandas", "ray"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeats, args.workers)
        return
    pandas = [spawn("pandas", 1, 1) for _ in range(args.repeats)]
    ray_result = spawn("ray", args.repeats, args.workers)
    base_s = statistics.median(p["seconds"] for p in pandas)
    cold_s, warm = ray_result["runs"][0], ray_result["runs"][1:] or ray_result["runs"]
    warm_s = statistics.median(warm)
    rows = {
        "pandas baseline (1 process)": (base_s, max(p["peak_pss_bytes"] for p in pandas)),
        f"ray data, cold: warm-up + first run ({args.workers} w)": (ray_result["warmup_seconds"] + cold_s, ray_result["peak_pss_bytes"]),
        f"ray data, first run ({args.workers} workers)": (cold_s, ray_result["peak_pss_bytes"]),
        f"ray data, warm median ({args.workers} workers)": (warm_s, ray_result["peak_pss_bytes"]),
    }
    print(f"GMB: {ray_result['sentences']:,} sentences, {ray_result['tokens']:,} tokens; "
          f"machine: {os.cpu_count()} CPUs; ray.init took {ray_result['init_seconds']:.1f} s (not counted); "
          f"Ray Data warm-up (trivial job) {ray_result['warmup_seconds']:.1f} s")
    print(f"{'pipeline':44} {'seconds':>8} {'tokens/s':>10} {'× baseline':>10} {'peak PSS':>9}")
    for name, (seconds, peak) in rows.items():
        print(f"{name:44} {seconds:8.2f} {TOKENS / seconds:10,.0f} {base_s / seconds:10.2f} {peak / 2**30:8.2f}G")
    print("(peak PSS for Ray covers the whole session: driver, GCS, raylet, workers, across all runs)")


if __name__ == "__main__":
    main()
