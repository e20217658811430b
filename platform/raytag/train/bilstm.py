"""The BiLSTM kind: tf-keras on Ray Train's ``TensorflowTrainer``, artifacts in Keras format."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytag.artifact_files import KERAS_STATE, KERAS_WEIGHTS, VOCAB_FILES
from raytag.config import BiLSTMConfig, JobConfig
from raytag.corpus.prepared import PreparedCorpus
from raytag.errors import ConfigError
from raytag.train.adapter import History, WorkerRun, ordered_ingest, typed_model

if TYPE_CHECKING:
    from raytag.encode_stage import EncodeStage


def model_config(job: JobConfig) -> BiLSTMConfig:
    return typed_model(job, BiLSTMConfig)


class BiLSTMAdapter:
    kind = "bilstm"

    def prepare_stages(self, job: JobConfig) -> list[EncodeStage]:
        return []  # word and char ids are what every prepared corpus has

    def check_prepared(self, corpus: PreparedCorpus, job: JobConfig) -> None:
        if not model_config(job).context:
            return None
        import pyarrow.parquet as pq

        # Document context is read per sentence id; a corpus prepared before sentences
        # recorded their document has neither column.
        paths = corpus.shard_paths("train")
        missing = [c for c in ("sid", "document") if paths and c not in pq.read_schema(paths[0]).names]
        if missing:
            raise ConfigError(
                f"{corpus.directory} has no {' or '.join(missing)} column, which model.context needs; "
                "prepare it again (`raytag prepare <job> --overwrite`)"
            )
        return None

    def train_columns(self, job: JobConfig) -> list[str]:
        # With document context each row's sid finds its context in the whole split.
        return ["word_ids", "tag_ids", "tokens", *(["sid"] if model_config(job).context else [])]

    def worker_loop(self) -> Callable[[dict[str, Any]], None]:
        from raytag.train.keras_loop import train_loop

        return train_loop

    def worker_env(self, job: JobConfig) -> dict[str, str]:
        return {}

    def trainer(self, loop: Callable[[dict[str, Any]], None], run: WorkerRun, train_set: Any, scaling: Any,
                run_config: Any) -> Any:
        from ray.train.tensorflow import TensorflowTrainer

        # Each worker reads its own shard of the split (Ray Data splits "train" by default).
        return TensorflowTrainer(loop, train_loop_config=run.loop_config(), scaling_config=scaling,
                                 run_config=run_config, datasets={"train": train_set},
                                 dataset_config=ordered_ingest())

    def history(self, checkpoint_dir: Path) -> History:
        return list(json.loads((checkpoint_dir / KERAS_STATE).read_text())["history"])

    def export(self, job: JobConfig, corpus: PreparedCorpus, checkpoint_dir: Path, out: Path) -> dict[str, Any]:
        """Rebuild the model outside any strategy, load the checkpoint's weights, save it
        in Keras format (what raytag loads) and as a SavedModel (what stock TensorFlow loads)."""
        from raytag.models import bilstm

        model_cfg = model_config(job)
        model = bilstm.build_model(model_cfg, len(corpus.words), len(corpus.chars), len(corpus.labels))
        model.load_weights(str(checkpoint_dir / KERAS_WEIGHTS))
        bilstm.save_model(model, out, model_cfg)
        bilstm.export_saved_model(model, out)
        for name in VOCAB_FILES:
            shutil.copyfile(corpus.directory / name, out / name)
        if model_cfg.encoder_vectors:
            # Tagging must split words into pieces as training did, without the encoder package.
            bilstm.WordPieces.bundled(model_cfg.max_word_pieces).save(out)
        return {"char_features": model_cfg.char_features, "max_word_length": model_cfg.max_word_length,
                "casing_features": model_cfg.casing_features, "output": model_cfg.output,
                "encoder_vectors": model_cfg.encoder_vectors, "max_word_pieces": model_cfg.max_word_pieces,
                "saved_model": bilstm.SAVED_MODEL_DIR,
                # Artifacts without document context keep the keys they always had.
                **({"context": model_cfg.context} if model_cfg.context else {})}
