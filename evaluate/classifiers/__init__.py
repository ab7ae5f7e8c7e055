"""Final GZSL classifiers over all classes, trained on real seen + synthetic unseen features.

Each is registered by name and exposes ``fit(x, y, ...)`` and ``scores(x) -> [n, C]``:
log-probabilities, so that calibrated stacking subtracts γ in logit space, where a margin
means the same whatever the number of classes (validation and test problems differ in it).
"""
from __future__ import annotations

from zsgm.evaluate.classifiers import knn, prototype, softmax  # noqa: F401  (each registers itself)
from zsgm.evaluate.classifiers.registry import CLASSIFIERS, build, register

__all__ = ["CLASSIFIERS", "build", "register"]
