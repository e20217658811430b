"""Ray Tune benchmark: an ASHA search on GMB with the BiLSTM vs the same trials without early
stopping, and the best trial against the default config trained on the same budget.

    python bench/tune_search.py jobs/tune_gmb_bilstm.yaml

Each part runs in a fresh subprocess of this invocation (``raytag`` CLI), one after another on
this machine: default config → ASHA search → FIFO search (same seed, so the same sampled trials).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RAYTAG = str(Path(sys.executable).parent / "raytag")


def _run(args: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([RAYTAG, *args], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"raytag {' '.join(args)} failed")
    return time.perf_counter() - t0


def main() -> None:
    search_file = sys.argv[1]
    search = yaml.safe_load(Path(search_file).read_text())
    from raytag.registry import Registry
    from raytag.tune import load_search

    spec, base = load_search(search_file)
    registry = Registry(base.registry.root)
    budget = [arg for key, value in spec.set.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    default_name = f"{spec.name}_default"
    default_s = _run(["train", spec.base, *budget, "--set", f"name={default_name}", "--fresh"])
    default = registry.resolve(default_name).metrics
    results = {"default": {"seconds": default_s, "dev_f1": default.get("dev_f1"), "test_f1": default.get("test_f1")}}
    for kind in ("asha", "fifo"):
        name = f"{spec.name}_{kind}"
        seconds = _run(["tune", search_file, "--fresh", "--set", f"name={name}",
                        "--set", f"search.scheduler.kind={kind}"])
        best = json.loads((Path(base.workdir) / name / "best.json").read_text())
        table = (Path(base.workdir) / name / "results.csv").read_text()
        model = registry.resolve(base.model_name())
        results[kind] = {"seconds": seconds, "best_params": best["params"], "best_dev_score": best["metrics"].get(
            "dev_score"), "registered": f"{model.name}@v{model.version}", "test_f1": model.metrics.get("test_f1"),
            "dev_f1": model.metrics.get("dev_f1"), "trials_csv": table}
    results["asha_over_fifo_wall"] = results["asha"]["seconds"] / results["fifo"]["seconds"]
    print(json.dumps(results, indent=2))
    del search


if __name__ == "__main__":
    main()
