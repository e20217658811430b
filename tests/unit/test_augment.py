"""Noise-aware training: seeded per-epoch perturbations and word dropout in the training batches."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from raytag.augment import augment_sentence, augment_sentences, entity_flags, entity_tag_ids
from raytag.config import AugmentConfig, BiLSTMConfig, JobConfig, TrainConfig, TransformerConfig, load_job
from raytag.corpus.prepared import PreparedCorpus
from raytag.corpus.vocab import OOV_ID, PAD_ID
from raytag.errors import ConfigError
from raytag.perturb import is_eligible
from tests.helpers import TableShard, hand_prepared_corpus

WORDS = ["Ada", "Lovelace", "visited", "Paris", "and", "London", "in", "1843", ".", "Grace", "Hopper", "left", "Oslo"]


def sentences(count: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(WORDS) for _ in range(rng.randint(3, 12))] for _ in range(count)]


def test_same_seed_same_output_other_epochs_and_seeds_differ() -> None:
    config = AugmentConfig(sentences=0.5, words=0.5)
    data = sentences(200)
    first = augment_sentences(data, config, seed=1, epoch=0)
    assert first == augment_sentences(data, config, seed=1, epoch=0)
    assert first != augment_sentences(data, config, seed=1, epoch=1)
    assert first != augment_sentences(data, config, seed=2, epoch=0)
    # A sentence's fate depends on its words, not on its neighbours or position.
    assert augment_sentences(data[::-1], config, seed=1, epoch=0) == first[::-1]


def test_labels_stay_aligned_and_shares_are_respected() -> None:
    data = sentences(2000, seed=3)
    config = AugmentConfig(sentences=0.3, words=0.25, kinds=["typos"])
    out = augment_sentences(data, config, seed=0, epoch=4)
    changed = [(words, new) for words, new in zip(data, out) if new is not None]
    # Every sentence here has a word typos can change, so the picked share is the changed share.
    assert len(changed) / len(data) == pytest.approx(0.3, abs=0.03)
    touched = eligible = 0
    for words, new in changed:
        assert len(new) == len(words) and all(new_word for new_word in new)
        touched += sum(a != b for a, b in zip(words, new))
        eligible += sum(is_eligible(w, "typos") for w in words)
    # A picked sentence has at least one change, so its share is a little above `words`.
    assert 0.25 <= touched / eligible <= 0.35
    assert augment_sentences(data, AugmentConfig(sentences=0.0), 0, 0) == [None] * len(data)


def test_whole_sentence_casing_and_kinds() -> None:
    words = ["Ada", "visited", "Paris", "."]
    config = AugmentConfig(sentences=1.0, words=1.0, kinds=["case"])
    seen = {tuple(augment_sentence(words, config, seed, 0)) for seed in range(30)}
    # One casing for the whole sentence: lower, UPPER or Title.
    assert seen == {("ada", "visited", "paris", "."), ("ADA", "VISITED", "PARIS", "."),
                    ("Ada", "Visited", "Paris", ".")}
    # A kind that finds nothing to change gives way to another one; with none, nothing changes.
    both = AugmentConfig(sentences=1.0, kinds=["case", "ocr"])
    assert {tuple(augment_sentence(["10", "."], both, seed, 0)) for seed in range(20)} == {("l0", "."), ("1O", ".")}
    assert augment_sentence(["-", "."], both, 0, 0) is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.augment.kinds=[truncate-entities]", "cannot be used for training"),
        ("train.augment.kinds=[typo]", "unknown kind 'typo'"),
        ("train.augment.kinds=[]", "at least one kind"),
        ("train.augment.weights.typo=2", "train.augment: .*'typo' is not one of the kinds"),
        ("train.augment.weights.typos=0", "'typos' must be above 0"),
        ("train.augment.sentences=1.5", "train.augment.sentences"),
        ("train.augment.word=0.1", "train.augment.word"),
        ("train.word_dropout=1", "train.word_dropout"),
        ("train.lr_schedule=step", "train.lr_schedule"),
        ("model.output=hmm", "model.bilstm.output"),
    ],
)
def test_bad_options_name_their_field(tmp_path: Path, override: str, message: str) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: j\ncorpus: {format: conll, path: x.conll}\n")
    with pytest.raises(ConfigError, match=message):
        load_job(job, [override])


def test_weights_favour_a_kind() -> None:
    # case keeps the letters, typos changes them: the share of typo sentences shows the draw.
    data = [[f"word{i}", "and", f"more{i}"] for i in range(3000)]

    def typo_share(config: AugmentConfig) -> float:
        out = augment_sentences(data, config, seed=0, epoch=0)
        return sum(" ".join(new).lower() != " ".join(old).lower() for old, new in zip(data, out)) / len(data)

    even = AugmentConfig(sentences=1.0, kinds=["case", "typos"])
    assert typo_share(even) == pytest.approx(0.5, abs=0.03)
    assert typo_share(even.model_copy(update={"weights": {"typos": 3.0}})) == pytest.approx(0.75, abs=0.03)
    assert typo_share(AugmentConfig(sentences=1.0, kinds=["case", "typos"], weights={"case": 4.0})) == \
        pytest.approx(0.2, abs=0.03)


def test_entity_words_get_their_own_share() -> None:
    labels = ["O", "B-PER", "I-PER", "NN"]
    assert entity_tag_ids(labels) == {1, 2} and entity_flags([0, 1, 2, 3], entity_tag_ids(labels)) == [
        False, True, True, False]
    data = sentences(2000, seed=4)
    flags = [[word in TAGS or word in ("Lovelace", "Hopper") for word in words] for words in data]
    config = AugmentConfig(sentences=1.0, words=0.1, entity_words=0.8, kinds=["typos"])

    def shares(out: list[list[str] | None]) -> tuple[float, float]:
        hit = {True: 0, False: 0}
        seen = {True: 0, False: 0}
        for words, new, marks in zip(data, out, flags):
            for old, changed, entity in zip(words, new or words, marks):
                if is_eligible(old, "typos"):
                    seen[entity] += 1
                    hit[entity] += old != changed
        return hit[True] / seen[True], hit[False] / seen[False]

    entity_share, other_share = shares(augment_sentences(data, config, seed=0, epoch=0, entities=flags))
    assert entity_share == pytest.approx(0.8, abs=0.05) and other_share == pytest.approx(0.1, abs=0.05)
    # Without the flags (a POS corpus has no entity words) every word gets `words`.
    entity_share, other_share = shares(augment_sentences(data, config, seed=0, epoch=0))
    assert entity_share == pytest.approx(other_share, abs=0.05) and other_share < 0.2


def test_word_dropout_is_for_the_bilstm_only() -> None:
    corpus = {"format": "conll", "path": "x.conll"}
    with pytest.raises(ValueError, match="word_dropout applies to model.kind 'bilstm' only"):
        JobConfig(name="j", corpus=corpus, model=TransformerConfig(), train=TrainConfig(word_dropout=0.1))
    assert JobConfig(name="j", corpus=corpus, train=TrainConfig(word_dropout=0.1)).train.word_dropout == 0.1


# --- the BiLSTM's training batches -----------------------------------------------------------------

TAGS = {"Ada": "B-PER", "Lovelace": "I-PER", "Grace": "B-PER", "Hopper": "I-PER", "Paris": "B-LOC",
        "London": "B-LOC", "Oslo": "B-LOC"}


def prepared_corpus(directory: Path, train: list[list[str]], dev: list[list[str]]) -> PreparedCorpus:
    return hand_prepared_corpus(directory, {"train": train, "dev": dev}, lambda word: TAGS.get(word, "O"))


@pytest.fixture()
def corpus(tmp_path: Path) -> PreparedCorpus:
    return prepared_corpus(tmp_path / "prepared", sentences(300, seed=1), sentences(20, seed=2))


def epoch_batches(corpus: PreparedCorpus, model: BiLSTMConfig, train: TrainConfig, epoch: int, **kwargs):
    from raytag.train.keras_loop import _epoch_batches

    shard = TableShard(corpus.table("train", columns=["word_ids", "tag_ids", "tokens"]))
    return _epoch_batches(shard, corpus, model, train, train.batch_size, epoch, **kwargs)


def flat(batches, key: str) -> np.ndarray:
    """Every real position of ``key`` across the batches, in batch order."""
    return np.concatenate([inputs[key][inputs["word_ids"] != PAD_ID].ravel() if key != "labels"
                           else labels[inputs["word_ids"] != PAD_ID] for inputs, labels in batches])


MODEL = BiLSTMConfig(char_features="cnn", casing_features=True, max_word_length=8)


def test_augmented_batches_re_encode_words_and_keep_labels(corpus: PreparedCorpus) -> None:
    from raytag.models.casing import casing_ids

    clean_train = TrainConfig(batch_size=16, bucket_by_length=False)
    noisy_train = clean_train.model_copy(update={"augment": AugmentConfig(sentences=0.5, words=0.5)})
    clean = epoch_batches(corpus, MODEL, clean_train, 0)
    noisy = epoch_batches(corpus, MODEL, noisy_train, 0)
    again = epoch_batches(corpus, MODEL, noisy_train, 0)
    later = epoch_batches(corpus, MODEL, noisy_train, 1)
    # No bucketing: batches follow the table, so positions line up across runs.
    np.testing.assert_array_equal(flat(noisy, "labels"), flat(clean, "labels"))
    for key in ("word_ids", "casing_ids"):
        np.testing.assert_array_equal(flat(noisy, key), flat(again, key))
        assert (flat(noisy, key) != flat(later, key)).any()
    assert (flat(noisy, "word_ids") == OOV_ID).mean() > 0.05 > (flat(clean, "word_ids") == OOV_ID).mean()

    tokens = corpus.table("train", columns=["tokens"]).column("tokens").to_pylist()
    expected = augment_sentences(tokens, noisy_train.augment, noisy_train.seed, 0)
    perturbed = [new if new is not None else old for old, new in zip(tokens, expected)]
    flat_words = [w for s in perturbed for w in s]
    # Word ids, characters and casing all come from the perturbed spelling.
    assert flat(noisy, "word_ids").tolist() == corpus.words.encode(flat_words)
    assert flat(noisy, "casing_ids").tolist() == casing_ids(flat_words)
    first_chars = np.concatenate([inputs["char_ids"][inputs["word_ids"] != PAD_ID][:, 0] for inputs, _ in noisy])
    assert first_chars.tolist() == [corpus.chars.id(w[0]) for w in flat_words]


def test_word_dropout_rate_scope_and_seeding(corpus: PreparedCorpus) -> None:
    from raytag.train.keras_loop import droppable_words, drop_words

    rng = np.random.default_rng(0)
    ids = rng.integers(2, 50, size=(400, 30))
    ids[:, 25:] = PAD_ID
    dropped = drop_words(ids, 0.25, np.random.default_rng(1))
    real = ids != PAD_ID
    assert (dropped[~real] == PAD_ID).all()
    assert (dropped[real] == OOV_ID).mean() == pytest.approx(0.25, abs=0.01)
    assert ((dropped == ids) | (dropped == OOV_ID)).all()
    np.testing.assert_array_equal(drop_words(ids, 0.25, np.random.default_rng(1)), dropped)

    singletons = droppable_words(corpus, "singletons")
    counts = Counter(i for s in corpus.table("train", ["word_ids"]).column("word_ids").to_pylist() for i in s)
    assert singletons.tolist() == [i > OOV_ID and counts[i] == 1 for i in range(len(corpus.words))]
    assert not droppable_words(corpus, "all")[[PAD_ID, OOV_ID]].any()
    least = min(c for i, c in counts.items() if i > OOV_ID)
    rare = droppable_words(corpus, "rare", least)
    assert rare.any() and rare.tolist() == [i > OOV_ID and 1 <= counts[i] <= least for i in range(len(corpus.words))]
    assert droppable_words(corpus, "rare", max(counts.values())).tolist() == [
        i > OOV_ID and counts[i] >= 1 for i in range(len(corpus.words))]
    only = drop_words(ids % len(corpus.words), 1.0 - 1e-9, np.random.default_rng(2), singletons)
    hit = only != ids % len(corpus.words)
    assert singletons[(ids % len(corpus.words))[hit]].all() and (only[hit] == OOV_ID).all()


def test_word_dropout_hits_training_batches_only(corpus: PreparedCorpus) -> None:
    from raytag.train.keras_loop import DevSet

    train = TrainConfig(batch_size=16, word_dropout=0.3)
    clean = flat(epoch_batches(corpus, MODEL, train.model_copy(update={"word_dropout": 0.0}), 0), "word_ids")
    noisy = flat(epoch_batches(corpus, MODEL, train, 0), "word_ids")
    # Same sentences in the same batches; ~30% of the ids became OOV.
    assert ((noisy == OOV_ID) & (clean != OOV_ID)).mean() == pytest.approx(0.3, abs=0.04)
    np.testing.assert_array_equal(flat(epoch_batches(corpus, MODEL, train, 0), "word_ids"), noisy)
    assert (flat(epoch_batches(corpus, MODEL, train, 1), "word_ids") != noisy).any()
    assert (flat(epoch_batches(corpus, MODEL, train, 0, rank=1), "word_ids") != noisy).any()

    dev = DevSet(corpus, "dev", True, MODEL.max_word_length, casing=True)
    dev_tokens = corpus.table("dev", columns=["tokens"]).column("tokens").to_pylist()
    for index, inputs in dev.batches:
        for row, i in enumerate(index):
            assert inputs["word_ids"][row, : len(dev_tokens[i])].tolist() == corpus.words.encode(dev_tokens[i])


# --- the transformer's training windows -------------------------------------------------------------

def window_batch(tokenizer, rows: list[list[str]], max_length: int, stride: int) -> pa.Table:
    from raytag.subword_stage import encode_windows

    labels = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3}
    tag_ids = [[labels[TAGS.get(w, "O")] for w in s] for s in rows]
    return encode_windows(pa.table({"tokens": rows, "tag_ids": tag_ids}), tokenizer, max_length, stride, False)


def test_transformer_windows_are_re_cut_from_perturbed_words_per_epoch() -> None:
    from raytag.models.subwords import IGNORE_INDEX, encode_sentences, tiny_wordpiece_tokenizer
    from raytag.train.augmented_windows import AugmentedWindows, AugmentEpochs
    from raytag.train.hf_loop import training_features

    tokenizer = tiny_wordpiece_tokenizer([w.lower() for w in WORDS])
    model = TransformerConfig(max_length=32, stride=1)
    rows = sentences(60, seed=4) + [WORDS * 3]
    batch = window_batch(tokenizer, rows, model.max_length, model.stride)
    assert max(batch.column("window_count").to_pylist()) > 1  # a sentence spans several windows
    # The tiny tokenizer lowercases: case perturbations would not change its subwords.
    augment = AugmentConfig(sentences=0.5, words=0.5, kinds=["typos", "keyboard", "ocr"])
    dataset = AugmentedWindows.from_batches([batch.slice(30), batch.slice(0, 30)], tokenizer, model, augment, seed=3)
    assert len(dataset.sentences) == len(rows)
    clean = training_features([batch])
    assert len(dataset) == len(clean)
    # Same order as the clean features, whatever order the batches came in.
    assert [dataset.features[i] for i in range(len(dataset))] == clean

    def items(epoch: int) -> list[dict]:
        dataset.set_epoch(epoch)
        return [dataset[i] for i in range(len(dataset))]

    first = items(0)
    assert first == items(0) and first != items(1)
    changed = 0
    for item, feature, source in zip(first, dataset.features, dataset.sources):
        words, tags = dataset.sentences[source.sentence]
        perturbed = augment_sentence(words, augment, 3, 0)
        if perturbed is None:
            assert item == feature
            continue
        windows = encode_sentences(tokenizer, [perturbed], [tags], model.max_length, model.stride)
        if len(windows) != source.windows:
            assert item == feature  # cut differently: the clean window stands in
            continue
        changed += item != feature
        assert item == {"input_ids": windows[source.window].input_ids, "labels": windows[source.window].labels}
        # The words a window owns keep their tags, in order.
        kept = [label for label in item["labels"] if label != IGNORE_INDEX]
        assert kept == [label for label in feature["labels"] if label != IGNORE_INDEX]
    assert changed > len(dataset) // 4

    class State:
        epoch = 2.0

    AugmentEpochs(dataset).on_epoch_begin(None, State(), None)
    assert dataset.epoch == 2 and [dataset[i] for i in range(len(dataset))] == items(2)


@pytest.mark.parametrize(("schedule", "expected"), [(None, "linear"), ("linear_decay", "linear"),
                                                    ("cosine", "cosine"), ("constant", "constant_with_warmup")])
def test_transformer_lr_schedule_maps_to_the_trainer(tmp_path: Path, schedule, expected: str) -> None:
    from raytag.train.hf_loop import training_arguments

    job = JobConfig(name="j", corpus={"format": "conll", "path": "x.conll"}, model=TransformerConfig(),
                    train=TrainConfig(lr_schedule=schedule))
    assert training_arguments(job, str(tmp_path), 1, None).lr_scheduler_type.value == expected


def test_transformer_reads_words_and_tags_only_when_augmenting() -> None:
    from raytag.train.transformer import TransformerAdapter

    job = JobConfig(name="j", corpus={"format": "conll", "path": "x.conll"}, model=TransformerConfig())
    assert TransformerAdapter().train_columns(job) == ["window_input_ids", "window_labels"]
    job.train.augment = AugmentConfig(sentences=0.2)
    assert TransformerAdapter().train_columns(job)[-2:] == ["tokens", "tag_ids"]


@pytest.mark.slow  # fine-tunes a tiny encoder for two epochs
def test_hf_trainer_moves_the_augmented_dataset_through_its_epochs(tmp_path: Path) -> None:
    from raytag.models.transformer import load_tokenizer
    from raytag.subword_stage import encode_windows
    from raytag.train.augmented_windows import AugmentEpochs
    from raytag.train.hf_loop import augmented_features, build_trainer
    from tests.helpers import tiny_encoder

    encoder = tiny_encoder(tmp_path / "encoder", [w.lower() for w in WORDS])
    corpus = prepared_corpus(tmp_path / "prepared", sentences(40, seed=5), sentences(8, seed=6))
    tokenizer = load_tokenizer(encoder)
    tokenizer.save_pretrained(str(corpus.directory / "tokenizer"))
    model = TransformerConfig(encoder=str(encoder), max_length=32, stride=1, warmup_ratio=0.0)
    train_table = encode_windows(corpus.table("train"), tokenizer, model.max_length, model.stride, False)
    job = JobConfig(name="j", corpus={"format": "conll", "path": "x.conll"}, model=model,
                    train=TrainConfig(epochs=2, batch_size=8, augment=AugmentConfig(sentences=0.5)))

    features = augmented_features(job, corpus, [train_table])
    epochs: list[int] = []
    set_epoch = features.set_epoch
    features.set_epoch = lambda epoch: (epochs.append(epoch), set_epoch(epoch))  # type: ignore[method-assign]
    trainer = build_trainer(job, corpus, features, str(tmp_path / "out"), world=1)
    trainer.add_callback(AugmentEpochs(features))
    trainer.train()
    assert trainer.state.global_step == 2 * -(-len(features) // 8)
    # Each pass over the data drew its batches from that epoch's perturbations.
    assert sorted(set(epochs)) == [0, 1] and features.epoch == 1
