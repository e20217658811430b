"""Unit tests for raytag.corpus.vocab: deterministic building, specials, OOV, JSON round trips."""

from __future__ import annotations

import json
import random

import pytest

from raytag.corpus.vocab import OOV, OOV_ID, PAD, PAD_ID, Vocabulary

COUNTS = {"the": 5, "cat": 3, "sat": 3, "on": 3, "mat": 1, "a": 2}


def test_specials_come_first():
    vocab = Vocabulary.build(COUNTS)
    assert vocab.items[:2] == [PAD, OOV]
    assert (PAD_ID, OOV_ID) == (0, 1)
    assert vocab.id(PAD) == PAD_ID and vocab.id(OOV) == OOV_ID
    assert vocab.specials == 2


def test_build_orders_by_count_then_item():
    vocab = Vocabulary.build(COUNTS)
    assert vocab.items == [PAD, OOV, "the", "cat", "on", "sat", "a", "mat"]


def test_build_is_independent_of_input_order():
    items = list(COUNTS.items())
    reference = Vocabulary.build(COUNTS).items
    rng = random.Random(0)
    for _ in range(20):
        rng.shuffle(items)
        assert Vocabulary.build(dict(items)).items == reference


def test_ties_broken_by_item_with_many_ties():
    counts = {w: 1 for w in ["zeta", "Alpha", "beta", "alpha", "Ωmega", "_x"]}
    assert Vocabulary.build(counts).items[2:] == sorted(counts)


@pytest.mark.parametrize("max_size,expected", [(2, []), (3, ["the"]), (5, ["the", "cat", "on"]), (100, None)])
def test_max_size_counts_the_specials(max_size, expected):
    vocab = Vocabulary.build(COUNTS, max_size=max_size)
    if expected is None:
        assert len(vocab) == len(COUNTS) + 2
    else:
        assert len(vocab) == max_size
        assert vocab.items[2:] == expected


def test_max_size_without_specials():
    vocab = Vocabulary.build(COUNTS, max_size=2, specials=False)
    assert vocab.items == ["the", "cat"]
    assert vocab.specials == 0


def test_min_count():
    vocab = Vocabulary.build(COUNTS, min_count=3)
    assert vocab.items[2:] == ["the", "cat", "on", "sat"]
    assert "a" not in vocab and "mat" not in vocab
    assert vocab.id("a") == OOV_ID


def test_min_count_then_max_size():
    vocab = Vocabulary.build(COUNTS, min_count=2, max_size=4)
    assert vocab.items[2:] == ["the", "cat"]


def test_lowercase_merges_counts():
    counts = {"The": 2, "the": 2, "THE": 1, "cat": 4, "Dog": 1}
    vocab = Vocabulary.build(counts, lowercase=True)
    # the = 2 + 2 + 1 = 5 beats cat = 4 only because the counts were merged.
    assert vocab.items[2:] == ["the", "cat", "dog"]
    assert vocab.lowercase
    assert vocab.id("THE") == vocab.id("the") == vocab.id("The") == 2
    assert "DOG" in vocab
    cased = Vocabulary.build(counts)
    assert cased.items[2:4] == ["cat", "The"]
    assert cased.id("THE") == cased.items.index("THE")
    assert cased.id("tHe") == OOV_ID


def test_lowercase_merge_reaches_min_count():
    vocab = Vocabulary.build({"Paris": 1, "paris": 1, "oslo": 1}, min_count=2, lowercase=True)
    assert vocab.items[2:] == ["paris"]


def test_oov_for_unknown_and_encode_decode():
    vocab = Vocabulary.build(COUNTS)
    assert vocab.id("never-seen") == OOV_ID
    assert vocab.id("") == OOV_ID
    ids = vocab.encode(["the", "dog", "sat"])
    assert ids == [2, OOV_ID, 5]
    assert vocab.decode(ids) == ["the", OOV, "sat"]
    assert vocab.encode([]) == []


def test_duplicate_items_rejected():
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["a", "b", "a"])


def test_save_load_round_trip(tmp_path):
    for vocab in (
        Vocabulary.build(COUNTS, max_size=5),
        Vocabulary.build({"Été": 2, "naïve": 1, "東京": 3}, lowercase=True),
        Vocabulary.labels(["O", "B-PER", "I-PER"]),
    ):
        path = vocab.save(tmp_path / "v.json")
        loaded = Vocabulary.load(path)
        assert loaded == vocab
        assert loaded.items == vocab.items
        assert loaded.specials == vocab.specials
        assert loaded.lowercase == vocab.lowercase
        # The index is rebuilt, not just the list.
        assert [loaded.id(item) for item in loaded.items[loaded.specials:]] == list(
            range(loaded.specials, len(loaded))
        )


def test_saved_json_is_readable(tmp_path):
    path = Vocabulary.build({"東京": 1}).save(tmp_path / "v.json")
    assert "東京" in path.read_text(encoding="utf-8")  # not \u-escaped
    assert json.loads(path.read_text(encoding="utf-8")) == {"items": [PAD, OOV, "東京"], "specials": 2, "lowercase": False}


def test_equality_sees_differences():
    assert Vocabulary(["a", "b"]) != Vocabulary(["b", "a"])
    assert Vocabulary(["a"], lowercase=True) != Vocabulary(["a"], lowercase=False)
    assert Vocabulary.from_dict(Vocabulary(["x", "y"], specials=0).to_dict()) == Vocabulary(["x", "y"], specials=0)


def test_label_vocabulary_has_no_specials():
    labels = Vocabulary.labels(["O", "B-PER", "I-PER"])
    assert labels.specials == 0
    assert labels.items == ["O", "B-PER", "I-PER"]
    assert labels.encode(["I-PER", "O", "B-PER"]) == [2, 0, 1]
    assert PAD not in labels and OOV not in labels


def test_label_vocabulary_raises_on_unknown():
    labels = Vocabulary.labels(["O", "B-PER"])
    with pytest.raises(KeyError, match="B-LOC"):
        labels.id("B-LOC")
    with pytest.raises(KeyError):
        labels.encode(["O", "b-per"])  # labels are case sensitive


def test_build_without_specials_raises_on_unknown():
    vocab = Vocabulary.build(COUNTS, specials=False)
    assert vocab.id("the") == 0
    with pytest.raises(KeyError):
        vocab.id("dog")
