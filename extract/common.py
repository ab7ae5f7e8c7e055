"""Shared helpers every stage may use: user-facing errors, atomic writes, seeding,
device choice, logging and the data root.

They live on the ground floor so that ``generate`` and ``evaluate`` can import them
without importing each other.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import json
import logging
import math
import os
import random
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

log = logging.getLogger("zsgm")


class ZsgmError(Exception):
    """Bad input or usage. The CLI prints the message alone and exits with code 2."""


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> ZsgmError:
    """An error for an unknown registry name, listing the known ones and the closest match."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=8)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    if len(known) > 30:  # e.g. timm's models: the closest ones, not a page of names
        return ZsgmError(f"unknown {kind} '{name}'.{hint} Closest known: "
                         f"{', '.join(close) or ', '.join(known[:8])} (of {len(known)})")
    return ZsgmError(f"unknown {kind} '{name}'.{hint} Known: {', '.join(known)}")


# ---------------------------------------------------------------- registries
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


# ---------------------------------------------------------------- atomic files
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


# ---------------------------------------------------------------- hashing
def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj, length: int = 12) -> str:
    """Hash of a JSON-able object that does not depend on key order."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# ---------------------------------------------------------------- seeding, device
def seed_everything(seed: int) -> None:
    """One seed for Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG state a resumed run needs to continue identically."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def pick_device(name: str | None = None) -> torch.device:
    """``auto`` (or None) picks CUDA when present, else CPU."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ZsgmError(f"--device {name} asked for, but torch sees no CUDA device; use --device cpu")
    return torch.device(name)


def adam(params, **kwargs) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has it: on CPU the default per-tensor update
    costs more than the forward and backward passes of these small MLPs (measured ~8x)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, **kwargs)


def train_minibatch(model: torch.nn.Module, logits_fn, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int,
                    optimizer: torch.optim.Optimizer, scheduler=None, min_steps: int = 0) -> list[float]:
    """Cross-entropy training over shuffled batches indexed from device tensors.

    ``min_steps`` stretches the epochs (and a step scheduler with them) so that a small
    training set still gets enough optimiser steps.
    """
    n = x.shape[0]
    per_epoch = max(1, math.ceil(n / batch_size))
    stretch = max(1, math.ceil(min_steps / (per_epoch * max(epochs, 1))))
    epochs *= stretch
    losses = []
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, device=x.device)
        # The loss is summed on the device and read once per epoch (a float() per step would
        # make every step of a GPU run wait for the device).
        total = torch.zeros((), device=x.device)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            loss = torch.nn.functional.cross_entropy(logits_fn(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
        losses.append(float(total) / max(n, 1))
        if scheduler is not None and (epoch + 1) % stretch == 0:
            scheduler.step()
    model.eval()
    return losses


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


# ---------------------------------------------------------------- locations
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_root(override: str | os.PathLike | None = None) -> Path:
    """The folder that holds one folder per dataset (``CUB/``, ``AWA2/`` ...).

    Precedence: explicit ``--data-root``, then ``$ZSGM_DATA``, then ``<project>/data``.
    """
    if override:
        return Path(override).expanduser()
    if os.environ.get("ZSGM_DATA"):
        return Path(os.environ["ZSGM_DATA"]).expanduser()
    return PROJECT_ROOT / "data"


def shared_data_root() -> Path | None:
    """The research data staged beside the repository (``../shared/data``), if present."""
    if os.environ.get("ZSGM_DATA"):
        p = Path(os.environ["ZSGM_DATA"])
        return p if p.is_dir() else None
    p = PROJECT_ROOT.parent / "shared" / "data"
    return p if p.is_dir() else None


def versions() -> dict:
    import platform

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    try:
        import timm

        out["timm"] = timm.__version__
    except ImportError:  # pragma: no cover - timm is a hard dependency
        pass
    from extract import __version__

    out["zsgm"] = __version__
    return out
