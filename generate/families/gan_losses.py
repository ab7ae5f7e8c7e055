"""The standard GAN losses over a scalar critic logit D(x, a), conditioned on attributes.

* ``mmgan`` — Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, eq. 1:
  D maximises log D(x) + log(1 − D(G(z))); G minimises log(1 − D(G(z))) (minimax).
* ``nsgan`` — same paper, §3: G maximises log D(G(z)) instead (non-saturating).
* ``lsgan`` — Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017,
  eq. 2 with a = 0, b = c = 1: D minimises ½(D(x) − 1)² + ½D(G(z))², G minimises ½(D(G(z)) − 1)².
* ``ransgan`` — Jolicoeur-Martineau, "The relativistic discriminator: a key element missing
  from standard GAN", ICLR 2019 (RaSGAN): with D̃(x_r) = C(x_r) − E C(x_f) and
  D̃(x_f) = C(x_f) − E C(x_r), D minimises −E log σ(D̃(x_r)) − E log(1 − σ(D̃(x_f))) and
  G the same with real and fake swapped.
* ``dragan`` — Kodali et al., "On Convergence and Stability of GANs", 2017: the
  non-saturating GAN plus λ(‖∇D(x̂)‖ − 1)² at x̂ perturbed around real samples (the
  engine's penalty kind ``dragan``).

D(x) = σ(logit), so log D = −softplus(−logit) and log(1 − D) = −softplus(logit): every
loss below is written in softplus form, which stays finite for any logit.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from zsgm.generate.family import Family
from zsgm.generate.registry import register


# ---------------------------------------------------------------- losses on logits
def bce_critic(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """−E log D(x_r) − E log(1 − D(x_f))."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def minimax_generator(d_fake: torch.Tensor) -> torch.Tensor:
    """E log(1 − D(x_f)), minimised."""
    return -F.softplus(d_fake).mean()


def nonsaturating_generator(d_fake: torch.Tensor) -> torch.Tensor:
    """−E log D(x_f)."""
    return F.softplus(-d_fake).mean()


def least_squares_critic(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (d_real - 1).pow(2).mean() + 0.5 * d_fake.pow(2).mean()


def least_squares_generator(d_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (d_fake - 1).pow(2).mean()


def relativistic_average(d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D̃(x_r), D̃(x_f)): each logit relative to the other side's mean."""
    return d_real - d_fake.mean(), d_fake - d_real.mean()


def relativistic_critic(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    r, f = relativistic_average(d_real, d_fake)
    return bce_critic(r, f)


def relativistic_generator(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    r, f = relativistic_average(d_real, d_fake)
    return bce_critic(f, r)  # the critic's loss with the roles of real and fake swapped


# ---------------------------------------------------------------- the shared base
class LogitGAN(Family):
    """A scalar critic logit; subclasses give the critic and generator losses as functions
    of the real and fake logits (``d_real`` is None for the generator unless
    ``generator_needs_real``)."""
    generator_needs_real = False

    def d_loss(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, d_real: torch.Tensor | None, d_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def critic_loss(self, real, fake, att):
        d_real, d_fake = self.critic_score(real, att), self.critic_score(fake, att)
        return self.d_loss(d_real, d_fake), {"d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}

    def generator_loss(self, real, fake, att):
        d_real = self.critic_score(real, att).detach() if self.generator_needs_real else None
        return self.g_loss(d_real, self.critic_score(fake, att)), {}


@register("mmgan", "minimax GAN: G minimises log(1 - D(G(z))) (Goodfellow et al. 2014)")
class MinimaxGAN(LogitGAN):
    def d_loss(self, d_real, d_fake):
        return bce_critic(d_real, d_fake)

    def g_loss(self, d_real, d_fake):
        return minimax_generator(d_fake)


@register("nsgan", "non-saturating GAN: G minimises -log D(G(z)) (Goodfellow et al. 2014)")
class NonSaturatingGAN(MinimaxGAN):
    def g_loss(self, d_real, d_fake):
        return nonsaturating_generator(d_fake)


@register("dragan", "DRAGAN: non-saturating GAN + gradient penalty around real samples (Kodali et al. 2017)")
class DRAGAN(NonSaturatingGAN):
    penalty = "dragan"


@register("lsgan", "least-squares GAN, a=0 b=c=1 (Mao et al. 2017)")
class LeastSquaresGAN(LogitGAN):
    def d_loss(self, d_real, d_fake):
        return least_squares_critic(d_real, d_fake)

    def g_loss(self, d_real, d_fake):
        return least_squares_generator(d_fake)


@register("ransgan", "relativistic average non-saturating GAN, RaSGAN (Jolicoeur-Martineau 2019)")
class RelativisticAverageGAN(LogitGAN):
    generator_needs_real = True

    def d_loss(self, d_real, d_fake):
        return relativistic_critic(d_real, d_fake)

    def g_loss(self, d_real, d_fake):
        return relativistic_generator(d_real, d_fake)
