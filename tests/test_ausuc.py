"""AUSUC: the one-sort curve against a slow sweep that recomputes every prediction."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zsgm.evaluate.ausuc import area, ausuc, seen_unseen_curve


def slow_curve(scores: np.ndarray, labels: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sweep gamma over -inf, every midpoint of the sorted score gaps and +inf; argmax each time."""
    seen_mask = np.zeros(scores.shape[1], dtype=bool)
    seen_mask[seen] = True
    d = np.unique(scores[:, seen_mask].max(1) - scores[:, ~seen_mask].max(1))
    gammas = [d[0] - 1, *((d[:-1] + d[1:]) / 2), d[-1] + 1]   # beyond the ends = +-inf
    S, U = [], []
    for g in gammas:
        pred = np.where(seen_mask[None, :], scores - g, scores).argmax(1)
        accs = {c: np.mean(pred[labels == c] == c) for c in np.unique(labels)}
        S.append(100 * np.mean([a for c, a in accs.items() if seen_mask[c]]))
        U.append(100 * np.mean([a for c, a in accs.items() if not seen_mask[c]]))
    return np.array(S), np.array(U)


def _problem(rng: np.random.Generator, n: int, c: int, n_seen: int, discrete: bool):
    scores = rng.integers(0, 4, size=(n, c)).astype(float) if discrete else rng.normal(size=(n, c))
    labels = rng.integers(0, c, size=n)
    labels[:2] = [0, c - 1]           # at least one seen and one unseen sample
    return scores, labels, np.arange(n_seen)


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_curve_matches_slow_sweep(seed: int, discrete: bool) -> None:
    scores, labels, seen = _problem(np.random.default_rng(seed), 60, 7, 4, discrete)
    fast = seen_unseen_curve(scores, labels, seen)
    if discrete:  # argmax tie-breaking inside a class group: drop ties so both agree
        scores = scores + np.random.default_rng(100 + seed).normal(scale=1e-6, size=scores.shape)
        fast = seen_unseen_curve(scores, labels, seen)
    S, U = slow_curve(scores, labels, seen)
    np.testing.assert_allclose(fast.S, S, atol=1e-9)
    np.testing.assert_allclose(fast.U, U, atol=1e-9)
    assert fast.auc == pytest.approx(area(U, S), abs=1e-9)
    assert fast.gamma[0] == -np.inf and fast.gamma[-1] == np.inf
    assert np.all(np.diff(fast.U) >= 0) and np.all(np.diff(fast.S) <= 1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 9), st.integers(1, 40))
def test_curve_matches_slow_sweep_property(seed: int, c: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    scores, labels, seen = _problem(rng, max(n, 2), c, int(rng.integers(1, c)), False)
    fast = seen_unseen_curve(torch.from_numpy(scores).float(), torch.from_numpy(labels), torch.from_numpy(seen))
    S, U = slow_curve(torch.from_numpy(scores).float().double().numpy(), labels, seen)
    assert fast.auc == pytest.approx(area(U, S), abs=1e-7)


def test_perfect_scores_fill_the_square() -> None:
    labels = np.repeat(np.arange(6), 5)
    scores = np.eye(6)[labels] * 10
    assert ausuc(scores, labels, [0, 1, 2]) == pytest.approx(100.0)
    curve = seen_unseen_curve(scores, labels, [0, 1, 2])
    assert curve.best_h()[0] == pytest.approx(100.0)


def test_ausuc_is_per_class_mean() -> None:
    # Seen class 0 has 9 samples all right, seen class 1 one sample wrong: S = 50 %, not 90 %.
    labels = np.array([0] * 9 + [1, 2])
    scores = np.zeros((11, 3))
    scores[np.arange(9), 0] = 1
    scores[9, 0] = 1
    scores[10, 2] = 1
    curve = seen_unseen_curve(scores, labels, [0, 1])
    assert curve.S[0] == pytest.approx(50.0) and curve.U[-1] == pytest.approx(100.0)


def test_needs_both_class_groups() -> None:
    with pytest.raises(ValueError, match="both seen and unseen"):
        ausuc(np.zeros((3, 2)), np.array([0, 1, 0]), [0, 1])
