"""Shared network blocks: conditional MLP generator and critic, as in f-CLSWGAN."""
from __future__ import annotations

import torch
from torch import nn


def init_weights(m: nn.Module) -> None:
    # f-CLSWGAN's initialisation: N(0, 0.02) weights, zero bias.
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)


def mlp(sizes: list[int], slope: float = 0.2, out: nn.Module | None = None) -> nn.Sequential:
    """Linear layers with LeakyReLU between them and an optional output activation."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(slope))
    if out is not None:
        layers.append(out)
    net = nn.Sequential(*layers)
    net.apply(init_weights)
    return net


class ConditionalGenerator(nn.Module):
    """G(z, a): latent noise and class semantics → a feature (ReLU output: features are non-negative)."""

    def __init__(self, latent_dim: int, att_dim: int, feature_dim: int, hidden: int, slope: float = 0.2,
                 relu_out: bool = True):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp([latent_dim + att_dim, hidden, feature_dim], slope, nn.ReLU() if relu_out else None)

    def forward(self, z: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, att], dim=1))


class ConditionalCritic(nn.Module):
    """D(x, a) → ``out_dim`` values per sample (1 for a scalar critic)."""

    def __init__(self, feature_dim: int, att_dim: int, hidden: int, out_dim: int = 1, slope: float = 0.2):
        super().__init__()
        self.net = mlp([feature_dim + att_dim, hidden, out_dim], slope)

    def forward(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        out = self.net(torch.cat([x, att], dim=1))
        return out.squeeze(1) if out.shape[1] == 1 else out
