"""Honest model selection: validation classes carved out of the seen classes.

Three index sets, derived deterministically from the FeatureSet and the seed, all inside
``trainval_loc`` (test indices are never read here):

* ``fit``        trainval images of the training classes, minus the held-out part;
* ``val_seen``   a stratified ``holdout`` fraction of the training classes' images;
* ``val_unseen`` trainval images of the validation classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from zsgm.extract.featureset import FeatureSet


@dataclass
class ValidationSplit:
    fit: torch.Tensor
    val_seen: torch.Tensor
    val_unseen: torch.Tensor
    train_classes: torch.Tensor
    val_classes: torch.Tensor


def validation_split(fs: FeatureSet, seed: int, holdout: float = 0.2) -> ValidationSplit | None:
    """None when the FeatureSet has no usable validation classes (run with selection 'fixed')."""
    val = fs.val_classes
    if val is None or len(val) == 0:
        return None
    tv = fs.trainval_loc
    tv_labels = fs.labels[tv]
    is_val = torch.isin(tv_labels, val)
    train_classes = torch.unique(tv_labels[~is_val])
    val_classes = torch.unique(tv_labels[is_val])
    if len(train_classes) < 2 or len(val_classes) < 1:
        return None
    g = torch.Generator().manual_seed(int(seed))
    fit, held = [], []
    for c in train_classes.tolist():
        idx = tv[tv_labels == c]
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = int(round(holdout * len(idx))) if len(idx) > 1 else 0
        held.append(idx[:k])
        fit.append(idx[k:])
    return ValidationSplit(torch.sort(torch.cat(fit)).values, torch.sort(torch.cat(held)).values,
                           tv[is_val], train_classes, val_classes)


# History fields that are clocks and flags, not losses.
NOT_LOSSES = frozenset({"epoch", "seconds", "time", "wall", "stop", "lr"})


def loss_keys(history: list[dict]) -> list[str]:
    """The losses an engine history logged per epoch (not clocks, flags or ``eval_*`` metrics)."""
    return sorted({k for h in history for k, v in h.items() if isinstance(v, (int, float))
                   and not isinstance(v, bool) and k not in NOT_LOSSES and not k.startswith("eval_")})


def diverged(reference: list[dict], run: list[dict], factor: float = 10.0) -> str | None:
    """Whether ``run`` (a retraining) logged a loss far beyond anything ``reference`` (its selection
    run, same budget) did: more than ``factor`` × the reference's largest magnitude (at least 1)."""
    for key in loss_keys(reference):
        bound = factor * max([1.0] + [abs(h[key]) for h in reference if isinstance(h.get(key), (int, float))])
        for h in run:
            v = h.get(key)
            if isinstance(v, (int, float)) and not abs(v) <= bound:  # NaN counts as beyond
                return f"{key} {v:.4g} at epoch {h.get('epoch')}, beyond {bound:.3g}"
    return None
