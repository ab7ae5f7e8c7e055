"""The generative-prototype classifier (class-normalised ZSL, Skorokhodov & Elhoseiny 2021).

An MLP maps class attributes to a prototype in feature space; logits are the cosine between
a feature and every prototype, times a scale. Trained with cross-entropy over all classes
on real seen + synthetic unseen features; at test time seen logits are damped (×0.95 in the
seed) to counter the seen-class bias.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from extract.training import adam, cuda_graphs_wanted, train_minibatch

from evaluate.classifiers import register


class PrototypeNet(nn.Module):
    def __init__(self, att_dim: int, feature_dim: int, hidden: int, scale: float):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(att_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, feature_dim))
        self.scale = scale

    def prototypes(self, att: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(att), dim=1)

    def forward(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(x, dim=1) @ self.prototypes(att).T


# The seed's cosine scale 5 and its seen-logit damping ×0.95 do not hold on real features: on the
# CUB-50 FeatureSet (lite0, L2) the classifier without a generator reaches validation H 29.5 at
# scale 5 against 61.5 at 20 and 72.3 at 50 (zsgm picks the scale on validation, see clf_search in
# configs/models/_shared.yaml); the seen-class bias is removed by calibrated stacking chosen on
# validation in logit space, so the fixed damping is off (seen_scale 1.0).
# The seed fixes lr, epochs, the schedule and the network, not the batch. 1024 rather than 256:
# on a CUB-sized planted problem with a cramer generator, H 63.3 / 63.5 (lr 1e-3) and 69.6
# (lr 5e-4) against 61.5 / 60.5 at 256, in a third of the CPU time (67 s against 205 s), and a
# quarter of the steps, which is what a launch-bound GPU pays for.
@register("prototype", "cosine logits to prototypes generated from attributes (class-normalised ZSL)")
class PrototypeClassifier:
    def __init__(self, epochs: int = 50, lr: float = 5e-4, weight_decay: float = 1e-4, hidden: int = 1024,
                 scale: float = 20.0, batch_size: int = 1024, lr_step: int = 25, seen_scale: float = 1.0,
                 min_steps: int = 600, cuda_graphs: str = "auto"):
        self.epochs, self.lr, self.wd, self.hidden = epochs, lr, weight_decay, hidden
        self.scale, self.batch_size, self.lr_step, self.seen_scale = scale, batch_size, lr_step, seen_scale
        self.min_steps, self.cuda_graphs = min_steps, cuda_graphs

    def fit(self, x: torch.Tensor, y: torch.Tensor, n_classes: int, attributes: torch.Tensor,
            seen_mask: torch.Tensor | None = None):
        self.att = attributes.to(x.device).float()
        self.net = PrototypeNet(self.att.shape[1], x.shape[1], self.hidden, self.scale).to(x.device)
        graphs = cuda_graphs_wanted(self.cuda_graphs, x.device, "prototype classifier")
        opt = adam(self.net.parameters(), lr=self.lr, weight_decay=self.wd, capturable=graphs, scheduled=graphs)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, self.lr_step), gamma=0.1)
        self.seen_mask = seen_mask
        self.losses = train_minibatch(self.net, lambda b: self.net(b, self.att), x, y, self.epochs,
                                      self.batch_size, opt, sched, self.min_steps, graphs)
        return self

    @torch.no_grad()
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x, self.att)
        if self.seen_mask is not None and self.seen_scale != 1.0:
            factor = torch.where(self.seen_mask.to(x.device).bool(), self.seen_scale, 1.0)
            logits = logits * factor
        return torch.log_softmax(logits, dim=1)
