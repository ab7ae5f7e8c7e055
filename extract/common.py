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
        # mkstemp creates 0600; the result gets the mode a plain open() would give it (or keeps
        # the mode of the file it replaces), so that colleagues on a shared server can read it.
        os.chmod(tmp, file_mode(path))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (/proc), else by a set-and-restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(path: str | os.PathLike) -> int:
    """The permission bits a new file at ``path`` gets: the existing file's, else 0666 minus the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


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


def adam(params, scheduled: bool = False, **kwargs) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has it: on CPU the default per-tensor update
    costs more than the forward and backward passes of these small MLPs (measured ~8x).

    ``capturable=True`` (for CUDA-graph replay) keeps the step count on the device; with
    ``scheduled`` the lr lives there too, as a tensor that a scheduler updates in place (a
    float lr would be frozen into the graph)."""
    params = list(params)
    if scheduled and kwargs.get("capturable") and params:
        kwargs["lr"] = torch.tensor(float(kwargs.get("lr", 1e-3)), device=params[0].device)
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, **kwargs)


def cuda_graphs_wanted(setting, device: torch.device | str, what: str) -> bool:
    """Whether ``cuda_graphs`` (auto | on | off; YAML may hand over a bool) asks for CUDA graphs
    on ``device``: auto and on mean yes on CUDA, no elsewhere."""
    value = str(setting).lower()
    if value not in ("auto", "on", "true", "off", "false"):
        raise ZsgmError(f"{what}: cuda_graphs must be auto, on or off, got '{setting}'")
    return value in ("auto", "on", "true") and torch.device(device).type == "cuda"


def on_side_stream(device: torch.device, fn, times: int = 1) -> None:
    """Run ``fn`` eagerly ``times`` times on a side CUDA stream, ordered after and before the
    current stream's work: the warm-up (allocator, optimiser state, cuBLAS handles) that CUDA
    graph capture requires."""
    here = torch.cuda.current_stream(device)
    side = torch.cuda.Stream(device)
    side.wait_stream(here)
    with torch.cuda.stream(side):
        for _ in range(times):
            fn()
    here.wait_stream(side)


def capture_cuda_graph(fn, what: str, fix: str) -> "torch.cuda.CUDAGraph":
    """``fn`` captured as one CUDA graph (recorded, not run: replay it). A failed capture is a
    ZsgmError that says what failed and ``fix``: training cannot go on eagerly in this process,
    since a failed capture may leave CUDA's random-number state mid-capture (seen on an H200:
    "Offset increment outside graph capture")."""
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            fn()
    except Exception as exc:
        raise ZsgmError(f"{what}: CUDA graph capture failed ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); {fix}") from exc
    return graph


def train_minibatch(model: torch.nn.Module, logits_fn, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int,
                    optimizer: torch.optim.Optimizer, scheduler=None, min_steps: int = 0,
                    graphs: bool = False) -> list[float]:
    """Cross-entropy training over shuffled batches indexed from device tensors.

    ``min_steps`` stretches the epochs (and a step scheduler with them) so that a small
    training set still gets enough optimiser steps. ``graphs`` (CUDA only; the optimiser
    built with ``capturable=True``, and ``scheduled=True`` if a scheduler changes its lr)
    replays each step as one CUDA graph (``GraphedStep``).
    """
    n = x.shape[0]
    per_epoch = max(1, math.ceil(n / batch_size))
    stretch = max(1, math.ceil(min_steps / (per_epoch * max(epochs, 1))))
    epochs *= stretch
    losses = []
    model.train()
    graphed = GraphedStep(logits_fn, x, y, min(batch_size, n), optimizer) if graphs and n else None
    for epoch in range(epochs):
        perm = torch.randperm(n, device=x.device)
        # The loss is summed on the device and read once per epoch (a float() per step would
        # make every step of a GPU run wait for the device).
        total = graphed.total.zero_() if graphed else torch.zeros((), device=x.device)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            if graphed is not None:
                graphed(idx)
                continue
            loss = torch.nn.functional.cross_entropy(logits_fn(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
        losses.append(float(total) / max(n, 1))
        if scheduler is not None and (epoch + 1) % stretch == 0:
            scheduler.step()
            if graphed is not None:
                graphed.follow_lr()
    model.eval()
    return losses


class GraphedStep:
    """One minibatch step (gather, forward, cross-entropy, backward, Adam) captured once as a
    CUDA graph and replayed: on a GPU these small classifiers are bound by kernel launches
    (about 50 a step), and a replay launches them at once.

    The batch is a static index buffer that each call fills; a short last batch is padded and
    its padding weighted 0, so the loss is the mean over the real rows, as the eager step's.
    The first ``WARMUP`` steps run eagerly on a side stream (allocator, optimiser state, cuBLAS
    handles), as CUDA-graph capture requires; they are real training steps. Off CUDA every step
    runs eagerly through the same static buffers (which is how the CPU tests check the padding).
    """

    WARMUP = 3

    def __init__(self, logits_fn, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                 optimizer: torch.optim.Optimizer):
        if x.is_cuda and not all(g.get("capturable") for g in optimizer.param_groups):
            raise ValueError("CUDA-graph steps need an optimiser built with capturable=True")
        self.logits_fn, self.x, self.y, self.optimizer = logits_fn, x, y, optimizer
        self.idx = torch.zeros(batch_size, dtype=torch.long, device=x.device)
        self.weight = torch.ones(batch_size, device=x.device)
        self.total = torch.zeros((), device=x.device)   # sum of loss x rows, read once per epoch
        self.graph: torch.cuda.CUDAGraph | None = None
        self.calls = 0
        self.lrs = [g["lr"] for g in optimizer.param_groups]  # the tensors a captured step reads

    def follow_lr(self) -> None:
        """After a scheduler step: torch's schedulers fill a tensor lr in place, but one that put
        a new tensor (or a float) in the group would leave the graph reading the old one."""
        for group, lr in zip(self.optimizer.param_groups, self.lrs):
            if torch.is_tensor(lr) and group["lr"] is not lr:
                lr.fill_(float(group["lr"]))
                group["lr"] = lr

    def _step(self) -> None:
        per_row = torch.nn.functional.cross_entropy(self.logits_fn(self.x[self.idx]), self.y[self.idx],
                                                    reduction="none")
        rows = self.weight.sum()
        loss = (per_row * self.weight).sum() / rows
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.total.add_(loss.detach() * rows)

    def __call__(self, idx: torch.Tensor) -> None:
        m, size = len(idx), len(self.idx)
        self.idx[:m].copy_(idx)
        if m < size:
            self.idx[m:].zero_()
            self.weight[m:].zero_()
        if self.graph is not None:
            self.graph.replay()
        elif not self.x.is_cuda:
            self._step()
        elif self.calls < self.WARMUP:
            on_side_stream(self.x.device, self._step)
        else:
            self.graph = capture_cuda_graph(self._step, "classifier step", "re-run with --clf-set cuda_graphs=off")
            self.graph.replay()  # capture records the step; the replay runs it
        if m < size:
            self.weight[m:].fill_(1.0)
        self.calls += 1


def dist_rank() -> int:
    """This process's rank under torchrun (``RANK``), 0 otherwise."""
    try:
        return int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0


_QUIET = False


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """INFO (DEBUG with ``verbose``) to stderr; ``quiet``: warnings and errors only, no progress
    bars. Under torchrun only rank 0 logs below ERROR, so that a line is printed once, not once
    per process."""
    global _QUIET
    _QUIET = bool(quiet)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    if dist_rank() != 0:
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(level)
    logging.getLogger("zsgm").setLevel(level)


def show_progress(requested: bool = True, stream=None) -> bool:
    """Whether to draw tqdm bars: asked for, not ``--quiet``, rank 0, and stderr a terminal
    (redirected to a file, a bar's carriage returns only garble the log)."""
    import sys

    stream = stream if stream is not None else sys.stderr
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    return bool(requested) and not _QUIET and dist_rank() == 0 and tty


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
