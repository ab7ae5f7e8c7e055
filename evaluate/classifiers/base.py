"""Shared minibatch training on device tensors for the trained classifiers."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def train_minibatch(model: nn.Module, logits_fn, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int,
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
            loss = F.cross_entropy(logits_fn(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
        losses.append(float(total) / max(n, 1))
        if scheduler is not None and (epoch + 1) % stretch == 0:
            scheduler.step()
    model.eval()
    return losses
