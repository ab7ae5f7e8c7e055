"""The seen–unseen accuracy curve swept by calibrated stacking, and its area (AUSUC).

Calibrated stacking (Chao et al., ECCV 2016) subtracts a constant ``gamma`` from every
seen-class score before the argmax. Sweeping ``gamma`` from -inf (everything is called
seen) to +inf (everything is called unseen) traces the trade-off between the seen
accuracy S and the unseen accuracy U; the area under that curve (AUSUC) summarises a
score matrix independently of any one calibration.

Both accuracies are per-class means (the GZSL protocol), in percent; AUSUC is in percent
of the unit square (Chao et al. report the same number divided by 100).

The exact curve costs one sort: a test sample's prediction can only switch between its
best seen class and its best unseen class, and it does so at ``gamma = max_seen -
max_unseen``. Sorting those break points gives every distinct point of the curve.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch



@dataclass(frozen=True)
class SeenUnseenCurve:
    """Points ordered by increasing ``gamma`` (so U rises and S falls), in percent."""
    gamma: np.ndarray      # the seen-score penalty at each point (first -inf, last +inf)
    S: np.ndarray
    U: np.ndarray
    auc: float             # AUSUC, percent of the unit square

    @property
    def H(self) -> np.ndarray:
        denom = self.S + self.U
        return np.divide(2 * self.S * self.U, denom, out=np.zeros_like(denom), where=denom > 0)

    def best_h(self) -> tuple[float, float]:
        """The highest H on the curve and a ``gamma`` that reaches it."""
        k = int(np.argmax(self.H))
        return float(self.H[k]), float(self.gamma[k])


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return x.double().numpy() if x.is_floating_point() else x.numpy()
    return np.asarray(x)


def _split(scores, labels, seen_classes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = _as_numpy(scores).astype(np.float64)
    labels = _as_numpy(labels).astype(np.int64)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"scores must be [N, C] and labels [N]; got {scores.shape} and {labels.shape}")
    seen_mask = np.zeros(scores.shape[1], dtype=bool)
    seen_mask[_as_numpy(seen_classes).astype(np.int64)] = True
    if seen_mask.all() or not seen_mask.any():
        raise ValueError("AUSUC needs both seen and unseen classes among the score columns")
    return scores, labels, seen_mask


def _class_weights(labels: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Weight of each sample in a per-class mean accuracy over the classes of ``members``."""
    w = np.zeros(len(labels))
    classes, counts = np.unique(labels[members], return_counts=True)
    if len(classes):
        per_class = dict(zip(classes.tolist(), (1.0 / (counts * len(classes))).tolist()))
        w[members] = [per_class[c] for c in labels[members].tolist()]
    return w


def seen_unseen_curve(scores, labels, seen_classes) -> SeenUnseenCurve:
    """The exact curve for test ``scores [N, C]`` over all classes, true ``labels [N]``, and
    the indices of the seen classes (every other column is unseen). Samples whose label
    is seen count towards S, the others towards U.
    """
    scores, labels, seen_mask = _split(scores, labels, seen_classes)
    seen_idx, unseen_idx = np.flatnonzero(seen_mask), np.flatnonzero(~seen_mask)
    s_scores, u_scores = scores[:, seen_idx], scores[:, unseen_idx]
    top_seen = seen_idx[s_scores.argmax(1)]
    top_unseen = unseen_idx[u_scores.argmax(1)]
    d = s_scores.max(1) - u_scores.max(1)           # seen wins while gamma < d

    is_seen = seen_mask[labels]
    w_seen = _class_weights(labels, is_seen) * (top_seen == labels)        # counts while gamma < d
    w_unseen = _class_weights(labels, ~is_seen) * (top_unseen == labels)   # counts once gamma > d

    breaks, inverse = np.unique(d, return_inverse=True)
    lost_seen = np.bincount(inverse, weights=w_seen, minlength=len(breaks))
    won_unseen = np.bincount(inverse, weights=w_unseen, minlength=len(breaks))
    # Point 0 is gamma=-inf; point k+1 lies just past break k.
    S = 100.0 * np.concatenate([[w_seen.sum()], w_seen.sum() - np.cumsum(lost_seen)])
    U = 100.0 * np.concatenate([[0.0], np.cumsum(won_unseen)])
    S = np.clip(S, 0.0, 100.0)  # cumulative sums can drift a hair below zero
    gamma = np.concatenate([[-np.inf], _between(breaks)])
    return SeenUnseenCurve(gamma=gamma, S=S, U=U, auc=area(U, S))


def _between(breaks: np.ndarray) -> np.ndarray:
    """A gamma strictly inside each gap between sorted break points, then +inf."""
    mids = (breaks[:-1] + breaks[1:]) / 2 if len(breaks) > 1 else np.empty(0)
    return np.concatenate([mids, [np.inf]])


def area(U: np.ndarray, S: np.ndarray) -> float:
    """Trapezoidal area under S(U), both in percent, as percent of the unit square."""
    U, S = np.asarray(U, dtype=np.float64), np.asarray(S, dtype=np.float64)
    order = np.argsort(U, kind="stable")
    U, S = U[order], S[order]
    return float(np.sum(np.diff(U) * (S[1:] + S[:-1]) / 2) / 100.0)


def ausuc(scores, labels, seen_classes) -> float:
    """Area under the seen–unseen curve in percent of the unit square."""
    return seen_unseen_curve(scores, labels, seen_classes).auc
