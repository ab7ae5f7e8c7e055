"""k-nearest-neighbour final classifier in cosine similarity; scores are the log of the vote
shares, smoothed by one vote spread over all classes (so that no score is -inf)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zsgm.evaluate.classifiers.registry import register


@register("knn", "k nearest neighbours (cosine) over real seen + synthetic unseen features")
class KNNClassifier:
    @dataclass(frozen=True)
    class Options:
        """Defaults: pipelines/configs/classifiers/knn.yaml."""
        k: int          # neighbours that vote
        chunk: int      # test rows scored at once (memory)

    def __init__(self, options: Options):
        self.options = options
        self.k, self.chunk = options.k, options.chunk

    def fit(self, x: torch.Tensor, y: torch.Tensor, n_classes: int, attributes=None, seen_mask=None):
        self.bank, self.labels, self.n_classes = F.normalize(x, dim=1), y, n_classes
        return self

    @torch.no_grad()
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        k = min(self.k, self.bank.shape[0])
        out = []
        for i in range(0, x.shape[0], self.chunk):
            sim = F.normalize(x[i:i + self.chunk], dim=1) @ self.bank.T
            top = sim.topk(k, dim=1).indices
            votes = torch.zeros(top.shape[0], self.n_classes, device=x.device)
            votes.scatter_add_(1, self.labels[top], torch.ones_like(top, dtype=votes.dtype))
            out.append(torch.log((votes + 1.0 / self.n_classes) / (k + 1)))
        return torch.cat(out) if out else torch.empty(0, self.n_classes, device=x.device)
