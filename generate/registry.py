"""Registry of generative model families: ``@register("cramer", "...")`` on a Family class."""
from __future__ import annotations

import importlib
import pkgutil

from zsgm.core.registry import Entry, Registry

MODELS = Registry("generative model")
register = MODELS.register


def get(name: str) -> Entry:
    return MODELS.get_entry(name)


def _load_families() -> None:
    from zsgm.generate import families

    for mod in pkgutil.iter_modules(families.__path__):
        importlib.import_module(f"zsgm.generate.families.{mod.name}")


_load_families()
