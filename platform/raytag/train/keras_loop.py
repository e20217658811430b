"""The per-worker training function of the BiLSTM tagger under Ray Train.

Runs inside every ``TensorflowTrainer`` worker: a ``MultiWorkerMirroredStrategy``
keeps the replicas' weights identical, each worker reads its shard of the
training split from Ray Data, and every epoch ends with a dev evaluation, a
report and (on rank 0) a checkpoint. A restarted worker group resumes from the
latest checkpoint, weights, early-stopping state and learning-rate schedule included.

Training batches can be noisier than the corpus: ``train.augment`` perturbs a share
of the sentences afresh every epoch (their words are re-encoded, tags unchanged),
and ``train.word_dropout`` swaps word ids for the unknown-word id so the character
and casing features learn to carry words the vocabulary lacks. Neither touches the
dev evaluation or prediction. With ``model.context`` every sentence is trained and
evaluated inside the words of its document around it, the context words with their
own gold tags and never perturbed or dropped (:mod:`raytag.models.bilstm_context`).
With ``train.weight_average`` each epoch's dev evaluation and checkpoint hold the
optimizer's moving average of the weights (:mod:`raytag.models.weight_average`), and the
next epoch trains on from the last step's weights; a resumed run starts from the average.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from raytag.artifact_files import KERAS_STATE as STATE
from raytag.artifact_files import KERAS_WEIGHTS as WEIGHTS
from raytag.augment import augment_sentences, entity_flags, entity_tag_ids
from raytag.config import BiLSTMConfig, JobConfig, TrainConfig
from raytag.corpus.prepared import PreparedCorpus
from raytag.corpus.vocab import OOV_ID, PAD_ID
from raytag.models.bilstm_batches import CLEAN_MASK
from raytag.train.adapter import WorkerRun, typed_model

if TYPE_CHECKING:
    from raytag.models.bilstm_context import SplitContext
    from raytag.models.word_pieces import WordPieces

POOL_BATCHES = 64


def train_loop(loop_config: dict[str, Any]) -> None:
    """Ray Train entry point; ``loop_config`` carries the :class:`WorkerRun`."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import ray.train
    import tensorflow as tf
    import tf_keras

    from raytag.models import bilstm
    from raytag.models.weight_average import averaged_weights

    run = WorkerRun.from_loop_config(loop_config)
    job, model_cfg, corpus = run.job, typed_model(run.job, BiLSTMConfig), run.corpus()
    # As many TF threads as CPUs this worker was given: more only fight the other workers
    # (and the collective's gRPC threads) for the same cores.
    threads = max(1, int(job.train.cpus_per_worker))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    tf_keras.utils.set_random_seed(job.train.seed)

    state: dict[str, Any] = {"epoch": 0, "history": [], "best_score": None, "best_epoch": None, "stale_epochs": 0,
                             "steps": 0}
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = {"steps": 0, **json.loads((Path(directory) / STATE).read_text())}
    per_worker = max(1, job.train.batch_size // world)

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = bilstm.build_model(model_cfg, len(corpus.words), len(corpus.chars), len(corpus.labels))
        bilstm.compile_model(model, learning_rate(job, corpus, world, per_worker, state["steps"]),
                             average_decay=job.train.weight_average)
    if job.train.augment.stability:
        model.stability_weight = float(job.train.augment.stability)
    # Weights and loop state are restored; Adam's moment estimates restart from zero.
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            model.load_weights(str(Path(directory) / WEIGHTS))

    pieces = word_pieces(model_cfg)
    dev = DevSet(corpus, job.train.dev_split, model_cfg.char_features != "none", model_cfg.max_word_length,
                 constrained=job.train.constrained_decoding, casing=model_cfg.casing_features, pieces=pieces,
                 context=model_cfg.context)
    contexts = split_context(corpus, model_cfg)
    shard = ray.train.get_dataset_shard("train")
    droppable = (droppable_words(corpus, job.train.word_dropout_scope, job.train.word_dropout_rare_max)
                 if job.train.word_dropout else None)

    while state["epoch"] < job.train.epochs:
        epoch = state["epoch"]
        run.seams.maybe_fail(rank, epoch=epoch)
        started = time.perf_counter()
        batches = _epoch_batches(shard, corpus, model_cfg, job.train, per_worker, epoch, rank=rank,
                                 droppable=droppable, pieces=pieces, contexts=contexts)
        if job.train.max_steps_per_epoch:
            batches = batches[: job.train.max_steps_per_epoch]
        fit = model.fit(_as_tf_dataset(batches, model_cfg, tf), epochs=1, steps_per_epoch=len(batches), verbose=0)
        # With train.weight_average the epoch is evaluated, checkpointed and kept as the average.
        with averaged_weights(model):
            metrics = {"epoch": epoch + 1, "train_loss": float(fit.history["loss"][-1]), **dev.evaluate(model, corpus)}
            metrics["epoch_seconds"] = time.perf_counter() - started
            score = metrics["dev_score"]
            improved = state["best_score"] is None or score > state["best_score"]
            state.update(
                epoch=epoch + 1,
                steps=state["steps"] + len(batches),
                history=[*state["history"], metrics],
                best_score=score if improved else state["best_score"],
                best_epoch=epoch + 1 if improved else state["best_epoch"],
                stale_epochs=0 if improved else state["stale_epochs"] + 1,
            )
            patience = job.train.early_stopping_patience
            stop = patience is not None and state["stale_epochs"] >= patience
            run.seams.record_weights(model.get_weights(), rank, epoch + 1)
            _report(model, metrics, state, rank)
        if stop:
            break


def word_pieces(model: BiLSTMConfig) -> WordPieces | None:
    """The bundled encoder's word-to-pieces map when the model reads pretrained piece vectors."""
    if not model.encoder_vectors:
        return None
    from raytag.models.word_pieces import WordPieces

    return WordPieces.bundled(model.max_word_pieces)


def split_context(corpus: PreparedCorpus, model: BiLSTMConfig) -> SplitContext | None:
    """The training split's document contexts when the model reads ``model.context`` words of them."""
    if not model.context:
        return None
    from raytag.models.bilstm_context import SplitContext

    return SplitContext(corpus, "train", model.context)


def learning_rate(job: JobConfig, corpus: PreparedCorpus, world: int, per_worker: int, done_steps: int = 0) -> Any:
    """The optimizer's learning rate: ``train.learning_rate`` or its schedule over the whole run.

    The run's length in steps is estimated from the training split's size, identically on
    every worker (replicas must apply the same rate), so a decay may end a few steps early.
    """
    from raytag.models.lr_schedule import learning_rate as schedule

    train = job.train
    steps_per_epoch = max(1, -(-corpus.sentences("train") // (per_worker * world)))
    if train.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, train.max_steps_per_epoch)
    return schedule(train.learning_rate, train.lr_schedule, steps_per_epoch * train.epochs,
                    typed_model(job, BiLSTMConfig).warmup_ratio, done_steps)


def droppable_words(corpus: PreparedCorpus, scope: str, rare_max: int = 1) -> np.ndarray:
    """Which word ids word dropout may replace: all real words, those seen once in training
    (``singletons``), or those seen at most ``rare_max`` times (``rare``)."""
    droppable = np.ones(len(corpus.words), dtype=bool)
    if scope in ("singletons", "rare"):
        ids = corpus.table("train", columns=["word_ids"]).column("word_ids").combine_chunks().flatten()
        counts = np.bincount(np.asarray(ids, dtype=np.int64), minlength=len(corpus.words))
        droppable = counts == 1 if scope == "singletons" else (counts >= 1) & (counts <= rare_max)
    droppable[[PAD_ID, OOV_ID]] = False
    return droppable


def drop_words(word_ids: np.ndarray, rate: float, rng: np.random.Generator,
               droppable: np.ndarray | None = None, own: np.ndarray | None = None) -> np.ndarray:
    """A copy of padded ``word_ids`` with each droppable real word replaced by the OOV id with probability ``rate``.

    ``own`` (same shape) limits it to the sentences' own words, sparing their document context.
    """
    out = np.array(word_ids, copy=True)
    hit = (out != PAD_ID) & (rng.random(out.shape) < rate)
    if droppable is not None:
        hit &= droppable[out]
    if own is not None:
        hit &= own
    out[hit] = OOV_ID
    return out


def _report(model: Any, metrics: dict[str, Any], state: dict[str, Any], rank: int) -> None:
    import ray.train

    if rank != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as directory:
        model.save_weights(str(Path(directory) / WEIGHTS))
        (Path(directory) / STATE).write_text(json.dumps(state))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))


def _epoch_batches(shard: Any, corpus: PreparedCorpus, model: BiLSTMConfig, train: TrainConfig, per_worker: int,
                   epoch: int, *, rank: int = 0, droppable: np.ndarray | None = None,
                   pieces: WordPieces | None = None, contexts: SplitContext | None = None) -> list[tuple]:
    """This worker's batches for one epoch: padded per batch, bucketed by length in pools.

    With ``train.augment`` the picked sentences are perturbed and re-encoded (word ids
    through the vocabulary, so unknown spellings become OOV; char and casing ids from
    the new spelling). With ``model.context`` each sentence then gets its document
    context (found by the row's ``sid`` in ``contexts``), words and gold tags, and is
    bucketed by its whole window's length. With ``train.word_dropout`` word ids are
    then dropped to OOV, only those ``droppable`` marks (all real words by default) and
    only in the sentences' own words. With ``train.augment.stability`` each batch is a
    triple: its clean originals (no noise, no word dropout) follow, with a ``CLEAN_MASK``
    of the perturbed sentences' own words.
    """
    from raytag.models import bilstm
    from raytag.models.bilstm_context import add_context, context_starts, own_mask

    chars = corpus.chars if model.char_features != "none" else None
    augment = train.augment
    out = []
    pool_size = per_worker * POOL_BATCHES
    rng_seed = train.seed * 1000 + epoch
    if model.encoder_vectors and pieces is None:
        pieces = word_pieces(model)
    need_tokens = chars is not None or model.casing_features or augment.enabled or pieces is not None
    columns = ["word_ids", "tag_ids", "tokens"] if need_tokens else ["word_ids", "tag_ids"]
    if model.context:
        contexts = contexts if contexts is not None else split_context(corpus, model)
        columns.append("sid")
    entity_ids = entity_tag_ids(corpus.labels.items) if augment.entity_words is not None else frozenset()
    stability = augment.enabled and augment.stability > 0
    if train.word_dropout and droppable is None:
        droppable = droppable_words(corpus, train.word_dropout_scope, train.word_dropout_rare_max)
    for pool_index, pool in enumerate(shard.iter_batches(batch_size=pool_size, batch_format="pyarrow")):
        pool = pool.select(columns)
        word_ids = pool.column("word_ids").to_pylist()
        tag_ids = pool.column("tag_ids").to_pylist()
        tokens = pool.column("tokens").to_pylist() if need_tokens else None
        # With stability training each batch also carries the clean originals of its sentences.
        originals = (list(word_ids), list(tokens)) if stability else None
        perturbed = np.zeros(len(word_ids), dtype=bool)
        if augment.enabled:
            assert tokens is not None
            seed = train.seed if augment.seed is None else augment.seed
            entities = ([entity_flags(tags, entity_ids) for tags in tag_ids]
                        if augment.entity_words is not None else None)
            for i, changed in enumerate(augment_sentences(tokens, augment, seed, epoch, entities)):
                if changed is not None:
                    tokens[i], word_ids[i] = changed, corpus.words.encode(changed)
                    perturbed[i] = True
        starts, own_lengths = [0] * len(word_ids), [len(s) for s in word_ids]
        if model.context:
            assert contexts is not None
            context_ids, context_tokens, context_tags = contexts.lookup(pool.column("sid").to_pylist())
            starts = context_starts(context_ids, len(word_ids))
            word_ids, tag_ids = add_context(word_ids, context_ids), add_context(tag_ids, context_tags)
            tokens = add_context(tokens, context_tokens) if tokens is not None else None
            if originals is not None:
                originals = (add_context(originals[0], context_ids), add_context(originals[1], context_tokens))
        dropout_rng = np.random.default_rng([train.seed, epoch, rank, pool_index])
        lengths = [len(s) for s in word_ids]
        order = (
            bilstm.bucket_batches(lengths, per_worker, seed=rng_seed + pool_index)
            if train.bucket_by_length
            else [np.arange(i, min(i + per_worker, len(lengths))) for i in range(0, len(lengths), per_worker)]
        )
        for index in order:
            inputs, labels = bilstm.encode_batch(
                [word_ids[i] for i in index],
                [tokens[i] for i in index] if tokens is not None else None,
                chars,
                model.max_word_length,
                [tag_ids[i] for i in index],
                casing=model.casing_features,
                pieces=pieces,
            )
            own = (own_mask([starts[i] for i in index], [own_lengths[i] for i in index], inputs["word_ids"].shape[1])
                   if model.context else None)
            if train.word_dropout:
                inputs["word_ids"] = drop_words(inputs["word_ids"], train.word_dropout, dropout_rng, droppable, own)
            if originals is None:
                out.append((inputs, labels))
                continue
            clean, _ = bilstm.encode_batch([originals[0][i] for i in index], [originals[1][i] for i in index], chars,
                                           model.max_word_length, casing=model.casing_features, pieces=pieces)
            # The KL term counts on the perturbed sentences' own words only.
            mask = own if own is not None else clean["word_ids"] != PAD_ID
            clean[CLEAN_MASK] = (mask & perturbed[index][:, None]).astype(np.float32)
            out.append((inputs, labels, clean))
    return out


def _as_tf_dataset(batches: list[tuple], model: BiLSTMConfig, tf: Any) -> Any:
    word_spec = tf.TensorSpec(shape=(None, None), dtype=tf.int32)
    inputs_spec = {"word_ids": word_spec}
    if model.char_features != "none":
        inputs_spec["char_ids"] = tf.TensorSpec(shape=(None, None, model.max_word_length), dtype=tf.int32)
    if model.casing_features:
        inputs_spec["casing_ids"] = word_spec
    if model.encoder_vectors:
        inputs_spec["piece_ids"] = tf.TensorSpec(shape=(None, None, model.max_word_pieces), dtype=tf.int32)
    label_spec = tf.TensorSpec(shape=(None, None), dtype=tf.int32)
    signature: tuple = (inputs_spec, label_spec)
    if batches and len(batches[0]) == 3:
        signature += ({**inputs_spec, CLEAN_MASK: tf.TensorSpec(shape=(None, None), dtype=tf.float32)},)

    def ints(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v if k == CLEAN_MASK else v.astype(np.int32) for k, v in inputs.items()}

    def generate():
        for inputs, labels, *clean in batches:
            yield (ints(inputs), labels.astype(np.int32), *(ints(c) for c in clean))

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    options = tf.data.Options()
    # Ray Data already gave each worker its own shard.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


class DevSet:
    """The dev split, pre-batched by length, evaluated at entity or token level.

    With ``context`` words each sentence is read inside its document's words around it,
    as in training, and scored on its own positions.
    """

    def __init__(self, corpus: PreparedCorpus, split: str, use_chars: bool, max_word_length: int,
                 constrained: bool = True, batch_size: int = 256, casing: bool = False,
                 pieces: WordPieces | None = None, context: int = 0):
        from raytag.models import bilstm
        from raytag.models.bilstm_context import add_context, context_starts
        from raytag.models.doc_context import sentence_contexts

        self.constrained = constrained
        columns = ["word_ids", "tags", "tokens"]
        table = corpus.table(split, columns=columns)
        self.tags = table.column("tags").to_pylist()
        word_ids = table.column("word_ids").to_pylist()
        tokens = table.column("tokens").to_pylist()
        # Where each sentence's own words start in what the model reads (0 without context).
        self.starts = [0] * len(tokens)
        if context:
            documents = corpus.documents(split)
            word_contexts = sentence_contexts(word_ids, documents, context)
            self.starts = context_starts(word_contexts, len(word_ids))
            word_ids = add_context(word_ids, word_contexts)
            tokens = add_context(tokens, sentence_contexts(tokens, documents, context))
        self.lengths = [len(s) for s in word_ids]
        order = np.argsort([len(s) for s in word_ids], kind="stable")
        self.batches = []
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            inputs, _ = bilstm.encode_batch(
                [word_ids[i] for i in index],
                [tokens[i] for i in index],
                corpus.chars if use_chars else None,
                max_word_length,
                casing=casing,
                pieces=pieces,
            )
            self.batches.append((index, inputs))

    def evaluate(self, model: Any, corpus: PreparedCorpus) -> dict[str, float]:
        from raytag.evaluate import evaluation_report, finite, headline_metrics
        from raytag.models import bilstm

        labels = corpus.labels.items
        constrained: list[list[str]] = [[] for _ in self.tags]
        greedy: list[list[str]] = [[] for _ in self.tags]
        transitions = bilstm.transition_scores(model)
        for index, inputs in self.batches:
            probs, emissions = bilstm.predict_outputs(model, inputs)
            lengths = [self.lengths[i] for i in index]
            for flag, out in ((True, constrained), (False, greedy)):
                # The whole window is decoded; the sentence's own positions are its tags.
                paths = bilstm.decode_outputs(probs, emissions, transitions, lengths, labels, constrained=flag)
                for i, path in zip(index, paths, strict=True):
                    start = self.starts[i]
                    out[i] = [labels[t] for t in path[start : start + len(self.tags[i])]]
        report = evaluation_report(self.tags, constrained, entity=corpus.entity)
        greedy_report = evaluation_report(self.tags, greedy, entity=corpus.entity)
        metrics = headline_metrics(report if self.constrained else greedy_report, "dev")
        if corpus.entity:
            # Both decodings, so a run shows what the transition constraints are worth.
            metrics.update(dev_f1_constrained=float(report["micro"]["f1"]),
                           dev_f1_argmax=float(greedy_report["micro"]["f1"]))
        return finite(metrics)
