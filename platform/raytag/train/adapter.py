"""What a model kind must provide to be prepared, trained, exported and loaded.

Each kind is one :class:`ModelAdapter` in its own module (``train/bilstm.py``,
``train/transformer.py``), registered in :mod:`raytag.train.kinds`. Prepare, the
train driver and the exporter ask the registry and never branch on the kind; the
Tagger class that loads a kind's artifact is registered in :mod:`raytag.tagger`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from raytag.config import JobConfig, Section
from raytag.corpus.prepared import PreparedCorpus
from raytag.train.seams import Seams

if TYPE_CHECKING:
    from raytag.encode_stage import EncodeStage

History = list[dict[str, Any]]
M = TypeVar("M", bound=Section)


def typed_model(job: JobConfig, config_class: type[M]) -> M:
    """The job's model section as the adapter's own config class; another kind is a programming error."""
    if not isinstance(job.model, config_class):
        raise TypeError(f"expected a {config_class.__name__} model section, got model.kind={job.model.kind!r}")
    return job.model


def ordered_ingest(**options: Any) -> Any:
    """A Ray Train ``DataConfig`` whose workers get the split's rows in a fixed order.

    Ray Data hands blocks over as their tasks finish unless told to keep their order; the
    training loops batch and drop words by position, so a seeded run would otherwise
    train on a different sequence of batches each time.
    """
    from ray.train import DataConfig

    execution = DataConfig.default_ingest_options()
    execution.preserve_order = True
    return DataConfig(execution_options=execution, **options)


@dataclass(frozen=True)
class WorkerRun:
    """Everything a worker loop gets: the typed job (pydantic models pickle), the corpus, the seams."""

    job: JobConfig
    prepared_dir: str
    seams: Seams = field(default_factory=Seams)

    # Ray Train hands the loop a dict; the run travels under this one key.
    KEY = "run"

    def loop_config(self) -> dict[str, Any]:
        return {self.KEY: self}

    @classmethod
    def from_loop_config(cls, loop_config: dict[str, Any]) -> WorkerRun:
        run = loop_config[cls.KEY]
        if not isinstance(run, cls):
            raise TypeError(f"train_loop_config[{cls.KEY!r}] is a {type(run).__name__}, not a WorkerRun")
        return run

    def corpus(self) -> PreparedCorpus:
        return PreparedCorpus(self.prepared_dir)


class ModelAdapter(Protocol):
    """One model kind, as prepare, Ray Train and the exporter see it."""

    # The ``model.kind`` of its config section and the ``kind`` of its artifacts' tagger.json.
    kind: str

    def prepare_stages(self, job: JobConfig) -> list[EncodeStage]:
        """Encode stages prepare adds on top of word ids (e.g. subword windows)."""
        ...

    def check_prepared(self, corpus: PreparedCorpus, job: JobConfig) -> None:
        """Raise :class:`raytag.errors.ConfigError` when ``corpus`` lacks what this kind trains on."""
        ...

    def train_columns(self, job: JobConfig) -> list[str]:
        """The columns of the training split the workers read through Ray Data."""
        ...

    def worker_loop(self) -> Callable[[dict[str, Any]], None]:
        """The per-worker train function; it reads its :class:`WorkerRun` from the loop config."""
        ...

    def worker_env(self, job: JobConfig) -> dict[str, str]:
        """Env vars this kind's workers need on top of :data:`raytag.environment.RAYTAG_ENV`."""
        ...

    def trainer(self, loop: Callable[[dict[str, Any]], None], run: WorkerRun, train_set: Any, scaling: Any,
                run_config: Any) -> Any:
        """The Ray Train trainer (``DataParallelTrainer`` subclass) over the materialised ``train_set``."""
        ...

    def history(self, checkpoint_dir: Path) -> History:
        """The per-epoch curves stored in one of this kind's checkpoints."""
        ...

    def export(self, job: JobConfig, corpus: PreparedCorpus, checkpoint_dir: Path, out: Path) -> dict[str, Any]:
        """Write the model files of the artifact into ``out``; return the kind's part of ``tagger.json``."""
        ...
