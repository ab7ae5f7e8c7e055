"""Name → class registries (the timm way): one each for generative models and final classifiers."""
from __future__ import annotations

import dataclasses

from zsgm.core.errors import unknown_name_error


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    cls: type
    description: str


class Registry(dict):
    """Name → Entry, filled by a ``@registry.register(name, description)`` class decorator.

    One small registry each for generative models and final classifiers (the timm way)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str, description: str):
        def deco(cls: type) -> type:
            if name in self:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self[name] = Entry(name, cls, description)
            cls.name = name
            return cls

        return deco

    def get_entry(self, name: str) -> Entry:
        if name not in self:
            raise unknown_name_error(self.kind, name, self)
        return self[name]
