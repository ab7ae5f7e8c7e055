"""The f-CLSWGAN final classifier: a linear softmax layer over all classes."""
from __future__ import annotations

import torch
from torch import nn

from extract.training import adam, cuda_graphs_wanted, train_minibatch

from evaluate.classifiers import register


@register("softmax", "linear softmax over all classes on real seen + synthetic unseen features (f-CLSWGAN)")
class SoftmaxClassifier:
    def __init__(self, epochs: int = 25, lr: float = 1e-3, batch_size: int = 256, min_steps: int = 600,
                 cuda_graphs: str = "auto"):
        self.epochs, self.lr, self.batch_size, self.min_steps = epochs, lr, batch_size, min_steps
        self.cuda_graphs = cuda_graphs

    def fit(self, x: torch.Tensor, y: torch.Tensor, n_classes: int, attributes=None, seen_mask=None):
        self.net = nn.Linear(x.shape[1], n_classes).to(x.device)
        graphs = cuda_graphs_wanted(self.cuda_graphs, x.device, "softmax classifier")
        opt = adam(self.net.parameters(), lr=self.lr, betas=(0.5, 0.999), capturable=graphs)
        self.losses = train_minibatch(self.net, self.net, x, y, self.epochs, self.batch_size, opt,
                                      min_steps=self.min_steps, graphs=graphs)
        return self

    @torch.no_grad()
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.net(x), dim=1)
