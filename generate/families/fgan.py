"""f-GAN: Nowozin, Cseke & Tomioka, "f-GAN: Training Generative Neural Samplers using
Variational Divergence Minimization", NeurIPS 2016.

For a divergence D_f the critic's raw output v is mapped by the output activation g_f
into the domain of the Fenchel conjugate f*, T = g_f(v), and the variational bound

    F(T) = E_P[g_f(v(x_r))] − E_Q[f*(g_f(v(x_f)))]                      (eq. 6)

is maximised by the critic. The generator uses the paper's alternative (§3.2, as in the
non-saturating GAN): it maximises E_Q[g_f(v(x_f))]. Table 2 (with the activations of
Table 6), one row per divergence:

| divergence            | g_f(v)                 | f*(t)                | f*(g_f(v)), as computed |
|-----------------------|------------------------|----------------------|-------------------------|
| total variation       | ½ tanh(v)              | t                    | ½ tanh(v)               |
| forward Kullback–Leibler | v                   | exp(t − 1)           | exp(v − 1)              |
| reverse Kullback–Leibler | −exp(−v)            | −1 − log(−t)         | v − 1                   |
| Pearson χ²            | v                      | ¼t² + t              | ¼v² + v                 |
| squared Hellinger     | 1 − exp(−v)            | t / (1 − t)          | exp(v) − 1              |
| Jensen–Shannon        | log 2 − log(1 + e^(−v)) | −log(2 − exp(t))    | softplus(v) − log 2     |

The last column is the same function written so that it never forms 1 − t or
2 − exp(t) (which round to 0 when the critic is confident); tests check it against the
composition of the first two.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from generate.families.gan_losses import LogitGAN
from generate.registry import register

Fn = Callable[[torch.Tensor], torch.Tensor]
LOG2 = math.log(2.0)


@dataclass(frozen=True)
class Divergence:
    name: str
    title: str
    activation: Fn   # g_f
    conjugate: Fn    # f*
    conj_act: Fn     # f*(g_f(v)), numerically stable


DIVERGENCES: dict[str, Divergence] = {d.name: d for d in (
    Divergence("total_variation", "total variation", lambda v: 0.5 * torch.tanh(v), lambda t: t,
               lambda v: 0.5 * torch.tanh(v)),
    Divergence("forward_kl", "forward Kullback-Leibler", lambda v: v, lambda t: torch.exp(t - 1),
               lambda v: torch.exp(v - 1)),
    Divergence("reverse_kl", "reverse Kullback-Leibler", lambda v: -torch.exp(-v), lambda t: -1 - torch.log(-t),
               lambda v: v - 1),
    Divergence("pearson", "Pearson chi-squared", lambda v: v, lambda t: 0.25 * t * t + t,
               lambda v: 0.25 * v * v + v),
    Divergence("hellinger", "squared Hellinger", lambda v: 1 - torch.exp(-v), lambda t: t / (1 - t),
               lambda v: torch.expm1(v)),
    Divergence("jensen_shannon", "Jensen-Shannon", lambda v: LOG2 - F.softplus(-v),
               lambda t: -torch.log(2 - torch.exp(t)), lambda v: F.softplus(v) - LOG2),
)}


def variational_bound(div: Divergence, v_real: torch.Tensor, v_fake: torch.Tensor) -> torch.Tensor:
    """F = E_P[g_f(v_r)] − E_Q[f*(g_f(v_f))], the critic's objective (maximised)."""
    return div.activation(v_real).mean() - div.conj_act(v_fake).mean()


class FGAN(LogitGAN):
    divergence: Divergence

    def d_loss(self, d_real, d_fake):
        return -variational_bound(self.divergence, d_real, d_fake)

    def g_loss(self, d_real, d_fake):
        return -self.divergence.activation(d_fake).mean()


def _register_all() -> None:
    # One class per row of the table: the divergence is the only difference.
    for div in DIVERGENCES.values():
        cls = type(f"FGAN_{div.name}", (FGAN,), {"divergence": div, "__doc__": f"f-GAN, {div.title}."})
        register(f"fgan_{div.name}", f"f-GAN, {div.title} divergence (Nowozin et al. 2016)")(cls)


_register_all()
