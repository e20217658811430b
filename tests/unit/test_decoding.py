from __future__ import annotations

import itertools

import numpy as np
import pytest

from raytag.decoding import (
    EntitySpan,
    decode,
    is_entity_scheme,
    offsets_for_tokens,
    spans_from_tags,
    tokenize_with_offsets,
    transition_mask,
    viterbi,
)

NER = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
POS = ["DET", "NOUN", "VERB", "ADJ"]


def is_valid(path: list[int], labels: list[str]) -> bool:
    """Independent IOB2 validity check used as the oracle."""
    prev = None
    for i in path:
        tag = labels[i]
        if tag.startswith("I-"):
            if prev is None or prev[2:] != tag[2:] or prev == "O":
                return False
        prev = tag
    return True


def brute_force_best(log_probs: np.ndarray, labels: list[str]) -> tuple[float, list[int]]:
    T, n = log_probs.shape
    best = (-np.inf, [])
    for path in itertools.product(range(n), repeat=T):
        if is_valid(list(path), labels):
            score = float(log_probs[np.arange(T), list(path)].sum())
            if score > best[0]:
                best = (score, list(path))
    return best


def test_is_entity_scheme():
    assert is_entity_scheme(NER)
    assert is_entity_scheme(["O", "B-MISC"])
    assert not is_entity_scheme(POS)
    assert not is_entity_scheme(["B-PER", "I-PER"])  # no O
    assert not is_entity_scheme(["O"])


def test_transition_mask_small_set():
    allowed, start = transition_mask(NER)
    expected = np.array(
        [
            # O     B-PER  I-PER  B-LOC  I-LOC   (cur)
            [True, True, False, True, False],  # prev O
            [True, True, True, True, False],  # prev B-PER
            [True, True, True, True, False],  # prev I-PER
            [True, True, False, True, True],  # prev B-LOC
            [True, True, False, True, True],  # prev I-LOC
        ]
    )
    np.testing.assert_array_equal(allowed, expected)
    np.testing.assert_array_equal(start, [True, True, False, True, False])


def test_transition_mask_plain_allows_everything():
    allowed, start = transition_mask(POS)
    assert allowed.shape == (4, 4) and allowed.all()
    assert start.shape == (4,) and start.all()


def test_viterbi_fixes_o_then_i():
    labels = ["O", "B-PER", "I-PER"]
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    assert probs.argmax(-1).tolist() == [0, 2]  # O, I-PER: invalid
    allowed, start = transition_mask(labels)
    path = viterbi(np.log(probs), allowed, start).tolist()
    assert path == [1, 2]  # B-PER I-PER scores 0.24, beating every other valid path
    assert path == brute_force_best(np.log(probs), labels)[1]


def test_viterbi_forbids_i_at_start():
    labels = ["O", "B-PER", "I-PER"]
    probs = np.array([[0.2, 0.1, 0.7], [0.1, 0.1, 0.8]])
    allowed, start = transition_mask(labels)
    path = viterbi(np.log(probs), allowed, start).tolist()
    assert labels[path[0]] != "I-PER"
    assert path == brute_force_best(np.log(probs), labels)[1]
    assert path == [1, 2]


def test_viterbi_type_switch_is_repaired():
    # B-LOC followed by I-PER is invalid; best fix depends on the numbers.
    probs = np.array(
        [
            [0.05, 0.05, 0.05, 0.80, 0.05],
            [0.05, 0.30, 0.55, 0.05, 0.05],
        ]
    )
    allowed, start = transition_mask(NER)
    path = viterbi(np.log(probs), allowed, start).tolist()
    assert not is_valid(probs.argmax(-1).tolist(), NER)
    assert is_valid(path, NER)
    assert path == brute_force_best(np.log(probs), NER)[1] == [3, 1]


@pytest.mark.parametrize("T", [1, 2, 3, 4, 5])
def test_viterbi_matches_brute_force(T):
    rng = np.random.default_rng(100 + T)
    allowed, start = transition_mask(NER)
    for _ in range(5):
        log_probs = np.log(rng.dirichlet(np.ones(len(NER)) * 0.3, size=T))
        path = viterbi(log_probs, allowed, start).tolist()
        best_score, best_path = brute_force_best(log_probs, NER)
        assert is_valid(path, NER)
        assert float(log_probs[np.arange(T), path].sum()) == pytest.approx(best_score)
        assert path == best_path


def test_viterbi_empty_and_shape_errors():
    allowed, start = transition_mask(NER)
    out = viterbi(np.zeros((0, 5)), allowed, start)
    assert out.shape == (0,)
    with pytest.raises(ValueError):
        viterbi(np.zeros((3, 4)), allowed, start)
    with pytest.raises(ValueError):
        viterbi(np.zeros(5), allowed, start)


def test_viterbi_ties_are_deterministic():
    allowed, start = transition_mask(POS)
    path = viterbi(np.zeros((4, 4)), allowed, start)
    assert path.tolist() == [0, 0, 0, 0]


def test_decode_random_batches_never_invalid():
    rng = np.random.default_rng(0)
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    B, T = 32, 15
    # Skewed towards I- tags so that plain argmax produces invalid sequences.
    alpha = np.array([0.3, 0.3, 1.0, 0.3, 1.0, 0.3, 1.0])
    probs = rng.dirichlet(alpha, size=(B, T))
    probs[0, 3] = 0.0  # an underflowed softmax row must not break decoding
    probs[0, 3, 2] = 1.0
    lengths = rng.integers(0, T + 1, size=B).tolist()
    lengths[0] = T

    unconstrained = decode(probs, lengths, labels, constrained=False)
    assert any(not is_valid(p, labels) for p in unconstrained)
    for i, p in enumerate(unconstrained):
        assert p == probs[i, : lengths[i]].argmax(-1).tolist()

    paths = decode(probs, lengths, labels)
    assert [len(p) for p in paths] == lengths
    for p in paths:
        assert is_valid(p, labels)
        assert all(isinstance(i, int) for i in p)


def test_decode_plain_tag_set_is_argmax():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), size=(3, 6))
    paths = decode(probs, [6, 2, 0], POS, constrained=True)
    assert paths == [probs[0].argmax(-1).tolist(), probs[1, :2].argmax(-1).tolist(), []]


def test_decode_validates_input():
    probs = np.full((2, 3, 5), 0.2)
    with pytest.raises(ValueError, match="labels"):
        decode(probs, [3, 3], NER[:4])
    with pytest.raises(ValueError, match="lengths"):
        decode(probs, [3], NER)
    with pytest.raises(ValueError, match="outside"):
        decode(probs, [3, 4], NER)


SENTENCE = "My name is Wolfgang and I live in Berkeley, California."


def test_spans_on_hf_example():
    tokens, offsets = tokenize_with_offsets(SENTENCE)
    assert tokens == [
        "My", "name", "is", "Wolfgang", "and", "I", "live", "in",
        "Berkeley", ",", "California", ".",
    ]
    tags = ["O", "O", "O", "B-PER", "O", "O", "O", "O", "B-LOC", "O", "B-LOC", "O"]
    scores = [0.9] * 3 + [0.99] + [0.9] * 4 + [0.98, 0.9, 0.97, 0.9]
    spans = spans_from_tags(tags, offsets, SENTENCE, scores)
    def hf(group: str, score: float, word: str, start: int, end: int) -> dict:
        return {"entity_group": group, "score": pytest.approx(score), "word": word,
                "start": start, "end": end}

    assert [s.to_dict() for s in spans] == [
        hf("PER", 0.99, "Wolfgang", 11, 19),
        hf("LOC", 0.98, "Berkeley", 34, 42),
        hf("LOC", 0.97, "California", 44, 54),
    ]
    assert isinstance(spans[0], EntitySpan)
    with pytest.raises(AttributeError):
        spans[0].start = 3  # frozen


def test_spans_multi_token_and_stray_i():
    tokens, offsets = tokenize_with_offsets(SENTENCE)
    tags = ["O", "O", "O", "I-PER", "O", "O", "O", "O", "B-LOC", "I-LOC", "I-LOC", "I-PER"]
    scores = [0.0] * 8 + [0.9, 0.6, 0.6, 0.5]
    spans = spans_from_tags(tags, offsets, SENTENCE, scores)
    assert [(s.entity_group, s.word, s.start, s.end) for s in spans] == [
        ("PER", "Wolfgang", 11, 19),
        ("LOC", "Berkeley, California", 34, 54),
        ("PER", ".", 54, 55),
    ]
    assert spans[1].score == pytest.approx(0.7)


def test_spans_type_change_and_no_scores():
    text, offsets = offsets_for_tokens(["New", "York", "Times"])
    spans = spans_from_tags(["B-LOC", "I-LOC", "I-ORG"], offsets, text)
    assert [(s.entity_group, s.word, s.score) for s in spans] == [
        ("LOC", "New York", 1.0),
        ("ORG", "Times", 1.0),
    ]
    assert spans_from_tags(["O", "O", "O"], offsets, text) == []
    with pytest.raises(ValueError):
        spans_from_tags(["O"], offsets, text)
    with pytest.raises(ValueError):
        spans_from_tags(["O", "O", "O"], offsets, text, scores=[1.0])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Berkeley, California.", ["Berkeley", ",", "California", "."]),
        ("The U.S. economy", ["The", "U.S.", "economy"]),
        ("I don't know", ["I", "do", "n't", "know"]),
        ("Germany's state-of-the-art plan", ["Germany", "'s", "state-of-the-art", "plan"]),
        (
            "Mr. O'Neil paid $1,000.50 (really)!",
            ["Mr.", "O'Neil", "paid", "$", "1,000.50", "(", "really", ")", "!"],
        ),
        ("Wait...  what?", ["Wait", "...", "what", "?"]),
        ("", []),
        ("   \t\n", []),
    ],
)
def test_tokenizer_rules(text, expected):
    tokens, offsets = tokenize_with_offsets(text)
    assert tokens == expected
    assert [text[s:e] for s, e in offsets] == tokens


def test_tokenizer_unicode_round_trip():
    # Decomposed umlaut, no-break space, Devanagari vowel signs/virama, CJK,
    # zero-width space, curly apostrophe, guillemets.
    text = (
        "Zu\u0308rich\u00a0und \u0939\u093f\u0928\u094d\u0926\u0940 "
        "\u5317\u4eac\u200bci\u2019s \u00abM\u00fcller\u00bb"
    )
    tokens, offsets = tokenize_with_offsets(text)
    assert [text[s:e] for s, e in offsets] == tokens
    assert tokens == [
        "Zu\u0308rich", "und", "\u0939\u093f\u0928\u094d\u0926\u0940", "\u5317\u4eac",
        "ci", "\u2019s", "\u00ab", "M\u00fcller", "\u00bb",
    ]
    assert all(e > s for s, e in offsets)
    assert offsets == sorted(offsets)


def test_offsets_for_tokens_round_trip():
    tokens = ["EU", "rejects", "German", "call", "."]
    text, offsets = offsets_for_tokens(tokens)
    assert text == "EU rejects German call ."
    assert [text[s:e] for s, e in offsets] == tokens
    text2, offsets2 = offsets_for_tokens(tokens, sep="||")
    assert text2 == "EU||rejects||German||call||."
    assert [text2[s:e] for s, e in offsets2] == tokens
    assert offsets_for_tokens([]) == ("", [])
