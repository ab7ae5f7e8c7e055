"""GZSL metrics against slow, obvious references."""
from __future__ import annotations

import pytest
import torch

from zsgm.evaluate.metrics import best_gamma, gzsl_evaluate, harmonic, mean_class_accuracy, per_class_accuracy


def slow_per_class(pred, labels):
    out = {}
    for c in sorted(set(labels.tolist())):
        hits = [int(p == c) for p, l in zip(pred.tolist(), labels.tolist()) if l == c]
        out[c] = sum(hits) / len(hits)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_per_class_accuracy_matches_slow_reference(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 17, (500,), generator=g)
    pred = torch.where(torch.rand(500, generator=g) < 0.4, labels, torch.randint(0, 17, (500,), generator=g))
    ref = slow_per_class(pred, labels)
    fast = per_class_accuracy(pred, labels)
    assert torch.allclose(fast, torch.tensor(list(ref.values()), dtype=fast.dtype))
    assert mean_class_accuracy(pred, labels) == pytest.approx(100 * sum(ref.values()) / len(ref))


def test_mean_is_per_class_not_per_sample():
    # class 0: 90 images all right; class 1: 10 images all wrong -> per-sample 90 %, per-class 50 %
    labels = torch.tensor([0] * 90 + [1] * 10)
    pred = torch.zeros(100, dtype=torch.long)
    assert mean_class_accuracy(pred, labels) == pytest.approx(50.0)


@pytest.mark.parametrize("u, s, h", [(50, 50, 50), (0, 80, 0), (30, 60, 40), (100, 25, 40)])
def test_harmonic_mean(u, s, h):
    assert harmonic(u, s) == pytest.approx(h)


def test_gzsl_evaluate_and_calibration():
    seen_mask = torch.tensor([True, True, False, False])
    # Seen images are right; unseen images lose narrowly to a seen class until calibrated.
    scores_seen = torch.tensor([[0.9, 0.05, 0.03, 0.02], [0.1, 0.8, 0.05, 0.05]])
    scores_unseen = torch.tensor([[0.5, 0.0, 0.4, 0.1], [0.0, 0.5, 0.1, 0.4]])
    labels_seen, labels_unseen = torch.tensor([0, 1]), torch.tensor([2, 3])
    raw = gzsl_evaluate(scores_seen, labels_seen, scores_unseen, labels_unseen, seen_mask)
    assert (raw.U, raw.S, raw.H) == (0.0, 100.0, 0.0)
    assert raw.zsl == 100.0  # restricted to unseen classes the ranking is right
    gamma, best = best_gamma(scores_seen, labels_seen, scores_unseen, labels_unseen, seen_mask)
    assert 0.1 < gamma < 0.6 and best.U == 100.0 and best.S == 100.0 and best.H == 100.0
