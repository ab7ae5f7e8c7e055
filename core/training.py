"""The small-network training kit the generator's regulariser and the final classifiers share:
Adam (fused where torch has it), CUDA-graph capture and its warm-up, and a minibatch
cross-entropy trainer whose steps replay as one CUDA graph on a GPU (``GraphedStep``).

(Backbone training from scratch is ``extract.scratch``.)
"""
from __future__ import annotations

import math

import torch

from zsgm.core.errors import ZsgmError
from zsgm.core.logs import ProgressLog


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
                    graphs: bool = False, what: str = "classifier") -> list[float]:
    """Cross-entropy training over shuffled batches indexed from device tensors.

    ``min_steps`` stretches the epochs (and a step scheduler with them) so that a small
    training set still gets enough optimiser steps. ``graphs`` (CUDA only; the optimiser
    built with ``capturable=True``, and ``scheduled=True`` if a scheduler changes its lr)
    replays each step as one CUDA graph (``GraphedStep``). A fit that runs longer than the
    progress interval logs ``<what> epoch k/E`` lines (a short one stays silent).
    """
    n = x.shape[0]
    per_epoch = max(1, math.ceil(n / batch_size))
    stretch = max(1, math.ceil(min_steps / (per_epoch * max(epochs, 1))))
    epochs *= stretch
    losses = []
    model.train()
    graphed = GraphedStep(logits_fn, x, y, min(batch_size, n), optimizer) if graphs and n else None
    report = ProgressLog(f"{what} epoch", epochs, first=False, last=False)
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
        report.step(epoch + 1, f"loss {losses[-1]:.4g}")
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
