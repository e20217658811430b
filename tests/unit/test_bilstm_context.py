"""Document context for the BiLSTM: windows, training batches, dev evaluation, export and the Tagger."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raytag.config import AugmentConfig, BiLSTMConfig, JobConfig, TrainConfig
from raytag.corpus.prepared import PreparedCorpus
from raytag.corpus.vocab import OOV_ID, PAD_ID, Vocabulary
from raytag.errors import ConfigError
from raytag.models.bilstm_context import SplitContext, add_context, context_starts, own_mask
from raytag.models.doc_context import flatten_documents, sentence_contexts
from tests.helpers import TableShard

# Whether "Kim" is a place or a person only the previous sentence of its document tells
# ("... to" / "... with"): a model without context cannot tag both right.
Doc = list[tuple[str, str]]
DOCUMENTS: list[Doc] = [
    [("a visit to", "O O O"), ("Kim", "B-LOC"), ("Ada went home", "B-PER O O")],
    [("a talk with", "O O O"), ("Kim", "B-PER"), ("Ada went to Oslo", "B-PER O O B-LOC")],
    [("Oslo Kim", "B-LOC B-PER")],
    [("we went to", "O O O"), ("Kim", "B-LOC"), ("home", "O")],
    [("we sat with", "O O O"), ("Kim", "B-PER")],
]
LABELS = Vocabulary.labels(["O", "B-PER", "I-PER", "B-LOC"])
CONFIG = BiLSTMConfig(embedding_dim=16, lstm_units=16, lstm_layers=1, dropout=0.0, char_features="cnn",
                      char_embedding_dim=8, char_units=8, max_word_length=6, casing_features=True,
                      casing_embedding_dim=4, output="crf", context=3)


def documents_corpus(directory: Path, splits: dict[str, list[Doc]]) -> PreparedCorpus:
    """A prepared corpus with documents, written without Ray. Sentence ids are neither 0-based
    nor in row order, and document ids are other sentences' ids, as in real prepared corpora."""
    rows = {split: [(d, s.split(), t.split()) for d, doc in enumerate(docs) for s, t in doc]
            for split, docs in splits.items()}
    words = Vocabulary.build(Counter(w for _, s, _ in rows["train"] for w in s))
    chars = Vocabulary.build(Counter(c for _, s, _ in rows["train"] for w in s for c in w))
    directory.mkdir(parents=True)
    for vocab, name in ((words, "words.json"), (chars, "chars.json"), (LABELS, "labels.json")):
        vocab.save(directory / name)
    manifest: dict = {"splits": {}, "entity": True, "fingerprint": "test"}
    for split, sentences in rows.items():
        sids = [1000 + 7 * i for i in range(len(sentences))]
        table = pa.table({
            "sid": pa.array(sids, pa.int64()),
            "document": pa.array([5 + 11 * d for d, _, _ in sentences], pa.int64()),
            "tokens": [s for _, s, _ in sentences], "tags": [t for _, _, t in sentences],
            "word_ids": [words.encode(s) for _, s, _ in sentences],
            "tag_ids": [LABELS.encode(t) for _, _, t in sentences],
        })
        pq.write_table(table, directory / f"{split}.parquet")
        manifest["splits"][split] = {"shards": [f"{split}.parquet"], "sentences": len(sentences)}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return PreparedCorpus(directory)


@pytest.fixture()
def corpus(tmp_path: Path) -> PreparedCorpus:
    return documents_corpus(tmp_path / "prepared", {"train": DOCUMENTS, "dev": DOCUMENTS, "test": DOCUMENTS})


def shuffled_shard(corpus: PreparedCorpus, seed: int = 0) -> TableShard:
    """The training split in another row order than the file's, as a Ray Data shard may hand it."""
    table = corpus.table("train", columns=["word_ids", "tag_ids", "tokens", "sid", "document"])
    return TableShard(table.take(np.random.default_rng(seed).permutation(table.num_rows)))


def batches(corpus: PreparedCorpus, model: BiLSTMConfig, train: TrainConfig, shard: TableShard | None = None,
            epoch: int = 0) -> list:
    from raytag.train.keras_loop import _epoch_batches

    return _epoch_batches(shard or shuffled_shard(corpus), corpus, model, train, train.batch_size, epoch)


def real_rows(batch_list: list, key: str) -> list[list[int]]:
    """Every batch row's real (unpadded) values of ``key`` (``labels`` for the labels)."""
    out = []
    for inputs, labels in batch_list:
        values = labels if key == "labels" else inputs[key]
        out += [row[ids != PAD_ID].tolist() for row, ids in zip(values, inputs["word_ids"])]
    return out


# --- windows --------------------------------------------------------------------------------


def test_windows_wrap_each_sentence_in_its_context_and_nothing_without_one() -> None:
    sentences = [["a", "b"], ["c"], ["x"], ["d", "e"]]
    tags = [[1, 2], [3], [9], [4, 5]]
    contexts = sentence_contexts(sentences, ["d1", "d1", "d2", "d1"], 2)
    windows = add_context(sentences, contexts)
    assert windows == [["a", "b", "c", "d"], ["a", "b", "c", "d", "e"], ["x"], ["b", "c", "d", "e"]]
    starts = context_starts(contexts, len(sentences))
    assert starts == [0, 2, 0, 2]
    # Tags go through the same contexts, so every window position keeps its word's tag.
    tag_windows = add_context(tags, sentence_contexts(tags, ["d1", "d1", "d2", "d1"], 2))
    assert tag_windows == [[1, 2, 3, 4], [1, 2, 3, 4, 5], [9], [2, 3, 4, 5]]
    for window, start, sentence in zip(windows, starts, sentences):
        assert window[start : start + len(sentence)] == sentence
    mask = own_mask(starts, [len(s) for s in sentences], 5)
    assert mask.astype(int).tolist() == [[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 1, 1, 0]]
    # No context: the rows themselves, starting at 0.
    assert add_context(sentences, None) == sentences and context_starts(None, 4) == [0] * 4
    with pytest.raises(ValueError, match="contexts"):
        add_context(sentences, contexts[:2])


def test_split_context_finds_each_sentence_by_sid_in_its_own_document(corpus: PreparedCorpus) -> None:
    context = SplitContext(corpus, "train", 2)
    table = corpus.table("train", columns=["sid", "tokens", "word_ids", "tag_ids"])
    sids = table.column("sid").to_pylist()
    # Kim of the second document: "talk with" before, "Ada went" after, not the first document's words.
    word_ids, tokens, tag_ids = context.lookup([sids[4], sids[6]])
    assert tokens == [(["talk", "with"], ["Ada", "went"]), ([], [])]
    assert word_ids[0] == (corpus.words.encode(["talk", "with"]), corpus.words.encode(["Ada", "went"]))
    assert tag_ids[0] == (LABELS.encode(["O", "O"]), LABELS.encode(["B-PER", "O"]))
    with pytest.raises(KeyError, match="sentence id 3"):
        context.lookup([3])


# --- training batches -----------------------------------------------------------------------


def test_training_windows_carry_context_words_with_their_gold_tags(corpus: PreparedCorpus) -> None:
    train = TrainConfig(batch_size=4, bucket_by_length=False)
    got = batches(corpus, CONFIG, train)
    table = corpus.table("train", columns=["tokens", "tags", "document"])
    sentences, tags = table.column("tokens").to_pylist(), table.column("tags").to_pylist()
    documents = table.column("document").to_pylist()
    expected_words = add_context(sentences, sentence_contexts(sentences, documents, 3))
    expected_tags = add_context(tags, sentence_contexts(tags, documents, 3))
    windows = [(tuple(w), tuple(t)) for w, t in zip(real_rows(got, "word_ids"), real_rows(got, "labels"))]
    assert sorted(windows) == sorted((tuple(corpus.words.encode(w)), tuple(LABELS.encode(t)))
                                     for w, t in zip(expected_words, expected_tags))
    # Char and casing ids are the window's words too.
    from raytag.models.casing import casing_ids
    assert sorted(map(tuple, real_rows(got, "casing_ids"))) == sorted(tuple(casing_ids(w)) for w in expected_words)
    # Whatever order the shard hands the rows in.
    other = batches(corpus, CONFIG, train, shuffled_shard(corpus, seed=5))
    assert sorted(map(tuple, real_rows(other, "labels"))) == sorted(map(tuple, real_rows(got, "labels")))


def test_context_zero_batches_are_the_sentences_themselves(corpus: PreparedCorpus) -> None:
    train = TrainConfig(batch_size=4)
    plain = CONFIG.model_copy(update={"context": 0})
    shard = shuffled_shard(corpus)
    got = batches(corpus, plain, train, shard)
    # The same batches as from a shard without sid and document columns.
    bare = TableShard(shard.table.select(["word_ids", "tag_ids", "tokens"]))
    for (inputs, labels), (bare_inputs, bare_labels) in zip(got, batches(corpus, plain, train, bare), strict=True):
        assert inputs.keys() == bare_inputs.keys()
        for key in inputs:
            np.testing.assert_array_equal(inputs[key], bare_inputs[key])
        np.testing.assert_array_equal(labels, bare_labels)
    assert sorted(map(tuple, real_rows(got, "word_ids"))) == sorted(
        map(tuple, corpus.table("train", ["word_ids"]).column("word_ids").to_pylist()))


def test_word_dropout_and_augmentation_leave_context_words_clean(corpus: PreparedCorpus) -> None:
    model = CONFIG.model_copy(update={"context": 2})
    shard = shuffled_shard(corpus)
    clean = batches(corpus, model, TrainConfig(batch_size=4, bucket_by_length=False), shard)
    noisy_train = TrainConfig(batch_size=4, bucket_by_length=False, word_dropout=0.99,
                              augment=AugmentConfig(sentences=1.0, words=1.0, kinds=["case"]))
    noisy = batches(corpus, model, noisy_train, shard)
    # No bucketing: batch rows follow the shard's rows, whose own words start after their left context.
    _, left_right, _ = SplitContext(corpus, "train", 2).lookup(shard.table.column("sid").to_pylist())
    lengths = [len(s) for s in shard.table.column("tokens").to_pylist()]
    starts = context_starts(left_right, len(lengths))
    row = 0
    own_words = dropped = 0
    for (clean_inputs, clean_labels), (noisy_inputs, noisy_labels) in zip(clean, noisy, strict=True):
        np.testing.assert_array_equal(noisy_labels, clean_labels)
        size = len(clean_labels)
        own = own_mask(starts[row : row + size], lengths[row : row + size], clean_labels.shape[1])
        row += size
        real = clean_inputs["word_ids"] != PAD_ID
        np.testing.assert_array_equal(noisy_inputs["word_ids"][real & ~own], clean_inputs["word_ids"][real & ~own])
        np.testing.assert_array_equal(noisy_inputs["casing_ids"][real & ~own],
                                      clean_inputs["casing_ids"][real & ~own])
        dropped += int((noisy_inputs["word_ids"][own] == OOV_ID).sum())
        own_words += int(own.sum())
    assert row == len(lengths) and dropped > 0.9 * own_words


# --- dev evaluation, export, the Tagger -----------------------------------------------------


def fit(corpus: PreparedCorpus, model_cfg: BiLSTMConfig, epochs: int = 60):
    """A tiny model fitted on the training windows ``_epoch_batches`` gives."""
    from raytag.models import bilstm

    bilstm.keras.utils.set_random_seed(0)
    model = bilstm.build_model(model_cfg, len(corpus.words), len(corpus.chars), len(LABELS))
    bilstm.compile_model(model, 0.05)
    train = TrainConfig(batch_size=16)
    for epoch in range(epochs):
        for inputs, labels in batches(corpus, model_cfg, train, epoch=epoch):
            model.train_on_batch(inputs, labels)
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained with 3 words of context, exported as an artifact and loaded as a Tagger."""
    from raytag.artifact import export
    from raytag.tagger import load_tagger

    tmp = tmp_path_factory.mktemp("bilstm-context")
    corpus = documents_corpus(tmp / "prepared", {"train": DOCUMENTS, "dev": DOCUMENTS, "test": DOCUMENTS})
    model = fit(corpus, CONFIG)
    checkpoint = tmp / "checkpoint"
    checkpoint.mkdir()
    model.save_weights(str(checkpoint / "weights.h5"))
    job = JobConfig(name="j", corpus={"format": "conll", "path": "x.conll"}, model=CONFIG)
    artifact = export(job, corpus, checkpoint, [], tmp / "artifact")
    return corpus, model, artifact, load_tagger(artifact, device="cpu")


def test_a_model_trained_with_context_tags_by_it_and_reloads_identically(trained) -> None:
    from raytag.artifact import evaluate_tagger
    from raytag.models import bilstm
    from raytag.train.keras_loop import DevSet

    corpus, model, artifact, tagger = trained
    assert json.loads((artifact / "tagger.json").read_text())["context"] == 3
    dev = DevSet(corpus, "dev", True, CONFIG.max_word_length, casing=True, context=3)
    assert dev.evaluate(model, corpus)["dev_f1"] == 1.0

    assert tagger.context == 3
    documents = [[s.split() for s, _ in doc] for doc in DOCUMENTS]
    gold = [[t.split() for _, t in doc] for doc in DOCUMENTS]
    results = tagger.predict_documents(documents, batch_size=3)
    assert [[r.tags for r in doc] for doc in results] == gold
    assert evaluate_tagger(tagger, corpus, "test")["micro"]["f1"] == 1.0
    # The Tagger's scores are the in-memory model's window probabilities at the sentence's positions.
    sentences, keys = flatten_documents(documents)
    contexts = sentence_contexts(sentences, keys, 3)
    windows = add_context(sentences, contexts)
    inputs, _ = bilstm.encode_batch([corpus.words.encode(w) for w in windows], windows, corpus.chars,
                                    CONFIG.max_word_length, casing=True)
    probs, _ = bilstm.predict_outputs(model, inputs)
    flat = [r for doc in results for r in doc]
    for row, (result, start) in enumerate(zip(flat, context_starts(contexts, len(sentences)))):
        own = probs[row, start : start + len(result.tokens)]
        expected = own[np.arange(len(result.tokens)), LABELS.encode(result.tags)]
        np.testing.assert_allclose([t.score for t in result.tokens], expected, atol=1e-5)
    # Alone, the two Kims are the same input: one of them must be wrong.
    assert [r.tags for r in tagger.predict(sentences)] != [t for doc in gold for t in doc]


def test_context_zero_tagger_predicts_documents_as_predict(trained, tmp_path: Path) -> None:
    from raytag.tagged import predict_in_documents
    from raytag.tagger import load_tagger

    _, _, artifact, context_tagger = trained
    plain = tmp_path / "plain"
    plain.mkdir()
    for path in artifact.iterdir():
        (plain / path.name).symlink_to(path)
    (plain / "tagger.json").unlink()
    meta = json.loads((artifact / "tagger.json").read_text())
    (plain / "tagger.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "context"}))
    tagger = load_tagger(plain, device="cpu")
    assert tagger.context == 0
    documents = [[s.split() for s, _ in doc] for doc in DOCUMENTS] + [[[], ["Ada"]]]
    sentences, keys = flatten_documents(documents)
    expected = tagger.predict(sentences)
    got = [r for doc in tagger.predict_documents(documents) for r in doc]
    assert [r.to_dict() for r in got] == [r.to_dict() for r in expected]
    assert [r.to_dict() for r in predict_in_documents(tagger, sentences, keys)] == [r.to_dict() for r in expected]
    # The context model reads the documents differently from this one.
    with_context = [r for doc in context_tagger.predict_documents(documents) for r in doc]
    assert [r.tags for r in with_context] != [r.tags for r in expected]


def test_context_needs_sentence_and_document_ids(tmp_path: Path) -> None:
    from raytag.train.bilstm import BiLSTMAdapter
    from tests.helpers import hand_prepared_corpus

    bare = hand_prepared_corpus(tmp_path / "bare", {"train": [["Ada"]], "dev": [["Ada"]]}, lambda w: "O")
    job = JobConfig(name="j", corpus={"format": "conll", "path": "x.conll"}, model=CONFIG)
    adapter = BiLSTMAdapter()
    assert adapter.train_columns(job)[-1] == "sid"
    with pytest.raises(ConfigError, match="no sid or document column"):
        adapter.check_prepared(bare, job)
    plain = job.model_copy(update={"model": CONFIG.model_copy(update={"context": 0})})
    adapter.check_prepared(bare, plain)
    assert adapter.train_columns(plain) == ["word_ids", "tag_ids", "tokens"]
