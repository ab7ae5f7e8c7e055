"""Registry of generative model families: ``@register("cramer", "...")`` on a Family class."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

from extract.common import unknown_name_error


@dataclass(frozen=True)
class Entry:
    name: str
    cls: type
    description: str


MODELS: dict[str, Entry] = {}


def register(name: str, description: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        if name in MODELS:
            raise ValueError(f"generative model '{name}' registered twice")
        MODELS[name] = Entry(name, cls, description)
        cls.name = name
        return cls

    return deco


def _load_families() -> None:
    from generate import families

    for mod in pkgutil.iter_modules(families.__path__):
        importlib.import_module(f"generate.families.{mod.name}")


def get(name: str) -> Entry:
    if name not in MODELS:
        raise unknown_name_error("generative model", name, MODELS)
    return MODELS[name]


_load_families()
