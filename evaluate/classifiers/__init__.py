"""Final GZSL classifiers over all classes, trained on real seen + synthetic unseen features.

Each is registered by name and exposes ``fit(x, y, ...)`` and ``scores(x) -> [n, C]``:
log-probabilities, so that calibrated stacking subtracts γ in logit space, where a margin
means the same whatever the number of classes (validation and test problems differ in it).
"""
from __future__ import annotations

from zsgm.core.registry import Registry

CLASSIFIERS = Registry("classifier")
register = CLASSIFIERS.register


def build(name: str, options: dict):
    """Classifier ``name`` with ``options`` (every field of its ``Options``: the defaults are in
    pipelines/configs/classifiers/<name>.yaml); it trains on the device of the features it is fit on."""
    cls = CLASSIFIERS.get_entry(name).cls
    return cls(cls.Options(**options))


from zsgm.evaluate.classifiers import knn, prototype, softmax  # noqa: E402,F401  (registration)
