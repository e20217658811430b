"""The transformer kind: Hugging Face on Ray Train's ``TorchTrainer``, artifacts as ``save_pretrained``."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytag.artifact_files import HF_CHECKPOINT_DIR, LABELS_FILE, TOKENIZER_DIR, TRANSFORMER_MODEL_DIR
from raytag.config import JobConfig, TransformerConfig
from raytag.corpus.prepared import PreparedCorpus
from raytag.errors import ConfigError
from raytag.train.adapter import History, WorkerRun, ordered_ingest, typed_model

if TYPE_CHECKING:
    from raytag.encode_stage import EncodeStage

SUBWORD_STAGE = "subwords"


def model_config(job: JobConfig) -> TransformerConfig:
    return typed_model(job, TransformerConfig)


class TransformerAdapter:
    kind = "transformer"

    def prepare_stages(self, job: JobConfig) -> list[EncodeStage]:
        from raytag.subword_stage import SubwordStage

        return [SubwordStage(model_config(job), job.prepare.num_workers)]

    def check_prepared(self, corpus: PreparedCorpus, job: JobConfig) -> None:
        stage = corpus.manifest.get("stages", {}).get(SUBWORD_STAGE)
        if stage is None:
            raise ConfigError(
                f"{corpus.directory} has no subword windows; prepare it with this transformer job's config"
            )
        if model_config(job).casing and not stage.get("casing_types"):
            raise ConfigError(
                f"{corpus.directory} was prepared without casing classes, which model.casing needs; "
                "prepare it again (`raytag prepare <job> --overwrite`)"
            )
        prepared_context = int(stage.get("context", 0))
        if prepared_context != model_config(job).context:
            raise ConfigError(
                f"{corpus.directory} has windows with {prepared_context} words of document context but "
                f"model.context is {model_config(job).context}; prepare it again (`raytag prepare <job> "
                "--overwrite`) or give the job its own prepare.output_dir"
            )

    def train_columns(self, job: JobConfig) -> list[str]:
        casing = ["window_type_ids"] if model_config(job).casing else []
        # Augmentation and context dropout re-cut windows from the words and their tags, and
        # with document context from their documents' other sentences.
        from raytag.train.hf_loop import recuts_windows

        extra = ["tokens", "tag_ids"] if recuts_windows(job) else []
        if extra and model_config(job).context:
            extra += ["sid", "document"]
        return ["window_input_ids", "window_labels", *casing, *extra]

    def worker_loop(self) -> Callable[[dict[str, Any]], None]:
        from raytag.train.hf_loop import train_loop

        return train_loop

    def worker_env(self, job: JobConfig) -> dict[str, str]:
        # Keep transformers/datasets from importing TensorFlow into the PyTorch workers.
        return {"USE_TF": "0", "USE_TORCH": "1", "TOKENIZERS_PARALLELISM": "false"}

    def trainer(self, loop: Callable[[dict[str, Any]], None], run: WorkerRun, train_set: Any, scaling: Any,
                run_config: Any) -> Any:
        from ray.train.torch import TorchTrainer

        # Every worker reads the whole split; the HF Trainer's distributed sampler shards it.
        return TorchTrainer(loop, train_loop_config=run.loop_config(), scaling_config=scaling, run_config=run_config,
                            datasets={"train": train_set}, dataset_config=ordered_ingest(datasets_to_split=[]))

    def history(self, checkpoint_dir: Path) -> History:
        from raytag.train.hf_loop import history_from_checkpoint

        return history_from_checkpoint(checkpoint_dir)

    def export(self, job: JobConfig, corpus: PreparedCorpus, checkpoint_dir: Path, out: Path) -> dict[str, Any]:
        """Write the best checkpoint as a ``save_pretrained`` directory.

        ``out/model`` loads with ``transformers.pipeline("token-classification", model=...)``:
        its config carries the real label names and the tokenizer files sit next to it.
        """
        from transformers import AutoModelForTokenClassification

        from raytag.models.transformer import load_tokenizer

        model_cfg = model_config(job)
        model = AutoModelForTokenClassification.from_pretrained(str(checkpoint_dir / HF_CHECKPOINT_DIR))
        if [model.config.id2label[i] for i in range(model.config.num_labels)] != corpus.labels.items:
            raise RuntimeError(f"checkpoint {checkpoint_dir} has labels {model.config.id2label}, not the corpus's")
        tokenizer = load_tokenizer(corpus.directory / TOKENIZER_DIR)
        tokenizer.model_max_length = model_cfg.max_length
        model.save_pretrained(str(out / TRANSFORMER_MODEL_DIR))
        tokenizer.save_pretrained(str(out / TRANSFORMER_MODEL_DIR))
        shutil.copyfile(corpus.directory / LABELS_FILE, out / LABELS_FILE)
        # Artifacts without document context keep the keys they always had.
        context = {"context": model_cfg.context} if model_cfg.context else {}
        return {"max_length": model_cfg.max_length, "stride": model_cfg.stride, "encoder": model_cfg.encoder,
                "model_dir": TRANSFORMER_MODEL_DIR, "casing": model_cfg.casing, **context}
