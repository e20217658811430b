"""What a batch prediction run is asked to do, and the CPUs its tagger actors reserve.

Options are checked when built, so a bad one fails on the driver before any Ray work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from raytag.batch_inputs import InputOptions
from raytag.errors import RaytagError

__all__ = ["OUTPUT_FORMATS", "BatchOptions", "BatchPredictError", "actor_cpus", "actor_threads"]

OUTPUT_FORMATS = ("jsonl", "parquet")


class BatchPredictError(RaytagError):
    """Batch prediction cannot start as asked (output directory, options)."""


@dataclass(frozen=True)
class BatchOptions:
    """Everything but the inputs, the output and the model."""

    inputs: InputOptions = field(default_factory=InputOptions)
    output_format: str = "jsonl"
    with_tags: bool = False
    batch_size: int = 256
    concurrency: int = 1
    # CPUs reserved per tagger actor; None = one, or less when the pool would otherwise
    # hold every CPU of the cluster (see actor_cpus).
    num_cpus: float | None = None
    num_gpus: float = 0.0
    device: str = "auto"
    # Rows per output shard: large enough that a big run writes few files.
    shard_rows: int = 50_000

    def __post_init__(self) -> None:
        if self.output_format not in OUTPUT_FORMATS:
            raise BatchPredictError(f"unknown output format {self.output_format!r}; expected one of "
                                    f"{', '.join(OUTPUT_FORMATS)}")
        for name in ("batch_size", "concurrency", "shard_rows"):
            if getattr(self, name) < 1:
                raise BatchPredictError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.num_cpus is not None and self.num_cpus <= 0:
            raise BatchPredictError(f"--num-cpus must be above 0, got {self.num_cpus}")


def actor_threads(options: BatchOptions, cluster_cpus: float) -> int:
    """Intra-op threads per actor: its share of the cores (each actor then caps it at its node's)."""
    return max(1, int(cluster_cpus // options.concurrency))


def actor_cpus(options: BatchOptions, cluster_cpus: float) -> float:
    """CPUs each tagger actor reserves, keeping one CPU free for the read and write tasks.

    The reservation only schedules: an actor's runtime still uses every core it can. A pool
    holding all CPUs would leave the read task waiting forever, so that is an error when asked.
    """
    free = cluster_cpus - 1.0
    if options.num_cpus is not None:
        if options.num_cpus * options.concurrency > free + 1e-9:
            raise BatchPredictError(
                f"{options.concurrency} actors × --num-cpus {options.num_cpus:g} leave no CPU of the cluster's "
                f"{cluster_cpus:g} for reading and writing; lower --num-cpus or --concurrency")
        return options.num_cpus
    if free <= 0:
        raise BatchPredictError(f"batch prediction needs at least 2 CPUs in the cluster, it has {cluster_cpus:g}")
    return min(1.0, free / options.concurrency)
