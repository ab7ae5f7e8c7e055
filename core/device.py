"""Where a process runs: the torch device asked for, and its rank under torchrun."""
from __future__ import annotations

import os

import torch

from zsgm.core.errors import ZsgmError


def pick_device(name: str | None = None) -> torch.device:
    """``auto`` (or None) picks CUDA when present, else CPU."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ZsgmError(f"--device {name} asked for, but torch sees no CUDA device; use --device cpu")
    try:
        return torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ZsgmError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N") from None


def dist_rank() -> int:
    """This process's rank under torchrun (``RANK``), 0 otherwise."""
    try:
        return int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0
