from __future__ import annotations

from collections import Counter

import pytest

from raytag.models.casing import CASING_CLASSES, NUM_CASING_IDS, casing_class, casing_ids


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("the", "lower"), ("of", "lower"), ("state-of-the-art", "lower"), ("n't", "lower"),
        ("EU", "upper"), ("I", "upper"), ("U.S.", "upper"), ("AT&T", "upper"), ("BRUSSELS", "upper"),
        ("Germany", "title"), ("O'Neil", "mixed"), ("Jean-Marie", "mixed"), ("Mr.", "title"), ("Élysée", "title"),
        ("iPhone", "mixed"), ("McDonald", "mixed"), ("eBay", "mixed"),
        ("1996", "numeric"), ("0", "numeric"),
        ("1,000", "number"), ("3.5", "number"), ("1996-08-22", "number"), ("10:30", "number"), ("-2", "number"),
        ("G7", "alnum_digit"), ("2nd", "alnum_digit"), ("B-52", "alnum_digit"),
        (",", "punctuation"), ("--", "punctuation"), ("(", "punctuation"), ("...", "punctuation"), ("$", "punctuation"),
        ("", "other"), ("東京", "other"), (" ", "other"),
    ],
)
def test_casing_classes(token: str, expected: str) -> None:
    assert casing_class(token) == expected


def test_casing_ids_are_one_based_and_cover_every_class() -> None:
    tokens = ["the", "EU", "Germany", "iPhone", "1996", "3.5", "G7", ",", ""]
    ids = casing_ids(tokens)
    assert ids == [CASING_CLASSES.index(casing_class(t)) + 1 for t in tokens]
    # Padding is id 0, so every real class differs from it and fits the embedding.
    assert sorted(Counter(ids)) == list(range(1, NUM_CASING_IDS))


def test_casing_reads_the_word_as_written_whatever_the_vocabulary() -> None:
    from raytag.corpus.vocab import Vocabulary
    from raytag.models.bilstm import encode_batch

    words = Vocabulary.build(Counter(["paris", "eu"]), lowercase=True)
    sentences = [["Paris", "EU"], ["paris", "eu"]]
    inputs, _ = encode_batch([words.encode(s) for s in sentences], sentences, None, 8, casing=True)
    # One word id for both spellings, two casing ids: the feature keeps what lowercasing drops.
    assert (inputs["word_ids"][0] == inputs["word_ids"][1]).all()
    assert inputs["casing_ids"].tolist() == [casing_ids(["Paris", "EU"]), casing_ids(["paris", "eu"])]
    assert "char_ids" not in inputs

    ragged, _ = encode_batch([[2], [2, 3]], [["Paris"], ["Paris", "EU"]], None, 8, casing=True)
    assert ragged["casing_ids"][0].tolist() == [casing_ids(["Paris"])[0], 0]
    with pytest.raises(ValueError, match="tokens are needed"):
        encode_batch([[2]], None, None, 8, casing=True)
