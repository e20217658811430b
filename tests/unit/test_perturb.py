"""Seeded, alignment-preserving perturbations (raytag.perturb); plain Python, no models."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from raytag.perturb import KINDS, OCR_CONFUSIONS, QWERTY_NEIGHBOURS, PerturbError, is_eligible, parse_kinds, perturb

PLATFORM = Path(__file__).resolve().parents[2] / "platform"


def corpus(sentences: int = 60, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Mixed tokens: cased words, names with tags, digits, punctuation and one-character tokens."""
    rng = random.Random(seed)
    words = ["the", "Morning", "clerk", "modern", "WORLD", "billion", "a", "I", "x", "said", "rn", "cl"]
    other = [".", ",", "1996", "42", "-", "%", "0", "5"]
    names = {"PER": ["Ada", "Bob", "Sulli", "Olof"], "LOC": ["Berlin", "Oslo", "Lima", "Zermatt"]}
    tokens, tags = [], []
    for _ in range(sentences):
        sent, gold = [], []
        for _ in range(rng.randint(1, 10)):
            roll = rng.random()
            if roll < 0.25:
                kind = rng.choice(sorted(names))
                for j in range(rng.randint(1, 2)):
                    sent.append(rng.choice(names[kind]))
                    gold.append(f"{'B' if j == 0 else 'I'}-{kind}")
            else:
                sent.append(rng.choice(other if roll > 0.85 else words))
                gold.append("O")
        tokens.append(sent)
        tags.append(gold)
    return tokens, tags


TOKENS, TAGS = corpus()


def changed(before: list[list[str]], after: list[list[str]]) -> list[tuple[str, str, str]]:
    return [(a, b, t) for s, p, g in zip(before, after, TAGS) for a, b, t in zip(s, p, g) if a != b]


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_output_different_seed_differs(kind):
    snapshot = json.dumps(TOKENS)
    first = perturb(TOKENS, kind, rate=0.5, seed=7, tags=TAGS)
    assert perturb(TOKENS, kind, rate=0.5, seed=7, tags=TAGS) == first
    assert perturb(TOKENS, kind, rate=0.5, seed=8, tags=TAGS) != first
    assert first != TOKENS
    assert json.dumps(TOKENS) == snapshot  # the input is not modified


def test_output_does_not_depend_on_hash_randomisation():
    code = (
        "import json, sys; from raytag.perturb import KINDS, perturb; "
        "t, g = json.loads(sys.stdin.read()); "
        "print(json.dumps([perturb(t, k, rate=0.4, seed=3, tags=g) for k in KINDS]))"
    )
    expected = [perturb(TOKENS, k, rate=0.4, seed=3, tags=TAGS) for k in KINDS]
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(PLATFORM)}
        run = subprocess.run([sys.executable, "-c", code], input=json.dumps([TOKENS, TAGS]), env=env,
                             capture_output=True, text=True, check=True)
        assert json.loads(run.stdout) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_rate_zero_is_identity_and_rate_one_hits_every_eligible_word(kind):
    assert perturb(TOKENS, kind, rate=0.0, seed=1, tags=TAGS) == TOKENS
    out = perturb(TOKENS, kind, rate=1.0, seed=1, tags=TAGS)
    eligible = 0
    for sent, new, gold in zip(TOKENS, out, TAGS):
        for a, b, t in zip(sent, new, gold):
            assert (a != b) == is_eligible(a, kind, t), (kind, a, b, t)
            eligible += is_eligible(a, kind, t)
    assert eligible > 20  # the corpus exercises the kind


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("unit", ["word", "sentence"])
def test_token_counts_kept_and_no_empty_or_split_token(kind, unit):
    for rate in (0.3, 1.0):
        out = perturb(TOKENS, kind, rate=rate, seed=2, tags=TAGS, unit=unit)
        assert [len(s) for s in out] == [len(s) for s in TOKENS]
        for token in (t for s in out for t in s):
            assert token and token.split() == [token]


def test_rate_is_the_share_of_eligible_words():
    tokens, tags = corpus(400, seed=5)
    out = perturb(tokens, "typos", rate=0.1, seed=0, tags=tags)
    eligible = [(a, b) for s, p in zip(tokens, out) for a, b in zip(s, p) if is_eligible(a, "typos")]
    share = sum(a != b for a, b in eligible) / len(eligible)
    assert 0.07 < share < 0.13


def test_kinds_of_one_seed_pick_the_same_positions():
    # Words that are eligible for both kinds change in the same places.
    a = perturb(TOKENS, "typos", rate=0.3, seed=4)
    b = perturb(TOKENS, "keyboard", rate=0.3, seed=4)
    for sent, x, y in zip(TOKENS, a, b):
        for tok, tx, ty in zip(sent, x, y):
            if is_eligible(tok, "typos") and is_eligible(tok, "keyboard"):
                assert (tok != tx) == (tok != ty)


def test_case_changes_only_case_and_sentence_unit_uses_one_mode():
    pairs = changed(TOKENS, perturb(TOKENS, "case", rate=1.0, seed=0, tags=TAGS))
    assert pairs and all(a.casefold() == b.casefold() for a, b, _ in pairs)
    out = perturb(TOKENS, "case", rate=1.0, seed=0, unit="sentence")
    modes_seen = set()
    cases = {"lower": str.lower, "upper": str.upper, "title": lambda w: w[:1].upper() + w[1:].lower()}
    for sent, new in zip(TOKENS, out):
        modes = {m for m, f in cases.items() if all(f(a) == b for a, b in zip(sent, new) if is_eligible(a, "case"))}
        assert modes, (sent, new)  # one mode explains every word of the sentence
        modes_seen |= modes
    assert modes_seen == {"lower", "upper", "title"}


def is_single_typo(a: str, b: str) -> bool:
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    inserts = {a[:i] + c + a[i:] for i in range(len(a) + 1) for c in letters}
    deletes = {a[:i] + a[i + 1:] for i in range(len(a))}
    swaps = {a[:i] + a[i + 1] + a[i] + a[i + 2:] for i in range(len(a) - 1)}
    replaces = {a[:i] + c + a[i + 1:] for i in range(len(a)) for c in letters}
    return b in inserts | deletes | swaps | replaces


def test_typos_are_single_character_edits():
    pairs = changed(TOKENS, perturb(TOKENS, "typos", rate=1.0, seed=3, tags=TAGS))
    assert len(pairs) > 20
    assert all(is_single_typo(a, b) for a, b, _ in pairs)
    assert {len(b) - len(a) for a, b, _ in pairs} == {-1, 0, 1}  # inserts, deletes and swaps/replaces all occur


def test_keyboard_substitutes_one_qwerty_neighbour_keeping_case():
    pairs = changed(TOKENS, perturb(TOKENS, "keyboard", rate=1.0, seed=5, tags=TAGS))
    assert len(pairs) > 20
    for a, b, _ in pairs:
        diff = [(x, y) for x, y in zip(a, b) if x != y]
        assert len(a) == len(b) and len(diff) == 1
        (x, y), = diff
        assert y.lower() in QWERTY_NEIGHBOURS[x.lower()] and x.isupper() == y.isupper()


def test_qwerty_neighbours_are_symmetric_and_cover_the_alphabet():
    assert sorted(QWERTY_NEIGHBOURS) == list("abcdefghijklmnopqrstuvwxyz")
    for key, near in QWERTY_NEIGHBOURS.items():
        assert key not in near
        assert all(key in QWERTY_NEIGHBOURS[n] for n in near), key


def test_ocr_applies_exactly_one_listed_confusion():
    pairs = changed(TOKENS, perturb(TOKENS, "ocr", rate=1.0, seed=6, tags=TAGS))
    assert len(pairs) > 20
    for a, b, _ in pairs:
        singles = {a[:i] + dst + a[i + len(src):] for src, dst in OCR_CONFUSIONS
                   for i in range(len(a)) if a.startswith(src, i)}
        assert b in singles, (a, b)
    assert perturb([["xyz", "?!"]], "ocr", rate=1.0) == [["xyz", "?!"]]  # nothing listed applies


def test_truncate_entities_cuts_only_entity_words_to_a_proper_prefix():
    out = perturb(TOKENS, "truncate-entities", rate=1.0, seed=0, tags=TAGS)
    pairs = changed(TOKENS, out)
    assert len(pairs) > 10
    for a, b, tag in pairs:
        assert tag != "O" and a.startswith(b) and 0 < len(b) < len(a)
    with pytest.raises(PerturbError, match="needs the gold tags"):
        perturb(TOKENS, "truncate-entities")


def test_sentence_unit_touches_a_share_of_sentences_entirely():
    tokens, _ = corpus(300, seed=9)
    out = perturb(tokens, "typos", rate=0.2, seed=0, unit="sentence")
    touched = 0
    for sent, new in zip(tokens, out):
        hits = [a != b for a, b in zip(sent, new) if is_eligible(a, "typos")]
        assert all(hits) or not any(hits)
        touched += any(hits)
    assert 0.12 < touched / len(tokens) < 0.28


def test_parse_kinds_and_errors():
    assert parse_kinds("case, ocr,case") == ["case", "ocr"]
    assert parse_kinds("all") == list(KINDS)
    assert parse_kinds(["typos"]) == ["typos"]
    with pytest.raises(PerturbError, match="unknown perturbation kind 'blur'.*keyboard"):
        parse_kinds("case,blur")
    with pytest.raises(PerturbError, match="no perturbation kind"):
        parse_kinds(" , ")
    with pytest.raises(PerturbError, match="unknown perturbation kind 'noise'"):
        perturb(TOKENS, "noise")
    with pytest.raises(PerturbError, match="between 0 and 1"):
        perturb(TOKENS, "case", rate=1.5)
    with pytest.raises(PerturbError, match="sentence 0: 2 tokens but 1 tags"):
        perturb([["a", "b"]], "case", tags=[["O"]])
