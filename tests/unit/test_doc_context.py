"""Document context in transformer windows: encoding, the subword stage, taggers and evaluation."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from raytag.config import JobConfig, TransformerConfig, load_job
from raytag.errors import ConfigError
from raytag.models import transformer
from raytag.models.casing import token_type
from raytag.models.doc_context import fit_context, flatten_documents, sentence_contexts
from raytag.models.subwords import IGNORE_INDEX, encode_sentences, tiny_wordpiece_tokenizer
from raytag.subword_stage import encode_windows
from raytag.tagged import predict_in_documents
from raytag.tagger import TAGGER_FILE, TRANSFORMER_MODEL_DIR, load_tagger
from tests.helpers import tiny_encoder

VOCAB = ["ada", "lives", "in", "paris", "grace", "left", "oslo", "the", "river", "flows"]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def tiny():
    return tiny_wordpiece_tokenizer(VOCAB)


def _random_sentences(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    pool = [*VOCAB, "Zanzibar", "supercalifragilistic", "x", "Ünïcode", "."]
    return [[rng.choice(pool) for _ in range(rng.randint(1, 14))] for _ in range(n)]


def _encode(*args, **kwargs) -> list:
    """encode_sentences, quiet about over-long words (some of the random sentences have them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return encode_sentences(*args, **kwargs)


def _own(window) -> tuple:
    """A window with its context positions removed (specials and the sentence's words kept)."""
    inner = [p for p, w in enumerate(window.word_ids) if w is not None]
    keep = [0, *inner, len(window.input_ids) - 1]
    pick = lambda values: [values[p] for p in keep]  # noqa: E731
    return (pick(window.input_ids), pick(window.labels), pick(window.word_ids), window.first_word,
            window.last_word, window.sentence, pick(window.token_type_ids or [0] * len(window.input_ids)))


# --- plain functions -----------------------------------------------------------------------


def test_sentence_contexts_run_across_sentences_and_stop_at_the_document():
    sentences = [["a", "b"], ["c"], ["d", "e", "f"], ["x", "y"], ["g"]]
    found = sentence_contexts(sentences, ["d1", "d1", "d1", "d2", "d1"], 2)
    assert found[0] == ([], ["c", "d"])
    assert found[1] == (["a", "b"], ["d", "e"])
    assert found[2] == (["b", "c"], ["g"])  # d2's sentence in between is not part of d1
    assert found[3] == ([], [])  # alone in its document
    assert found[4] == (["e", "f"], [])
    assert sentence_contexts(sentences, [0] * 5, 0) == [([], [])] * 5
    with pytest.raises(ValueError, match="document keys"):
        sentence_contexts(sentences, [0], 2)


def test_fit_context_takes_whole_words_nearest_first_a_side_in_turn():
    # Left words cost 3, 1 (nearest last); right words 2, 5.
    assert fit_context([3, 1], [2, 5], 0) == (0, 0)
    assert fit_context([3, 1], [2, 5], 1) == (1, 0)
    assert fit_context([3, 1], [2, 5], 3) == (1, 1)
    assert fit_context([3, 1], [2, 5], 6) == (2, 1)  # 1 + 2 + 3; the 5-subword word no longer fits
    assert fit_context([3, 1], [2, 5], 100) == (2, 2)
    assert fit_context([], [1, 1, 1], 2) == (0, 2)


def test_flatten_documents_refuses_text():
    assert flatten_documents([[["a"], ["b", "c"]], [], [["d"]]]) == ([["a"], ["b", "c"], ["d"]], [0, 0, 2])
    for bad in ("text", [["a", "b"]], [[["a", 1]]]):
        with pytest.raises(TypeError):
            flatten_documents(bad)  # type: ignore[arg-type]


# --- windows -------------------------------------------------------------------------------


def test_context_words_surround_the_sentence_unlabelled(tiny):
    sentence, tags = ["Ada", "lives", "in", "Paris"], [1, 0, 0, 3]
    plain = encode_sentences(tiny, [sentence], [tags], 32, 2, casing=True)[0]
    window = encode_sentences(tiny, [sentence], [tags], 32, 2, casing=True,
                              contexts=[(["The", "river"], ["Grace", "left"])])[0]
    ids = lambda words: [tiny.convert_tokens_to_ids(w.lower()) for w in words]  # noqa: E731
    cls, sep = plain.input_ids[0], plain.input_ids[-1]
    assert window.input_ids == [cls, *ids(["the", "river"]), *plain.input_ids[1:-1], *ids(["grace", "left"]), sep]
    assert window.labels == [IGNORE_INDEX] * 3 + plain.labels[1:-1] + [IGNORE_INDEX] * 3
    assert window.word_ids == [None] * 3 + plain.word_ids[1:-1] + [None] * 3
    # Context words keep their own casing class (Title, lower), as the sentence's words do.
    assert window.token_type_ids[1:3] == [token_type("The"), token_type("river")]
    assert [label for label in window.labels if label != IGNORE_INDEX] == tags
    assert window.owned_positions() == [(w, p + 2) for w, p in plain.owned_positions()]


@pytest.mark.parametrize(("max_length", "stride", "context"), [(8, 1, 3), (12, 2, 20), (24, 0, 5), (64, 4, 40)])
def test_context_leaves_own_words_and_windows_as_they_were(tiny, max_length, stride, context):
    sentences = _random_sentences(40, seed=max_length) + [["supercalifragilistic"] * 3, VOCAB * 12]
    tags = [[random.Random(i).randrange(5) for _ in s] for i, s in enumerate(sentences)]
    contexts = sentence_contexts(sentences, [i // 5 for i in range(len(sentences))], context)
    plain = _encode(tiny, sentences, tags, max_length, stride, casing=True)
    wide = _encode(tiny, sentences, tags, max_length, stride, casing=True, contexts=contexts)
    assert len(wide) == len(plain)  # the same windows, one for one
    added = 0
    for before, after in zip(plain, wide, strict=True):
        assert len(after.input_ids) <= max_length
        assert _own(after) == _own(before)
        extra = len(after.input_ids) - len(before.input_ids)
        added += extra
        n_words = len(sentences[after.sentence])
        if before.word_ids[1] != 0 and before.word_ids[-2] != n_words - 1:
            assert extra == 0  # a window inside a long sentence has no document edge to fill
        if extra == 0 and (contexts[after.sentence][0] or contexts[after.sentence][1]):
            # Nothing added although there was context: the next context word must not have fitted.
            left, right = contexts[after.sentence]
            room = max_length - len(before.input_ids)
            nearest = [w for w, edge in ((left[-1:], before.word_ids[1] == 0),
                                         (right[:1], before.word_ids[-2] == n_words - 1)) if w and edge]
            assert all(len(tiny(w, is_split_into_words=True, add_special_tokens=False)["input_ids"]) > room
                       for w in nearest)
    assert added > 0
    # A sentence longer than its window: context only on its first and last windows.
    long = [w for w in wide if w.sentence == len(sentences) - 1]
    assert len(long) > 2 and all(w.word_ids[1] is not None and w.word_ids[-2] is not None for w in long[1:-1])


def test_sentences_without_context_get_the_plain_windows(tiny):
    sentences = _random_sentences(30, seed=2)
    plain = _encode(tiny, sentences, None, 16, 2)
    same = _encode(tiny, sentences, None, 16, 2, contexts=[([], [])] * len(sentences))
    assert same == plain
    with pytest.raises(ValueError, match="contexts"):
        encode_sentences(tiny, sentences, None, 16, 2, contexts=[([], [])])


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_stage_windows_are_unchanged_off_and_use_the_same_document_and_split(tiny):
    sentences = [["Ada", "lives"], ["in", "Paris"], ["Grace", "left"], ["the", "river"], ["flows"]]
    batch = pa.table({
        # Batch order is not document order: the sid says where each sentence sits.
        "sid": [5, 3, 1, 4, 2], "document": [9, 9, 9, 9, 7], "split": ["train", "train", "train", "dev", "train"],
        "tokens": sentences, "tag_ids": [[1, 0], [0, 3], [1, 0], [0, 0], [0]],
    })
    off = encode_windows(batch, tiny, 32, 2, False)
    assert _ipc(encode_windows(batch, tiny, 32, 2, False, context=0)) == _ipc(off)
    # Every sentence a document of its own: context on adds nothing.
    alone = batch.set_column(1, "document", pa.array([1, 2, 3, 4, 5], pa.int64()))
    assert _ipc(encode_windows(alone, tiny, 32, 2, False, context=8)) == _ipc(encode_windows(alone, tiny, 32, 2, False))

    on = encode_windows(batch, tiny, 32, 2, False, context=8)
    words = lambda row: tiny.convert_ids_to_tokens(on.column("window_input_ids")[row][0].as_py())[1:-1]  # noqa: E731
    # Document 9 in train, in sid order: [Grace left] (sid 1), [in Paris] (3), [Ada lives] (5).
    assert words(0) == ["grace", "left", "in", "paris", "ada", "lives"]
    assert words(1) == ["grace", "left", "in", "paris", "ada", "lives"]
    assert words(3) == ["the", "river"]  # the only dev sentence: train sentences are not its context
    assert words(4) == ["flows"]
    for name in ("window_first_word", "window_last_word", "window_count"):
        assert on.column(name) == off.column(name)
    for row in range(len(sentences)):
        own = [x for x in on.column("window_labels")[row][0].as_py() if x != IGNORE_INDEX]
        assert own == batch.column("tag_ids")[row].as_py()


# --- taggers and evaluation ----------------------------------------------------------------


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """An untrained tiny transformer tagger trained (in name) with 6 words of document context."""
    tmp = tmp_path_factory.mktemp("context")
    encoder = tiny_encoder(tmp / "encoder", VOCAB)
    model = transformer.build_model(TransformerConfig(encoder=str(encoder)), LABELS)
    out = tmp / "artifact"
    model.save_pretrained(str(out / TRANSFORMER_MODEL_DIR))
    transformer.load_tokenizer(encoder).save_pretrained(str(out / TRANSFORMER_MODEL_DIR))
    meta = {"kind": "transformer", "labels": LABELS, "entity": True, "constrained_decoding": False,
            "max_length": 16, "stride": 2, "context": 6}
    (out / TAGGER_FILE).write_text(json.dumps(meta))
    return out


DOCUMENTS = [[["Ada", "lives", "in", "Paris"], ["Grace", "left", "Oslo"]],
             [["The", "river", "flows", "in", "Oslo"]],
             [["Ada", "left"], [], ["Paris"]]]


def test_predict_documents_reads_context_and_predict_does_not(artifact):
    tagger = load_tagger(artifact, device="cpu")
    assert tagger.context == 6
    results = tagger.predict_documents(DOCUMENTS, batch_size=2)
    assert [len(d) for d in results] == [2, 1, 3]
    sentences, keys = flatten_documents(DOCUMENTS)
    contexts = sentence_contexts(sentences, keys, 6)
    expected = transformer.word_probabilities(tagger.model, tagger.tokenizer, sentences, 16, 2, contexts=contexts)
    got = [s for d in results for s in d]
    for sentence, probs, result in zip(sentences, expected, got, strict=True):
        assert [t.text for t in result.tokens] == sentence
        assert [t.score for t in result.tokens] == pytest.approx(probs.max(-1).tolist(), abs=1e-5)
    # Plain predict still works on such a model, without context: other probabilities.
    plain = tagger.predict(sentences, batch_size=2)
    alone = transformer.word_probabilities(tagger.model, tagger.tokenizer, sentences, 16, 2)
    assert [t.score for t in plain[0].tokens] == pytest.approx(alone[0].max(-1).tolist(), abs=1e-5)
    # The untrained model's outputs are nearly uniform: context moves them a little, but it moves them.
    assert np.abs(alone[0] - expected[0]).max() > 1e-6
    # predict_in_documents groups by key, whatever order the sentences come in.
    # Documents interleaved, each one's sentences still in order.
    order = [3, 0, 4, 2, 1, 5]
    keyed = predict_in_documents(tagger, [sentences[i] for i in order], [keys[i] for i in order], batch_size=2)
    assert [[t.score for t in r.tokens] for r in keyed] == [[t.score for t in got[i].tokens] for i in order]


def test_predict_in_documents_is_plain_predict_without_context(artifact, tmp_path):
    meta = json.loads((artifact / TAGGER_FILE).read_text())
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    (plain_dir / TRANSFORMER_MODEL_DIR).symlink_to(artifact / TRANSFORMER_MODEL_DIR)
    (plain_dir / TAGGER_FILE).write_text(json.dumps({k: v for k, v in meta.items() if k != "context"}))
    tagger = load_tagger(plain_dir, device="cpu")
    assert tagger.context == 0
    sentences, keys = flatten_documents(DOCUMENTS)
    expected = [r.tags for r in tagger.predict(sentences)]
    assert [r.tags for r in predict_in_documents(tagger, sentences, keys)] == expected
    assert [r.tags for d in tagger.predict_documents(DOCUMENTS) for r in d] == expected


class DocumentRecorder:
    """A tagger stub reading context: records the documents it is given, tags everything O."""

    labels = ["O", "B-ORG", "B-MISC", "B-PER", "I-PER", "B-LOC"]
    entity = True
    context = 3

    def __init__(self) -> None:
        self.documents: list = []

    def predict(self, inputs, batch_size=64):
        raise AssertionError("a context tagger must be called with its documents")

    def predict_documents(self, documents, batch_size=64):
        from raytag.tagged import TaggedSentence, TaggedToken

        self.documents.extend(documents)
        return [[TaggedSentence(" ".join(s), [TaggedToken(w, 0, 0, "O", 1.0) for w in s]) for s in d]
                for d in documents]


def test_evaluate_files_tags_conll_documents_with_context(tmp_path):
    from raytag.evaluate_files import evaluate_files
    from tests.helpers import CONLL

    path = tmp_path / "a.conll"
    path.write_text(CONLL)
    tagger = DocumentRecorder()
    report = evaluate_files(tagger, [str(path), str(path)])
    assert report["num_sentences"] == 6
    # Two documents per file, the same file read twice stays two files' documents.
    assert tagger.documents == [[["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"]],
                                [["BRUSSELS", "1996-08-22"]]] * 2


def test_export_and_prepared_corpus_checks_name_the_context(tmp_path):
    from raytag.train.transformer import TransformerAdapter

    job_file = tmp_path / "job.yaml"
    job_file.write_text("name: j\ncorpus: {format: conll, path: x.conll}\nmodel: {kind: transformer}\n")
    job = load_job(job_file, ["model.context=32"])
    assert job.model.context == 32 and load_job(job_file).model.context == 0
    with pytest.raises(ConfigError, match=r"model\.transformer\.context: Input should be greater than or equal to 0"):
        load_job(job_file, ["model.context=-1"])

    class Corpus:
        directory = tmp_path
        manifest = {"stages": {"subwords": {"casing_types": True}}}  # prepared before context existed

    TransformerAdapter().check_prepared(Corpus(), load_job(job_file))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="0 words of document context but model.context is 32"):
        TransformerAdapter().check_prepared(Corpus(), job)  # type: ignore[arg-type]
    Corpus.manifest["stages"]["subwords"]["context"] = 32
    TransformerAdapter().check_prepared(Corpus(), job)  # type: ignore[arg-type]
    assert isinstance(job, JobConfig)
    job.train.augment.sentences = 0.5
    assert TransformerAdapter().train_columns(job)[-4:] == ["tokens", "tag_ids", "sid", "document"]


def test_augmented_sentences_keep_their_document_context(tiny):
    from raytag.augment import augment_sentence
    from raytag.config import AugmentConfig
    from raytag.train.augmented_windows import AugmentedWindows

    sentences = _random_sentences(24, seed=9)
    n = len(sentences)
    sids = list(range(n, 0, -1))  # batch order is the reverse of document order
    documents = [sid // 6 for sid in sids]
    batch = pa.table({"sid": sids, "document": documents, "tokens": sentences,
                      "tag_ids": [[0] * len(s) for s in sentences]})
    model = TransformerConfig(max_length=32, stride=1, context=5)
    batch = encode_windows(batch, tiny, model.max_length, model.stride, False, context=model.context)
    augment = AugmentConfig(sentences=1.0, words=0.5, kinds=["typos"])
    dataset = AugmentedWindows.from_batches([batch.slice(10), batch.slice(0, 10)], tiny, model, augment, seed=1)
    order = sorted(range(n), key=lambda i: sids[i])
    expected = sentence_contexts([sentences[i] for i in order], [documents[i] for i in order], 5)
    rows = [*range(10, n), *range(10)]  # the order the batches came in
    assert dataset.contexts == [expected[order.index(row)] for row in rows]
    with_context = 0
    for index, source in enumerate(dataset.sources):
        words, tags = dataset.sentences[source.sentence]
        changed = augment_sentence(words, augment, 1, 0)
        if changed is None:
            continue
        windows = _encode(tiny, [changed], [tags], 32, 1, contexts=[dataset.contexts[source.sentence]])
        if len(windows) == source.windows:
            assert dataset[index]["input_ids"] == windows[source.window].input_ids
            with_context += any(w is None for w in windows[source.window].word_ids[1:-1])
    assert with_context > 5


def test_robustness_tags_perturbed_copies_in_their_documents(tmp_path):
    from raytag.evaluate_files import evaluate_files
    from tests.helpers import CONLL

    path = tmp_path / "a.conll"
    path.write_text(CONLL)
    tagger = DocumentRecorder()
    report = evaluate_files(tagger, [str(path)], perturb="case,typos", perturb_rate=1.0, seed=0)
    # The clean pass, then one pass per kind, each over the same two documents.
    assert [len(d) for d in tagger.documents] == [2, 1] * 3
    clean, *noisy = [tagger.documents[i:i + 2] for i in (0, 2, 4)]
    assert clean[0][1] == ["Peter", "Blackburn"]
    assert all(n[0][1] != ["Peter", "Blackburn"] for n in noisy)  # rate 1 changes every word that can change
    robust = report["robustness"]
    assert robust["clean"]["score"] == report["score"]
    assert set(robust["kinds"]) == {"case", "typos"}


def test_context_dropout_is_checked_and_reads_the_document_columns(tmp_path):
    from raytag.train.hf_loop import recuts_windows
    from raytag.train.transformer import TransformerAdapter

    job_file = tmp_path / "job.yaml"
    job_file.write_text("name: j\ncorpus: {format: conll, path: x.conll}\nmodel: {kind: transformer}\n")
    with pytest.raises(ConfigError, match="context_dropout needs model.context above 0"):
        load_job(job_file, ["model.context_dropout=0.5"])
    with pytest.raises(ConfigError, match=r"context_dropout: Input should be less than 1"):
        load_job(job_file, ["model.context=16", "model.context_dropout=1"])
    plain = load_job(job_file, ["model.context=16"])
    assert TransformerAdapter().train_columns(plain) == ["window_input_ids", "window_labels"]
    # No augmentation: context dropout alone re-cuts windows, from the words and their documents.
    job = load_job(job_file, ["model.context=16", "model.context_dropout=0.5"])
    assert job.train.augment.enabled is False
    assert recuts_windows(job) and not recuts_windows(plain)  # the training loop's switch to per-epoch windows
    assert TransformerAdapter().train_columns(job) == ["window_input_ids", "window_labels", "tokens", "tag_ids",
                                                       "sid", "document"]


def _document_windows(tiny, n: int, model: TransformerConfig) -> pa.Table:
    sentences = _random_sentences(n, seed=4)
    sids = list(range(n))
    batch = pa.table({"sid": sids, "document": [sid // 5 for sid in sids], "tokens": sentences,
                      "tag_ids": [[1] * len(s) for s in sentences]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return encode_windows(batch, tiny, model.max_length, model.stride, False, context=model.context)


def test_context_dropout_cuts_a_share_of_sentences_alone_afresh_each_epoch(tiny):
    from raytag.config import AugmentConfig
    from raytag.train.augmented_windows import AugmentedWindows, drops_context

    model = TransformerConfig(max_length=32, stride=1, context=5, context_dropout=0.4)
    batch = _document_windows(tiny, 300, model)
    off = AugmentConfig()
    dataset = AugmentedWindows.from_batches([batch], tiny, model, off, seed=3)
    twin = AugmentedWindows.from_batches([batch], tiny, model, off, seed=3)
    alone_by_epoch = []
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        twin.set_epoch(epoch)
        alone = set()
        for index, source in enumerate(dataset.sources):
            words, tags = dataset.sentences[source.sentence]
            item = dataset[index]
            assert item == twin[index]  # seeded: every worker and rerun cuts the same windows
            if drops_context(words, 0.4, 3, epoch):
                plain = _encode(tiny, [words], [tags], 32, 1)
                assert len(plain) == source.windows
                assert item["input_ids"] == plain[source.window].input_ids
                assert item["labels"] == plain[source.window].labels
                alone.add(source.sentence)
            else:
                assert item == dataset.features[index]  # the prepared window, context and all
        alone_by_epoch.append(alone)
        # Dropped sentences whose prepared windows held context words now differ from them.
        assert sum(dataset[i] != dataset.features[i] for i in range(len(dataset))) > 50
    assert all(0.3 < len(alone) / len(dataset.sentences) < 0.5 for alone in alone_by_epoch)
    assert alone_by_epoch[0] != alone_by_epoch[1]
    assert len(alone_by_epoch[0] & alone_by_epoch[1]) < len(alone_by_epoch[0])


def test_context_dropout_and_noise_apply_to_the_same_sentence(tiny):
    from raytag.augment import augment_sentence
    from raytag.config import AugmentConfig
    from raytag.train.augmented_windows import AugmentedWindows, drops_context

    model = TransformerConfig(max_length=32, stride=1, context=5, context_dropout=0.5)
    augment = AugmentConfig(sentences=0.5, words=0.5, kinds=["typos"])
    dataset = AugmentedWindows.from_batches([_document_windows(tiny, 200, model)], tiny, model, augment, seed=1)
    both = 0
    for index, source in enumerate(dataset.sources):
        words, tags = dataset.sentences[source.sentence]
        changed = augment_sentence(words, augment, 1, 0)
        alone = drops_context(words, 0.5, 1, 0)
        if changed is None and not alone:
            assert dataset[index] == dataset.features[index]
            continue
        contexts = None if alone else [dataset.contexts[source.sentence]]
        windows = _encode(tiny, [words if changed is None else changed], [tags], 32, 1, contexts=contexts)
        if len(windows) == source.windows:
            assert dataset[index]["input_ids"] == windows[source.window].input_ids
            both += changed is not None and alone
    assert both > 20
    # Without dropout the draw never drops: the perturbations alone, as before.
    assert not any(drops_context(words, 0.0, 1, 0) for words, _ in dataset.sentences)
