"""The CRF output layer against brute-force enumeration of every tag path on tiny examples."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf

from raytag.decoding import TransitionScores, decode, transition_mask
from raytag.models.crf import crf_log_likelihood, crf_log_norm, crf_marginals

LABELS = ["O", "B-X", "I-X"]
LENGTHS = [4, 2, 1]


def tiny_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    n, width = len(LABELS), max(LENGTHS)
    emissions = rng.normal(size=(len(LENGTHS), width, n))
    scores = TransitionScores(rng.normal(size=(n, n)), rng.normal(size=n), rng.normal(size=n))
    mask = np.arange(width)[None, :] < np.asarray(LENGTHS)[:, None]
    tags = rng.integers(0, n, size=(len(LENGTHS), width)) * mask
    return emissions, scores, mask, tags


def path_score(emissions: np.ndarray, path: tuple[int, ...], scores: TransitionScores) -> float:
    total = scores.start[path[0]] + scores.end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
    return float(total + sum(scores.pairwise[a, b] for a, b in zip(path, path[1:])))


def all_paths(length: int):
    return list(itertools.product(range(len(LABELS)), repeat=length))


def tf_args(emissions, scores, mask):
    return (tf.constant(emissions), tf.constant(mask), tf.constant(scores.pairwise), tf.constant(scores.start),
            tf.constant(scores.end))


def test_log_likelihood_and_partition_match_brute_force() -> None:
    emissions, scores, mask, tags = tiny_problem()
    e, m, trans, start, end = tf_args(emissions, scores, mask)
    log_z = crf_log_norm(e, m, trans, start, end).numpy()
    log_lik = crf_log_likelihood(e, tf.constant(tags), m, trans, start, end).numpy()
    for i, length in enumerate(LENGTHS):
        path_scores = [path_score(emissions[i], p, scores) for p in all_paths(length)]
        expected_z = np.logaddexp.reduce(path_scores)
        assert log_z[i] == pytest.approx(expected_z, abs=1e-9)
        gold = tuple(int(t) for t in tags[i, :length])
        assert log_lik[i] == pytest.approx(path_score(emissions[i], gold, scores) - expected_z, abs=1e-9)
        # Padding never counts: the same sentence alone gives the same value.
        alone = crf_log_norm(e[i : i + 1, :length], m[i : i + 1, :length], trans, start, end).numpy()[0]
        assert alone == pytest.approx(log_z[i], abs=1e-9)


def test_marginals_match_brute_force() -> None:
    emissions, scores, mask, _ = tiny_problem(1)
    marginals = crf_marginals(*tf_args(emissions, scores, mask)).numpy()
    for i, length in enumerate(LENGTHS):
        paths = all_paths(length)
        weights = np.exp([path_score(emissions[i], p, scores) for p in paths])
        expected = np.zeros((length, len(LABELS)))
        for path, weight in zip(paths, weights / weights.sum()):
            expected[np.arange(length), path] += weight
        np.testing.assert_allclose(marginals[i, :length], expected, atol=1e-9)
        np.testing.assert_allclose(marginals[i, length:], 0.0)


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_viterbi_with_transitions_matches_brute_force(constrained: bool, seed: int) -> None:
    emissions, scores, _, _ = tiny_problem(seed)
    allowed, start = transition_mask(LABELS)
    paths = decode(emissions, LENGTHS, LABELS, constrained=constrained, transitions=scores)
    for i, length in enumerate(LENGTHS):
        candidates = [
            p for p in all_paths(length)
            if not constrained or (start[p[0]] and all(allowed[a, b] for a, b in zip(p, p[1:])))
        ]
        best = max(candidates, key=lambda p: path_score(emissions[i], p, scores))
        assert tuple(paths[i]) == best


def test_learned_transitions_can_overrule_the_emissions() -> None:
    # Alone, each token prefers B-X; a strong B-X → B-X penalty makes the second O.
    emissions = np.log(np.array([[[0.2, 0.7, 0.1], [0.3, 0.6, 0.1]]]))
    pairwise = np.zeros((3, 3))
    pairwise[1, 1] = -5.0
    scores = TransitionScores(pairwise, np.zeros(3), np.zeros(3))
    assert decode(np.exp(emissions), [2], LABELS) == [[1, 1]]
    assert decode(emissions, [2], LABELS, transitions=scores) == [[1, 0]]


def test_transition_scores_check_their_shapes() -> None:
    with pytest.raises(ValueError, match="transition scores"):
        TransitionScores(np.zeros((3, 3)), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="do not match"):
        decode(np.zeros((1, 2, 2)), [2], ["O", "B-X"], transitions=TransitionScores(np.zeros((3, 3)), np.zeros(3),
                                                                                       np.zeros(3)))
