"""The f-CLSWGAN classification regulariser's classifier: softmax on real seen features."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from extract.common import adam


def train_seen_classifier(features: torch.Tensor, labels: torch.Tensor, n_classes: int, epochs: int = 20,
                          batch_size: int = 256, lr: float = 1e-3) -> nn.Linear:
    """A linear softmax classifier over the training classes, trained in large shuffled
    batches on device tensors, then frozen."""
    clf = nn.Linear(features.shape[1], n_classes).to(features.device)
    opt = adam(clf.parameters(), lr=lr, betas=(0.5, 0.999))
    n = features.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, device=features.device)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(clf(features[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    clf.requires_grad_(False)
    return clf
