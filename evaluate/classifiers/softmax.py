"""The f-CLSWGAN final classifier: a linear softmax layer over all classes."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from zsgm.core.training import adam, cuda_graphs_wanted, train_minibatch

from zsgm.evaluate.classifiers.registry import register


@register("softmax", "linear softmax over all classes on real seen + synthetic unseen features (f-CLSWGAN)")
class SoftmaxClassifier:
    @dataclass(frozen=True)
    class Options:
        """Defaults: pipelines/configs/classifiers/softmax.yaml."""
        epochs: int
        lr: float
        batch_size: int
        min_steps: int          # at least this many optimiser steps, whatever the set size
        cuda_graphs: str | bool

    def __init__(self, options: Options):
        self.options = o = options
        self.epochs, self.lr, self.batch_size, self.min_steps = o.epochs, o.lr, o.batch_size, o.min_steps
        self.cuda_graphs = o.cuda_graphs

    def fit(self, x: torch.Tensor, y: torch.Tensor, n_classes: int, attributes=None, seen_mask=None):
        self.net = nn.Linear(x.shape[1], n_classes).to(x.device)
        graphs = cuda_graphs_wanted(self.cuda_graphs, x.device, "softmax classifier")
        opt = adam(self.net.parameters(), lr=self.lr, betas=(0.5, 0.999), capturable=graphs)
        self.losses = train_minibatch(self.net, self.net, x, y, self.epochs, self.batch_size, opt,
                                      min_steps=self.min_steps, graphs=graphs, what="softmax classifier")
        return self

    @torch.no_grad()
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.net(x), dim=1)
