"""Shared minibatch training on device tensors for the trained classifiers (the loop itself
lives in ``extract.common``, where the engine's seen-class regulariser uses it too)."""
from __future__ import annotations

from extract.common import train_minibatch

__all__ = ["train_minibatch"]
