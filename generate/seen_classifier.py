"""The f-CLSWGAN classification regulariser's classifier: softmax on real seen features."""
from __future__ import annotations

import torch
from torch import nn

from zsgm.core.training import adam, train_minibatch


def train_seen_classifier(features: torch.Tensor, labels: torch.Tensor, n_classes: int, epochs: int = 20,
                          batch_size: int = 256, lr: float = 1e-3, graphs: bool = False) -> nn.Linear:
    """A linear softmax classifier over the training classes, trained in large shuffled
    batches on device tensors, then frozen. ``graphs`` (CUDA): each step one CUDA-graph replay."""
    clf = nn.Linear(features.shape[1], n_classes).to(features.device)
    opt = adam(clf.parameters(), lr=lr, betas=(0.5, 0.999), capturable=graphs)
    train_minibatch(clf, clf, features, labels, epochs, batch_size, opt, graphs=graphs, what="seen-class classifier")
    clf.requires_grad_(False)
    return clf
