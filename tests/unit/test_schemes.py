"""Unit tests for raytag.corpus.schemes and its vectorised twin raytag.corpus.columnar.

The plain-Python scheme functions define the behaviour; the columnar versions must
agree with them exactly, on hand-picked cases and on seeded random sentences.
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from raytag.corpus import columnar
from raytag.corpus.schemes import (
    SchemeEvidence,
    detect_scheme,
    detect_scheme_of,
    label_order,
    sentence_problem,
    split_tag,
    tag_problem,
    to_iob2,
)

SCHEMES = ("iob1", "iob2", "bioes", "plain")
LIST = pa.list_(pa.string())


def evidence_of(*sentences: list[str]) -> SchemeEvidence:
    evidence = SchemeEvidence()
    for tags in sentences:
        evidence.add(tags)
    return evidence


# --- split_tag and detection ------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag,expected",
    [("O", ("O", None)), ("B-PER", ("B", "PER")), ("S-geo", ("S", "geo")), ("I-B-X", ("I", "B-X")),
     ("B-", ("", None)), ("X-PER", ("", None)), ("", ("", None)), ("B-two words", ("", None)), ("o", ("", None))],
)
def test_split_tag(tag, expected):
    assert split_tag(tag) == expected


def test_detect_iob1_from_opening_i():
    evidence = evidence_of(["I-PER", "I-PER", "O"], ["O", "B-LOC", "I-LOC"])
    assert evidence.opening_i
    assert detect_scheme(evidence) == "iob1"


def test_detect_iob1_from_type_change():
    # I-LOC right after B-PER opens a new entity: only IOB1 allows that.
    assert detect_scheme_of([["B-PER", "I-LOC", "O"]]) == "iob1"
    assert detect_scheme_of([["B-PER", "I-PER", "O"]]) == "iob2"


def test_detect_iob2():
    evidence = evidence_of(["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"])
    assert not evidence.opening_i
    assert detect_scheme(evidence) == "iob2"


def test_detect_bioes():
    assert detect_scheme_of([["S-PER", "O", "B-LOC", "E-LOC"], ["O"]]) == "bioes"
    # Even with an opening I- (invalid in BIOES), E-/S- tags decide.
    assert detect_scheme_of([["I-PER", "E-PER", "O"]]) == "bioes"


@pytest.mark.parametrize(
    "sentences",
    [
        [["NN", "VBZ", "DT", "NN"]],
        [["O", "NN"]],  # O without prefixed tags
        [["B-NP", "I-NP", "B-VP"]],  # prefixed tags without O (e.g. a chunk set without O)
        [["B-", "I-", "O"]],  # O and only malformed prefixes
        [],
    ],
)
def test_detect_plain(sentences):
    assert detect_scheme_of(sentences) == "plain"


def test_malformed_entity_set_is_still_an_entity_set():
    sentences = [["O", "B-PER", "I-PER"], ["B-", "X-PER", "", "O"], ["Bogus"]]
    assert detect_scheme_of(sentences) == "iob2"
    # The malformed tags are errors under the detected scheme, not a reason to go plain.
    assert sentence_problem(sentences[1], "iob2") == (0, "invalid tag 'B-': prefix without an entity type")


def test_evidence_merge():
    a, b = evidence_of(["B-PER", "O"]), evidence_of(["I-LOC"])
    merged = a.merge(b)
    assert merged.tags == {"B-PER", "O", "I-LOC"}
    assert merged.opening_i
    assert detect_scheme(merged) == "iob1"
    assert not a.opening_i and a.tags == {"B-PER", "O"}  # inputs are untouched
    assert detect_scheme(a.merge(evidence_of(["S-PER"]))) == "bioes"


def test_evidence_resets_at_sentence_start():
    # I-PER at the start of the second sentence does not continue the first one's B-PER.
    assert evidence_of(["B-PER"], ["I-PER"]).opening_i
    assert not evidence_of(["B-PER", "I-PER"]).opening_i


# --- conversion -------------------------------------------------------------------------------


def test_to_iob2_from_iob1():
    tags = ["I-PER", "I-PER", "B-PER", "I-PER", "I-LOC", "O", "I-LOC", "I-LOC"]
    assert to_iob2(tags, "iob1") == ["B-PER", "I-PER", "B-PER", "I-PER", "B-LOC", "O", "B-LOC", "I-LOC"]


def test_to_iob2_from_bioes():
    tags = ["S-PER", "B-LOC", "I-LOC", "E-LOC", "O", "B-ORG", "E-ORG", "S-ORG"]
    assert to_iob2(tags, "bioes") == ["B-PER", "B-LOC", "I-LOC", "I-LOC", "O", "B-ORG", "I-ORG", "B-ORG"]


@pytest.mark.parametrize("scheme", ["iob2", "plain"])
def test_to_iob2_identity(scheme):
    tags = ["B-PER", "I-PER", "O", "NN"]
    out = to_iob2(tags, scheme)
    assert out == tags
    assert out is not tags


def test_to_iob2_result_is_valid_iob2():
    for scheme, tags in [("iob1", ["I-A", "B-A", "I-B", "O", "I-A"]), ("bioes", ["S-A", "B-B", "E-B", "S-B"])]:
        assert sentence_problem(to_iob2(tags, scheme), "iob2") is None


# --- sentence problems ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tags,scheme,expected",
    [
        (["B-PER", "I-PER", "O"], "iob2", None),
        (["I-PER", "O"], "iob1", None),
        (["I-PER"], "iob2", (0, "'I-PER' cannot follow the sentence start under scheme iob2")),
        (["O", "I-PER"], "iob2", (1, "'I-PER' cannot follow 'O' under scheme iob2")),
        (["B-PER", "I-LOC"], "iob2", (1, "'I-LOC' cannot follow 'B-PER' under scheme iob2")),
        (["O", "E-PER"], "iob2", (1, "invalid tag 'E-PER' under scheme iob2: expected O or B-/I- followed by a type")),
        (["O", "X-PER"], "iob1", (1, "invalid tag 'X-PER' under scheme iob1: expected O or B-/I- followed by a type")),
        (["X-PER"], "bioes", (0, "invalid tag 'X-PER' under scheme bioes: expected O or B-/I-/E-/S- followed by a type")),
        (["O", "B-"], "iob2", (1, "invalid tag 'B-': prefix without an entity type")),
        (["S-"], "bioes", (0, "invalid tag 'S-': prefix without an entity type")),
        (["S-"], "iob2", (0, "invalid tag 'S-' under scheme iob2: expected O or B-/I- followed by a type")),
        (["O", ""], "iob2", (1, "empty tag")),
        (["NN", " "], "plain", (1, "empty tag")),
        (["X-PER", "b-per", "I-PER"], "plain", None),
        (["S-PER", "B-LOC", "I-LOC", "E-LOC", "O"], "bioes", None),
        (["B-PER", "O"], "bioes", (1, "'B-PER' must be followed by I-PER or E-PER under scheme bioes, got 'O'")),
        (["B-PER", "E-LOC"], "bioes", (1, "'E-LOC' cannot follow 'B-PER' under scheme bioes")),
        (["B-PER", "S-PER"], "bioes", (1, "'B-PER' must be followed by I-PER or E-PER under scheme bioes, got 'S-PER'")),
        (["E-PER"], "bioes", (0, "'E-PER' cannot follow the sentence start under scheme bioes")),
        (["O", "B-PER", "I-PER"], "bioes", (2, "entity 'I-PER' is left open at the end of the sentence under scheme bioes")),
        (["B-PER"], "bioes", (0, "entity 'B-PER' is left open at the end of the sentence under scheme bioes")),
        (["X", "I-PER"], "iob2", (0, "invalid tag 'X' under scheme iob2: expected O or B-/I- followed by a type")),
        ([], "bioes", None),
    ],
)
def test_sentence_problem(tags, scheme, expected):
    assert sentence_problem(tags, scheme) == expected


def test_tag_problem_whitespace_is_empty():
    for scheme in SCHEMES:
        assert tag_problem("", scheme) == "empty tag"
        assert tag_problem(" \t", scheme) == "empty tag"
        assert tag_problem("O", scheme) is None


def test_label_order():
    assert label_order(["I-PER", "NN", "O", "B-LOC", "B-PER", "O", "E-LOC"]) == [
        "O", "B-LOC", "E-LOC", "B-PER", "I-PER", "NN"
    ]


# --- columnar agrees with the plain functions -------------------------------------------------

TYPES = ("PER", "LOC", "MISC")
VALID_POOL = ["O"] + [f"{p}-{k}" for p in "BIES" for k in TYPES]
INVALID_POOL = ["B-", "X-PER", "", " ", "I-", "E-", "b-PER", "O-LOC"]
POS_POOL = ["NN", "VBZ", "DT", "JJ", "."]


def _encode(segments: list[tuple[str | None, int]], scheme: str) -> list[str]:
    """Tags of (type or None for O, length) segments in a given entity scheme."""
    tags: list[str] = []
    prev_kind: str | None = None
    for kind, length in segments:
        if kind is None:
            tags += ["O"] * length
        elif scheme == "iob2":
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (length - 1)
        elif scheme == "iob1":
            tags += [f"{'B' if prev_kind == kind else 'I'}-{kind}"] + [f"I-{kind}"] * (length - 1)
        elif length == 1:
            tags.append(f"S-{kind}")
        else:
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (length - 2) + [f"E-{kind}"]
        prev_kind = kind
    return tags


def random_sentences(seed: int, count: int = 300) -> list[list[str]]:
    """Well-formed sentences in every scheme, some mutated at one token, some pure noise."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        mode = rng.random()
        if mode < 0.1:
            sentences.append([rng.choice(POS_POOL) for _ in range(rng.randint(0, 6))])
            continue
        if mode < 0.25:
            pool = VALID_POOL + INVALID_POOL
            sentences.append([rng.choice(pool) for _ in range(rng.randint(0, 6))])
            continue
        segments = [
            (rng.choice(TYPES) if rng.random() < 0.5 else None, rng.randint(1, 3)) for _ in range(rng.randint(1, 4))
        ]
        tags = _encode(segments, rng.choice(("iob1", "iob2", "bioes")))
        if rng.random() < 0.3:
            tags[rng.randrange(len(tags))] = rng.choice(VALID_POOL + INVALID_POOL)
        sentences.append(tags)
    return sentences


def check_agreement(array: pa.Array | pa.ChunkedArray, sentences: list[list[str]], skip: np.ndarray, scheme: str):
    converted, problems = columnar.check_and_convert(array, skip, scheme)
    expected = {}
    for i, tags in enumerate(sentences):
        found = sentence_problem(tags, scheme)
        if found is not None and not skip[i]:
            expected[i] = found
    assert problems == expected
    out = converted.to_pylist()
    assert len(out) == len(sentences)
    for i, tags in enumerate(sentences):
        assert len(out[i]) == len(tags)
        if sentence_problem(tags, scheme) is None:
            assert out[i] == to_iob2(tags, scheme), (scheme, tags)
    return expected


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_check_and_convert_agrees_with_plain_path(seed, scheme):
    sentences = random_sentences(seed)
    problems = check_agreement(pa.array(sentences, LIST), sentences, np.zeros(len(sentences), bool), scheme)
    valid = len(sentences) - len(problems)
    # The comparison means something only if both outcomes are well represented.
    assert len(problems) >= 5 and valid >= 50, (len(problems), valid)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_check_and_convert_skips_marked_sentences(scheme):
    sentences = random_sentences(7)
    skip = np.random.default_rng(7).random(len(sentences)) < 0.3
    check_agreement(pa.array(sentences, LIST), sentences, skip, scheme)
    everything = check_agreement(pa.array(sentences, LIST), sentences, np.zeros(len(sentences), bool), scheme)
    assert any(skip[i] for i in everything)  # the skip mask really hid some problems


@pytest.mark.parametrize("scheme", SCHEMES)
def test_check_and_convert_on_sliced_and_chunked_arrays(scheme):
    sentences = random_sentences(11, count=60)
    array = pa.array(sentences, LIST)
    rng = random.Random(11)
    for _ in range(10):
        start, length = rng.randrange(len(sentences)), rng.randint(0, 20)
        part = sentences[start : start + length]
        check_agreement(array.slice(start, length), part, np.zeros(len(part), bool), scheme)
    cut = 23
    chunked = pa.chunked_array([array.slice(0, cut), array.slice(cut)])
    check_agreement(chunked, sentences, np.zeros(len(sentences), bool), scheme)


def test_check_and_convert_slice_regression():
    # A slice must not see the tags before its first sentence: B-PER then I-PER is fine,
    # but I-PER alone at the start of the slice is not.
    array = pa.array([["O"], ["B-PER"], ["I-PER", "O"], ["B-LOC", "I-LOC"]], LIST)
    converted, problems = columnar.check_and_convert(array.slice(2, 2), np.zeros(2, bool), "iob2")
    assert problems == {0: (0, "'I-PER' cannot follow the sentence start under scheme iob2")}
    converted, problems = columnar.check_and_convert(array.slice(2, 2), np.zeros(2, bool), "iob1")
    assert problems == {}
    assert converted.to_pylist() == [["B-PER", "O"], ["B-LOC", "I-LOC"]]


def test_check_and_convert_edge_shapes():
    empty = pa.array([], LIST)
    converted, problems = columnar.check_and_convert(empty, np.zeros(0, bool), "iob2")
    assert converted.to_pylist() == [] and problems == {}
    blanks = pa.array([[], [], ["I-PER"]], LIST)
    converted, problems = columnar.check_and_convert(blanks, np.zeros(3, bool), "iob1")
    assert converted.to_pylist() == [[], [], ["B-PER"]] and problems == {}
    converted, problems = columnar.check_and_convert(pa.array([[], ["NN", ""]], LIST), np.zeros(2, bool), "plain")
    assert problems == {1: (1, "empty tag")}


def test_invalid_tags_keep_their_text_after_conversion():
    array = pa.array([["S-PER", "X-PER"], ["I-LOC", "B-"]], LIST)
    for scheme in ("bioes", "iob1"):
        converted, problems = columnar.check_and_convert(array, np.zeros(2, bool), scheme)
        assert set(problems) == {0, 1}
        assert [tags[1] for tags in converted.to_pylist()] == ["X-PER", "B-"]


@pytest.mark.parametrize("seed", [0, 3])
def test_scheme_evidence_agrees(seed):
    sentences = random_sentences(seed)
    array = pa.array(sentences, LIST)
    reference = evidence_of(*sentences)
    assert columnar.scheme_evidence(array) == (reference.tags, reference.opening_i)
    # Per sentence, too: opening_i is the interesting bit.
    flags = [columnar.scheme_evidence(array.slice(i, 1))[1] for i in range(len(sentences))]
    assert flags == [evidence_of(s).opening_i for s in sentences]
    assert any(flags) and not all(flags)


def test_scheme_evidence_small_cases():
    assert columnar.scheme_evidence(pa.array([], LIST)) == (set(), False)
    assert columnar.scheme_evidence(pa.array([["B-PER"], ["I-PER"]], LIST)) == ({"B-PER", "I-PER"}, True)
    assert columnar.scheme_evidence(pa.array([["B-PER", "I-PER"]], LIST)) == ({"B-PER", "I-PER"}, False)
    array = pa.array([["I-LOC"], ["B-PER", "I-PER"]], LIST)
    assert columnar.scheme_evidence(array.slice(1)) == ({"B-PER", "I-PER"}, False)


# --- encoding and counting --------------------------------------------------------------------


ITEMS = ["<pad>", "<unk>", "the", "cat", "sat"]


def test_encode_ids_with_oov():
    array = pa.array([["the", "dog"], [], ["sat", "cat", "The"]], LIST)
    ids = columnar.encode_ids(array, ITEMS, False, 1)
    assert ids.type == pa.list_(pa.int32())
    assert ids.to_pylist() == [[2, 1], [], [4, 3, 1]]
    assert columnar.encode_ids(array, ITEMS, False, 0).to_pylist() == [[2, 0], [], [4, 3, 0]]


def test_encode_ids_lowercase():
    array = pa.array([["The", "CAT", "Sat", "Dog"]], LIST)
    assert columnar.encode_ids(array, ITEMS, True, 1).to_pylist() == [[2, 3, 4, 1]]
    assert columnar.encode_ids(array, ITEMS, False, 1).to_pylist() == [[1, 1, 1, 1]]


def test_encode_ids_without_oov_raises():
    labels = ["O", "B-PER", "I-PER"]
    array = pa.array([["O", "B-PER"], ["I-PER", "B-LOC", "O"]], LIST)
    with pytest.raises(KeyError, match="B-LOC"):
        columnar.encode_ids(array, labels, False, None)
    # A slice without the unknown label encodes fine.
    assert columnar.encode_ids(array.slice(0, 1), labels, False, None).to_pylist() == [[0, 1]]


def test_encode_ids_sliced():
    sentences = [["the"], ["cat", "x"], ["sat"], ["y", "the"], ["cat"], ["sat", "sat"], ["z"]]
    array = pa.array(sentences, LIST)
    for start, length in [(3, 5), (1, 2), (6, 1), (2, 0)]:
        part = sentences[start : start + length]
        ids = columnar.encode_ids(array.slice(start, length), ITEMS, False, 1)
        assert ids.to_pylist() == [[ITEMS.index(w) if w in ITEMS else 1 for w in s] for s in part]


def test_value_counts():
    sentences = [["a", "b"], ["a"], [], ["c", "a", "b"]]
    array = pa.array(sentences, LIST)
    assert columnar.value_counts(array) == {"a": 3, "b": 2, "c": 1}
    assert columnar.value_counts(array.slice(3, 5)) == {"c": 1, "a": 1, "b": 1}
    assert columnar.value_counts(array.slice(1, 2)) == {"a": 1}
    assert columnar.value_counts(array.slice(2, 1)) == {}
    assert columnar.value_counts(pa.chunked_array([array.slice(0, 1), array.slice(3)])) == {"a": 2, "b": 2, "c": 1}


def test_value_counts_random_against_counter():
    rng = random.Random(5)
    sentences = [[rng.choice("abcdefg") for _ in range(rng.randint(0, 5))] for _ in range(200)]
    array = pa.array(sentences, LIST)
    for start, length in [(0, 200), (3, 5), (50, 100), (199, 10)]:
        part = sentences[start : start + length]
        assert columnar.value_counts(array.slice(start, length)) == dict(Counter(w for s in part for w in s))


def test_char_counts():
    assert columnar.char_counts({"aab": 2, "bc": 3, "": 7}) == Counter({"a": 4, "b": 5, "c": 3})
    assert columnar.char_counts({}) == Counter()
    assert columnar.char_counts({"Été": 1}) == Counter({"É": 1, "t": 1, "é": 1})


def test_list_parts_of_a_slice():
    array = pa.array([["a"], ["b", "c"], ["d"], [], ["e", "f", "g"], ["h"]], LIST)
    flat, offsets = columnar.list_parts(array.slice(3, 5))
    assert flat.to_pylist() == ["e", "f", "g", "h"]
    assert offsets.tolist() == [0, 0, 3, 4]
