"""The per-worker training function of transformer taggers under Ray Train.

Runs inside every ``TorchTrainer`` worker: the Hugging Face ``Trainer`` (wrapped
by ``prepare_trainer``) fine-tunes the encoder with DDP over the process group
Ray set up, every epoch ends with a word-level dev evaluation (seqeval), and
``RayTrainReportCallback`` reports metrics and the Trainer's checkpoint to Ray
Train. A restarted worker group resumes from the latest checkpoint: weights,
optimizer, scheduler and step count.

Every worker gets the whole training split from Ray Data (windows prepared by
the subword stage) and the Trainer's distributed sampler gives each its share
of every batch, so epochs, length-grouped batches and the learning-rate
schedule match the plain single-process Trainer exactly. With ``train.augment`` the
dataset re-cuts the windows of the sentences it perturbs, afresh every epoch, and
with ``model.context_dropout`` those of the sentences it cuts without their document
context (:mod:`raytag.train.augmented_windows`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from raytag.artifact_files import HF_CHECKPOINT_DIR as CHECKPOINT_DIR
from raytag.artifact_files import TOKENIZER_DIR
from raytag.config import JobConfig, TransformerConfig
from raytag.corpus.prepared import PreparedCorpus
from raytag.train.adapter import WorkerRun, typed_model
from raytag.train.seams import Seams


def train_loop(loop_config: dict[str, Any]) -> None:
    """Ray Train entry point; ``loop_config`` carries the :class:`WorkerRun`."""
    import ray.train
    import torch
    import transformers
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer

    run = WorkerRun.from_loop_config(loop_config)
    job, corpus = run.job, run.corpus()
    torch.set_num_threads(max(1, int(job.train.cpus_per_worker)))
    # The "newly initialised classifier" load report is expected for every fine-tuning run.
    transformers.logging.set_verbosity_error()
    context = ray.train.get_context()
    world = context.get_world_size()

    shard = ray.train.get_dataset_shard("train")
    batches = shard.iter_batches(batch_size=4096, batch_format="pyarrow")
    casing = typed_model(job, TransformerConfig).casing
    recut = recuts_windows(job)
    features: Any = (augmented_features(job, corpus, batches) if recut
                     else training_features(batches, casing=casing))
    output_dir = tempfile.mkdtemp(prefix="raytag-hf-")
    trainer = build_trainer(job, corpus, features, output_dir, world)
    trainer.add_callback(RayTrainReportCallback())
    if recut:
        from raytag.train.augmented_windows import AugmentEpochs

        trainer.add_callback(AugmentEpochs(features))
    if run.seams.fault is not None:
        trainer.add_callback(_FaultInjection(run.seams, context.get_world_rank()))
    trainer = prepare_trainer(trainer)

    resume_from = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        # Copy out of Ray's download directory: the Trainer reads it lazily during train().
        with checkpoint.as_directory() as directory:
            resume_from = str(Path(output_dir) / "resume")
            shutil.copytree(Path(directory) / CHECKPOINT_DIR, resume_from)
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)


def recuts_windows(job: JobConfig) -> bool:
    """Whether training re-cuts windows per epoch: perturbed sentences, or sentences without their context."""
    return job.train.augment.enabled or typed_model(job, TransformerConfig).context_dropout > 0


def training_features(batches: Iterable[Any], casing: bool = False) -> list[dict[str, list[int]]]:
    """One training example per window, from Arrow batches of the prepared window columns.

    With ``casing`` each example also carries ``token_type_ids`` (the words' casing classes).
    """
    out: list[dict[str, list[int]]] = []
    for batch in batches:
        ids = batch.column("window_input_ids").to_pylist()
        labels = batch.column("window_labels").to_pylist()
        types = batch.column("window_type_ids").to_pylist() if casing else [None] * len(ids)
        for sentence_ids, sentence_labels, sentence_types in zip(ids, labels, types, strict=True):
            for k, (window_ids, window_labels) in enumerate(zip(sentence_ids, sentence_labels, strict=True)):
                feature = {"input_ids": window_ids, "labels": window_labels}
                if casing:
                    feature["token_type_ids"] = sentence_types[k]
                out.append(feature)
    # Ray Data does not promise an order across blocks; sort so every worker and
    # every restart sees the same dataset (the sampler shuffles it with the seed).
    out.sort(key=lambda f: (len(f["input_ids"]), f["input_ids"], f["labels"]))
    return out


def augmented_features(job: JobConfig, corpus: PreparedCorpus, batches: Iterable[Any]) -> Any:
    """The training windows as a dataset that perturbs a share of the sentences every epoch."""
    from raytag.augment import entity_tag_ids
    from raytag.models import transformer
    from raytag.train.augmented_windows import AugmentedWindows

    augment = job.train.augment
    tokenizer = transformer.load_tokenizer(corpus.directory / TOKENIZER_DIR)
    seed = job.train.seed if augment.seed is None else augment.seed
    return AugmentedWindows.from_batches(batches, tokenizer, typed_model(job, TransformerConfig), augment, seed,
                                         entity_tag_ids(corpus.labels.items))


# train.lr_schedule → the Trainer's scheduler; warm-up (model.warmup_ratio) comes first in each.
HF_SCHEDULES = {None: "linear", "linear_decay": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def training_arguments(job: JobConfig, output_dir: str, world: int, steps_per_epoch: int | None) -> Any:
    """The HF ``TrainingArguments`` a job asks for; ``world`` splits the global batch."""
    from transformers import TrainingArguments

    model, train = typed_model(job, TransformerConfig), job.train
    per_device = max(1, train.batch_size // world)
    by_steps = train.max_steps_per_epoch is not None
    schedule: dict[str, Any] = (
        {"max_steps": train.max_steps_per_epoch * train.epochs, "eval_strategy": "steps",
         "save_strategy": "steps", "logging_strategy": "steps", "eval_steps": train.max_steps_per_epoch,
         "save_steps": train.max_steps_per_epoch, "logging_steps": train.max_steps_per_epoch}
        if by_steps
        else {"num_train_epochs": train.epochs, "eval_strategy": "epoch", "save_strategy": "epoch",
              "logging_strategy": "epoch"}
    )
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=per_device,
        per_device_eval_batch_size=per_device * 2,
        learning_rate=train.learning_rate,
        lr_scheduler_type=HF_SCHEDULES[train.lr_schedule],
        weight_decay=model.weight_decay,
        warmup_steps=model.warmup_ratio,
        seed=train.seed,
        train_sampling_strategy="group_by_length" if model.group_by_length else "random",
        use_cpu=not train.use_gpu,
        fp16=model.mixed_precision == "fp16",
        bf16=model.mixed_precision == "bf16",
        report_to="none",
        disable_tqdm=True,
        save_total_limit=2,
        dataloader_num_workers=0,
        # The resumed run reshuffles instead of replaying the batches already seen:
        # skipping means iterating the data, which costs minutes on large corpora.
        ignore_data_skip=True,
        **schedule,
    )


def build_trainer(job: JobConfig, corpus: PreparedCorpus, features: Any, output_dir: str, world: int) -> Any:
    """A Trainer whose ``evaluate()`` scores the dev split at word level."""
    from transformers import DataCollatorForTokenClassification, Trainer, set_seed

    from raytag.models import transformer

    # Seed before the classification head is initialised, not only inside the Trainer.
    set_seed(job.train.seed)
    model_cfg = typed_model(job, TransformerConfig)
    tokenizer = transformer.load_tokenizer(corpus.directory / TOKENIZER_DIR)
    model = transformer.build_model(model_cfg, corpus.labels.items)
    dev = DevSet(corpus, job.train.dev_split, model_cfg, job.train.constrained_decoding)

    class WordLevelTrainer(Trainer):
        def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval") -> dict:
            metrics = dev.evaluate(self.model, tokenizer, job.train.batch_size)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    args = training_arguments(job, output_dir, world, job.train.max_steps_per_epoch)
    return WordLevelTrainer(
        model=model,
        args=args,
        train_dataset=features,
        # Never read: evaluate() above scores the dev split's words itself. The Trainer
        # only insists on having an eval set when evaluation is scheduled.
        eval_dataset=dev.tokens,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
    )


class DevSet:
    """The dev split's words and gold tags, scored at word level after subword prediction."""

    def __init__(self, corpus: PreparedCorpus, split: str, model: TransformerConfig, constrained: bool) -> None:
        from raytag.models.doc_context import sentence_contexts

        table = corpus.table(split, columns=["tokens", "tags"])
        self.tokens = table.column("tokens").to_pylist()
        self.tags = table.column("tags").to_pylist()
        # The same document context the training windows had (none with model.context 0).
        self.contexts = (sentence_contexts(self.tokens, corpus.documents(split), model.context)
                         if model.context else None)
        self.labels = corpus.labels.items
        self.entity = corpus.entity
        self.model = model
        self.constrained = constrained

    def evaluate(self, model: Any, tokenizer: Any, batch_size: int) -> dict[str, float]:
        """Each worker tags its share of the dev sentences; the predictions are gathered and scored once."""
        import torch.distributed as dist

        from raytag.decoding import decode
        from raytag.evaluate import evaluation_report, finite, headline_metrics
        from raytag.models.transformer import word_probabilities

        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        rank = dist.get_rank() if world > 1 else 0
        mine = list(range(rank, len(self.tokens), world))
        probs = word_probabilities(
            _unwrap(model), tokenizer, [self.tokens[i] for i in mine], self.model.max_length, self.model.stride,
            batch_size=max(8, batch_size), casing=self.model.casing,
            contexts=[self.contexts[i] for i in mine] if self.contexts is not None else None,
        )
        predicted: dict[int, list[str]] = {}
        for i, p in zip(mine, probs, strict=True):
            path = decode(p[None], [len(p)], self.labels, constrained=self.constrained)[0] if len(p) else []
            predicted[i] = [self.labels[t] for t in path]
        if world > 1:
            parts: list[Any] = [None] * world
            dist.all_gather_object(parts, predicted)
            predicted = {k: v for part in parts for k, v in part.items()}
        report = evaluation_report(self.tags, [predicted[i] for i in range(len(self.tags))], entity=self.entity)
        return finite(headline_metrics(report, "dev"))


def _unwrap(model: Any) -> Any:
    return getattr(model, "module", model)


class _FaultInjection(TrainerCallback):
    """Lets the test seams kill this worker after an optimisation step."""

    def __init__(self, seams: Seams, rank: int) -> None:
        self.seams = seams
        self.rank = rank

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seams.maybe_fail(self.rank, step=state.global_step)


def history_from_checkpoint(directory: str | Path) -> list[dict[str, Any]]:
    """Per-evaluation curves (``epoch``, ``train_loss``, ``dev_*``) from the Trainer's saved state."""
    state = json.loads((Path(directory) / CHECKPOINT_DIR / "trainer_state.json").read_text())
    rows: dict[int, dict[str, Any]] = {}
    for log in state.get("log_history", []):
        step = int(log.get("step", 0))
        row = rows.setdefault(step, {"step": step})
        if "epoch" in log:
            row["epoch"] = float(log["epoch"])
        if "loss" in log:
            row["train_loss"] = float(log["loss"])
        for key, value in log.items():
            if key.startswith("dev_"):
                row[key] = float(value)
    return [rows[k] for k in sorted(rows) if any(key.startswith("dev_") for key in rows[k])]
