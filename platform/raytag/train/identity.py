"""Which training run a job is: its name plus a short hash of what decides the result.

Two jobs with the same run key train the same model on the same data, so a second
``raytag train`` resumes or reports the first; any change to the model, the training
settings or the prepared data gives another key, hence another run directory, and the
earlier run stays as it was.

The hash covers the ``model`` and ``train`` sections and the prepared corpus's content
fingerprint (which already reflects every corpus, split, vocabulary and prepare
setting that changes the data). Left out are the fields that only say where results
go or how the run is driven: :data:`NOT_IDENTITY`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from raytag.config import JobConfig, resolved

# Dotted fields of the hashed sections that never change what a run computes.
NOT_IDENTITY: tuple[str, ...] = (
    "train.storage_path",  # where checkpoints go
    "train.max_failures",  # how often a failed worker group restarts
    "train.cpus_per_worker",  # threads per worker: speed, not the result
    "train.use_gpu",  # the device; a run interrupted on one may resume on the other
)
HASH_LENGTH = 8


def identity(job: JobConfig, data_fingerprint: str | None) -> dict[str, Any]:
    """What a run's result depends on: the model and train sections (less :data:`NOT_IDENTITY`) and the data."""
    config = resolved(job)
    out: dict[str, Any] = {"model": config["model"], "train": dict(config["train"])}
    for dotted in NOT_IDENTITY:
        section, key = dotted.split(".")
        out[section].pop(key, None)
    # Without a fingerprint, the settings that make the data stand in for it.
    out["data"] = data_fingerprint or {k: config[k] for k in ("corpus", "split", "vocab")}
    return out


def config_hash(job: JobConfig, data_fingerprint: str | None) -> str:
    text = json.dumps(identity(job, data_fingerprint), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def run_key(job: JobConfig, data_fingerprint: str | None) -> str:
    """``<job name>-<hash>``: the run's directory name under the storage path."""
    return f"{job.name}-{config_hash(job, data_fingerprint)}"
