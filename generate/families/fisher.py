"""Fisher GAN: Mroueh & Sercu, "Fisher GAN", NeurIPS 2017 (eq. 7 and Algorithm 1).

The Fisher IPM constrains the critic's second moment instead of its gradient. With
Ê(f) = E_P f(x_r) − E_Q f(x_f) and Ω̂(f) = ½(E_P f(x_r)² + E_Q f(x_f)²), the critic
maximises the augmented Lagrangian

    L_F = Ê + λ (1 − Ω̂) − (ρ/2)(1 − Ω̂)²

and the Lagrange multiplier follows λ ← λ − ρ ∂L_F/∂λ = λ − ρ (1 − Ω̂) after each critic
step (``fisher_rho``; λ is a buffer, so checkpoints keep it). The generator minimises −Ê,
i.e. maximises E_Q f(x_f).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from zsgm.generate.config import GeneratorConfig
from zsgm.generate.family import Family
from zsgm.generate.registry import register


def second_moment_constraint(f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    """1 − Ω̂ with Ω̂ = ½(E f(x_r)² + E f(x_f)²)."""
    return 1 - 0.5 * (f_real.pow(2).mean() + f_fake.pow(2).mean())


def augmented_lagrangian(f_real: torch.Tensor, f_fake: torch.Tensor, lam: float | torch.Tensor,
                         rho: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_F, 1 − Ω̂)."""
    ipm = f_real.mean() - f_fake.mean()
    constraint = second_moment_constraint(f_real, f_fake)
    return ipm + lam * constraint - 0.5 * rho * constraint.pow(2), constraint


@register("fisher", "Fisher GAN: IPM with augmented-Lagrangian second-moment constraint (Mroueh & Sercu 2017)")
class FisherGAN(Family):
    @dataclass(frozen=True)
    class Params:
        fisher_rho: float    # penalty weight and step of the Lagrange multiplier

    def __init__(self, feature_dim: int, att_dim: int, config: GeneratorConfig):
        super().__init__(feature_dim, att_dim, config)
        self.register_buffer("lam", torch.tensor(0.0))

    @property
    def rho(self) -> float:
        return self.params.fisher_rho

    def critic_loss(self, real, fake, att):
        f_real, f_fake = self.critic(real, att), self.critic(fake, att)
        lagrangian, constraint = augmented_lagrangian(f_real, f_fake, self.lam, self.rho)
        return -lagrangian, {"ipm": (f_real.mean() - f_fake.mean()).detach(),
                             "constraint": constraint.detach(), "lambda": self.lam.detach().clone()}

    def after_critic_step(self, logs):
        self.lam.sub_(self.rho * logs["constraint"])

    def generator_loss(self, real, fake, att):
        return -self.critic(fake, att).mean(), {}
