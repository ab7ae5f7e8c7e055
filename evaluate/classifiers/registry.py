"""The final classifiers' registry: name -> class, filled by ``@register`` in each classifier's module."""
from __future__ import annotations

from zsgm.core.registry import Registry

CLASSIFIERS = Registry("classifier")
register = CLASSIFIERS.register


def build(name: str, options: dict):
    """Classifier ``name`` with ``options`` (every field of its ``Options``: the defaults are in
    pipelines/configs/classifiers/<name>.yaml); it trains on the device of the features it is fit on."""
    cls = CLASSIFIERS.get_entry(name).cls
    return cls(cls.Options(**options))
