"""Final GZSL classifiers over all classes, trained on real seen + synthetic unseen features.

Each is registered by name and exposes ``fit(x, y, ...)`` and ``scores(x) -> [n, C]``
(probabilities, so that one calibration grid serves them all).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from extract.common import unknown_name_error


@dataclass(frozen=True)
class Entry:
    name: str
    cls: type
    description: str


CLASSIFIERS: dict[str, Entry] = {}


def register(name: str, description: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        CLASSIFIERS[name] = Entry(name, cls, description)
        cls.name = name
        return cls

    return deco


def build(name: str, hp: dict | None = None, device=None):
    if name not in CLASSIFIERS:
        raise unknown_name_error("classifier", name, CLASSIFIERS)
    return CLASSIFIERS[name].cls(**(hp or {}), device=device)


from evaluate.classifiers import knn, prototype, softmax  # noqa: E402,F401  (registration)
