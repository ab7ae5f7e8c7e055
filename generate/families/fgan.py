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

``formulation: study`` (hp) trains instead with the losses of the seed study's code
(GAN/fGAN.py of Programmergg/Zero-shot-Generative-Models), so that its models table can be
regenerated as it was run. With v_r, v_f the critic's raw outputs, the critic minimises
−(mean A(v_r) − mean B(v_f)) + the WGAN-GP penalty, and the generator minimises
−mean B(v_f) (the saturating direction of the same bound) plus the study's L2 penalty on
the generator's weights (``weight_reg``, 4e-4 there):

| divergence        | A(v_r), as written     | B(v_f), as written       | computed as      |
|-------------------|------------------------|--------------------------|------------------|
| total variation   | ½tanh v                | ½tanh v                  | same             |
| forward KL        | v                      | exp(v − 1)               | same             |
| reverse KL        | −exp(v)                | −1 − v                   | same             |
| Pearson χ²        | v                      | ¼v² + v                  | same             |
| squared Hellinger | 1 − exp(v)             | (1 − exp(v)) / exp(v)    | −expm1(v); expm1(−v) |
| Jensen–Shannon    | 2 − (1 + exp(−v))      | −(2 − exp(v))            | −expm1(−v); exp(v) − 2 |

Apart from total variation (the same losses; only the penalties differ) these are not
the paper's (its Jensen–Shannon bound with the alternative generator loss has the
gradients of the non-saturating GAN, ``nsgan``; the study's has not). The
"computed as" forms are the same functions without the inf/inf or 1 − (1 + ε) that the
written ones meet for large |v|.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from zsgm.core.errors import ZsgmError
from zsgm.generate.config import GeneratorConfig
from zsgm.generate.families.gan_losses import LogitGAN
from zsgm.generate.registry import register

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


# The seed study's (A, B) per divergence: critic −(mean A(v_r) − mean B(v_f)), generator −mean B(v_f).
STUDY_TERMS: dict[str, tuple[Fn, Fn]] = {
    "total_variation": (lambda v: 0.5 * torch.tanh(v), lambda v: 0.5 * torch.tanh(v)),
    "forward_kl": (lambda v: v, lambda v: torch.exp(v - 1)),
    "reverse_kl": (lambda v: -torch.exp(v), lambda v: -1 - v),
    "pearson": (lambda v: v, lambda v: 0.25 * v * v + v),
    "hellinger": (lambda v: -torch.expm1(v), lambda v: torch.expm1(-v)),
    "jensen_shannon": (lambda v: -torch.expm1(-v), lambda v: torch.exp(v) - 2),
}
FORMULATIONS = ("paper", "study")
STUDY_WEIGHT_REG = 4e-4   # the study's REG_W_LAMBDA: sum of squared generator weights, times this


def study_critic_loss(name: str, v_real: torch.Tensor, v_fake: torch.Tensor) -> torch.Tensor:
    """The seed study's critic loss for divergence ``name`` (without its gradient penalty)."""
    a, b = STUDY_TERMS[name]
    return -(a(v_real).mean() - b(v_fake).mean())


def study_generator_loss(name: str, v_fake: torch.Tensor) -> torch.Tensor:
    """The seed study's generator loss for divergence ``name`` (without its weight penalty)."""
    return -STUDY_TERMS[name][1](v_fake).mean()


def variational_bound(div: Divergence, v_real: torch.Tensor, v_fake: torch.Tensor) -> torch.Tensor:
    """F = E_P[g_f(v_r)] − E_Q[f*(g_f(v_f))], the critic's objective (maximised)."""
    return div.activation(v_real).mean() - div.conj_act(v_fake).mean()


class FGAN(LogitGAN):
    """``hp.formulation``: ``paper`` (Nowozin et al.'s bound, the generator's alternative
    objective, no penalty) or ``study`` (the seed study's losses, WGAN-GP penalty on the
    critic, L2 on the generator's weights)."""
    divergence: Divergence

    @dataclass(frozen=True)
    class Params:
        formulation: str            # paper | study
        weight_reg: float | None    # L2 on the generator's weights; None: the study's under study, else 0

    def __init__(self, feature_dim: int, att_dim: int, config: GeneratorConfig):
        super().__init__(feature_dim, att_dim, config)
        self.formulation = self.params.formulation
        if self.formulation not in FORMULATIONS:
            raise ZsgmError(f"{self.name}: formulation must be one of {', '.join(FORMULATIONS)}, got "
                            f"'{self.formulation}' (--set formulation=study runs the seed study's losses)")
        reg = self.params.weight_reg
        self.weight_reg = float(reg) if reg is not None else (STUDY_WEIGHT_REG if self.study else 0.0)
        if self.study:
            self.penalty = "gp"  # the study adds the WGAN-GP penalty to every f-GAN critic loss

    @property
    def study(self) -> bool:
        return self.formulation == "study"

    def d_loss(self, d_real, d_fake):
        if self.study:
            return study_critic_loss(self.divergence.name, d_real, d_fake)
        return -variational_bound(self.divergence, d_real, d_fake)

    def g_loss(self, d_real, d_fake):
        if self.study:
            return study_generator_loss(self.divergence.name, d_fake)
        return -self.divergence.activation(d_fake).mean()

    def generator_loss(self, real, fake, att):
        loss, logs = super().generator_loss(real, fake, att)
        if self.weight_reg:
            reg = sum(p.pow(2).sum() for n, p in self.generator.named_parameters() if n.endswith("weight"))
            loss = loss + self.weight_reg * reg
            logs["weight_reg"] = reg.detach()
        return loss, logs


def _register_all() -> None:
    # One class per row of the table: the divergence is the only difference.
    for div in DIVERGENCES.values():
        cls = type(f"FGAN_{div.name}", (FGAN,), {"divergence": div, "__doc__": f"f-GAN, {div.title}."})
        register(f"fgan_{div.name}", f"f-GAN, {div.title} divergence (Nowozin et al. 2016)")(cls)


_register_all()
