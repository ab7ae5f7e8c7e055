"""The generative-prototype classifier (class-normalised ZSL, Skorokhodov & Elhoseiny 2021).

An MLP maps class attributes to a prototype in feature space; logits are the cosine between
a feature and every prototype, times a scale. Trained with cross-entropy on real seen +
synthetic unseen features, over the classes that have training rows (a class without rows gets
its prototype from its attributes alone); seen logits can be damped (the seed's ×0.95; calibrated
stacking does it now). With ``real_mix`` > 0 a second net, trained on the real features only, has
its logits mixed in.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zsgm.core.training import adam, cuda_graphs_wanted, train_minibatch

from zsgm.evaluate.classifiers.registry import register


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


@register("prototype", "cosine logits to prototypes generated from attributes (class-normalised ZSL)")
class PrototypeClassifier:
    @dataclass(frozen=True)
    class Options:
        """Defaults and their measurements: pipelines/configs/classifiers/prototype.yaml."""
        epochs: int
        lr: float
        weight_decay: float
        hidden: int             # the attribute -> prototype MLP's width
        scale: float            # cosine logit scale
        batch_size: int
        lr_step: int            # StepLR period (epochs), x0.1
        seen_scale: float       # fixed damping of the seen logits (the seed's 0.95; calibration does it now)
        min_steps: int          # at least this many optimiser steps, whatever the set size
        cuda_graphs: str | bool
        real_mix: float         # weight of a second net on real features only (0: one net)
        softmax_over: str       # 'rows': each net's softmax over the classes it has training rows of; 'all'

    def __init__(self, options: Options):
        self.options = o = options
        self.epochs, self.lr, self.wd, self.hidden = o.epochs, o.lr, o.weight_decay, o.hidden
        self.scale, self.batch_size, self.lr_step, self.seen_scale = o.scale, o.batch_size, o.lr_step, o.seen_scale
        self.min_steps, self.cuda_graphs, self.real_mix = o.min_steps, o.cuda_graphs, o.real_mix
        self.softmax_over = o.softmax_over

    def fit(self, x: torch.Tensor, y: torch.Tensor, n_classes: int, attributes: torch.Tensor,
            seen_mask: torch.Tensor | None = None):
        self.att = attributes.to(x.device).float()
        self.seen_mask = seen_mask
        self.net, self.losses = self._train(x, y)
        self.real_net = None
        if self.real_mix > 0 and seen_mask is not None:
            # A second net trained on the real (seen-class) rows only: the attribute -> prototype
            # map without synthetic features. Scores mix the two nets' logits, which (logits being
            # linear in the prototype) is one prototype per class, the weighted sum of the two:
            # synthetic features move the unseen prototypes from where the attributes alone put
            # them instead of replacing them. Without synthetic rows (model none) the second net
            # trains on the same rows from another initialisation, so that every configuration
            # gets the same two-net classifier. Measured: pipelines/configs/classifiers/prototype.yaml.
            real = seen_mask.to(x.device).bool()[y]
            if bool(real.any()):
                self.real_net, _ = self._train(x[real], y[real])
        return self

    def _train(self, x: torch.Tensor, y: torch.Tensor) -> tuple[PrototypeNet, list[float]]:
        net = PrototypeNet(self.att.shape[1], x.shape[1], self.hidden, self.scale).to(x.device)
        graphs = cuda_graphs_wanted(self.cuda_graphs, x.device, "prototype classifier")
        opt = adam(net.parameters(), lr=self.lr, weight_decay=self.wd, capturable=graphs, scheduled=graphs)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, self.lr_step), gamma=0.1)
        att = self.att
        if self.softmax_over == "rows":
            # A class without training rows (an unseen class when nothing synthesises it, and in
            # the real-only net) would only ever be a negative: the net would learn to put its
            # prototype away from every real feature, which is a seen-class bias. Its prototype
            # comes from its attributes through the MLP instead, as in class-normalised ZSL.
            present, y = torch.unique(y, return_inverse=True)  # y: the row's place among them
            att = att[present]
        losses = train_minibatch(net, lambda b: net(b, att), x, y, self.epochs,
                                 self.batch_size, opt, sched, self.min_steps, graphs, what="prototype classifier")
        return net, losses

    @torch.no_grad()
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x, self.att)
        if self.real_net is not None:
            logits = (1 - self.real_mix) * logits + self.real_mix * self.real_net(x, self.att)
        if self.seen_mask is not None and self.seen_scale != 1.0:
            factor = torch.where(self.seen_mask.to(x.device).bool(), self.seen_scale, 1.0)
            logits = logits * factor
        return torch.log_softmax(logits, dim=1)
