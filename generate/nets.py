"""Shared network blocks: conditional MLP generator and critic, as in f-CLSWGAN."""
from __future__ import annotations

import torch
from torch import nn


def init_weights(m: nn.Module) -> None:
    # f-CLSWGAN's initialisation: N(0, 0.02) weights, zero bias.
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)


def mlp(sizes: list[int], slope: float = 0.2) -> nn.Sequential:
    """Linear layers with LeakyReLU between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(slope))
    net = nn.Sequential(*layers)
    net.apply(init_weights)
    return net


def with_bias(att: torch.Tensor) -> torch.Tensor:
    """Attributes with a constant 1 appended: the input of a linear map with a bias."""
    return torch.cat([att, torch.ones(att.shape[0], 1, device=att.device, dtype=att.dtype)], 1)


def ridge_map(features: torch.Tensor, att: torch.Tensor, lam: float) -> torch.Tensor:
    """The closed-form ridge regression [A + 1, D] from class attributes (rows of ``att``, one per
    feature row) to class-mean features: one equation per class, the bias not shrunk."""
    uniq, inv = torch.unique(att, dim=0, return_inverse=True)
    means = torch.zeros(len(uniq), features.shape[1], device=features.device).index_add_(0, inv, features)
    means /= torch.bincount(inv, minlength=len(uniq)).unsqueeze(1).float()
    a = with_bias(uniq)
    eye = torch.eye(a.shape[1], device=a.device)
    eye[-1, -1] = 0
    return torch.linalg.solve(a.T @ a + lam * eye, a.T @ means)


class ConditionalGenerator(nn.Module):
    """G(z, a): latent noise and class semantics → a feature (ReLU output: features are non-negative).

    With ``prior`` the network learns a residual around a linear map of the attributes (the
    ``prior`` buffer, which the engine fits in closed form before training): G(z, a) =
    ReLU(W·[a, 1] + net(z, a)). Meant for few training classes, where ridge's closed-form class
    means beat what the generators learn; the network adds the spread and what is not linear."""

    def __init__(self, latent_dim: int, att_dim: int, feature_dim: int, hidden: int, slope: float = 0.2,
                 relu_out: bool = True, prior: bool = False):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp([latent_dim + att_dim, hidden, feature_dim], slope)
        self.out = nn.ReLU() if relu_out else nn.Identity()
        self.register_buffer("prior", torch.zeros(att_dim + 1, feature_dim) if prior else None)

    def forward(self, z: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        h = self.net(torch.cat([z, att], dim=1))
        if self.prior is not None:
            h = h + with_bias(att) @ self.prior.to(h.dtype)
        return self.out(h)


class ConditionalCritic(nn.Module):
    """D(x, a) → ``out_dim`` values per sample (1 for a scalar critic)."""

    def __init__(self, feature_dim: int, att_dim: int, hidden: int, out_dim: int = 1, slope: float = 0.2):
        super().__init__()
        self.net = mlp([feature_dim + att_dim, hidden, out_dim], slope)

    def forward(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        out = self.net(torch.cat([x, att], dim=1))
        return out.squeeze(1) if out.shape[1] == 1 else out
