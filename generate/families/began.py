"""BEGAN: Berthelot, Schumm & Metz, "BEGAN: Boundary Equilibrium Generative Adversarial
Networks", 2017 (eqs. 3–4).

The discriminator is a conditional autoencoder; L(x) = mean |x − D(x)| is its
reconstruction loss (η = 1). With the equilibrium variable k_t ∈ [0, 1]:

    L_D = L(x_r) − k_t · L(x_f)          L_G = L(x_f)
    k_{t+1} = clip(k_t + λ_k (γ L(x_r) − L(x_f)), 0, 1)

γ (``began_gamma``) is the diversity ratio E L(x_f) / E L(x_r) that training holds, λ_k
(``began_lambda_k``) the proportional gain. k_t is a buffer, so checkpoints keep it;
M = L(x_r) + |γ L(x_r) − L(x_f)| is logged as the convergence measure.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from zsgm.generate.config import GeneratorConfig
from zsgm.generate.family import Family
from zsgm.generate.nets import mlp
from zsgm.generate.registry import register


class ConditionalAutoencoder(nn.Module):
    """D(x, a): encode [x, a] to a ``code_dim`` bottleneck, decode [code, a] back to x."""

    def __init__(self, feature_dim: int, att_dim: int, hidden: int, code_dim: int, slope: float = 0.2):
        super().__init__()
        self.enc = mlp([feature_dim + att_dim, hidden, code_dim], slope)
        self.dec = mlp([code_dim + att_dim, hidden, feature_dim], slope)

    def forward(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        return self.dec(torch.cat([self.enc(torch.cat([x, att], 1)), att], 1))


def equilibrium_update(k, loss_real, loss_fake, gamma: float, lambda_k: float):
    """k_{t+1} = clip(k_t + λ_k (γ L(x_r) − L(x_f)), 0, 1), on floats or (device) tensors."""
    k_next = k + lambda_k * (gamma * loss_real - loss_fake)
    return k_next.clamp(0.0, 1.0) if isinstance(k_next, torch.Tensor) else min(max(k_next, 0.0), 1.0)


@register("began", "BEGAN: autoencoder critic with equilibrium k_t (Berthelot et al. 2017)")
class BEGAN(Family):
    @dataclass(frozen=True)
    class Params:
        began_gamma: float      # diversity ratio E L(fake) / E L(real)
        began_lambda_k: float
        began_k0: float
        began_code_dim: int     # the autoencoder's bottleneck

    def __init__(self, feature_dim: int, att_dim: int, config: GeneratorConfig):
        super().__init__(feature_dim, att_dim, config)
        self.register_buffer("k", torch.tensor(float(self.params.began_k0)))

    def build_critic(self, hidden):
        return ConditionalAutoencoder(self.feature_dim, self.att_dim, hidden, self.params.began_code_dim,
                                      self.config.slope)

    def recon(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        """L(x) per sample."""
        return (x - self.critic(x, att)).abs().mean(1)

    critic_score = recon

    def critic_loss(self, real, fake, att):
        l_real, l_fake = self.recon(real, att).mean(), self.recon(fake, att).mean()
        gamma = self.params.began_gamma
        measure = l_real + (gamma * l_real - l_fake).abs()
        # logs stay on the device (no host sync per step), so the update below is device work too
        return l_real - self.k * l_fake, {"recon_real": l_real.detach(), "recon_fake": l_fake.detach(),
                                          "measure": measure.detach(), "k": self.k.detach().clone()}

    def after_critic_step(self, logs):
        self.k.copy_(equilibrium_update(self.k, logs["recon_real"], logs["recon_fake"],
                                        self.params.began_gamma, self.params.began_lambda_k))

    def generator_loss(self, real, fake, att):
        return self.recon(fake, att).mean(), {}
