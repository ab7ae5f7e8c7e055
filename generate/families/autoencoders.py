"""Encoder–decoder families, conditioned on class attributes: encoder E(x, a) → code,
decoder = the shared ``ConditionalGenerator`` G(z, a) → feature. No critic: the engine
skips critic steps (``adversarial = False``) and its generator optimiser steps encoder and
decoder together. The reconstruction term is the squared error summed over feature
dimensions, averaged over the batch. Synthesis decodes [z, a] with z from the prior.

* ``ae`` — a deterministic conditional autoencoder (Hinton & Salakhutdinov, "Reducing the
  Dimensionality of Data with Neural Networks", Science 2006). Its codes have no prior,
  so synthesis draws z from a diagonal Gaussian fitted to the training codes (running
  mean and std, kept as buffers), the ex-post density estimate of Ghosh et al., "From
  Variational to Deterministic Autoencoders", ICLR 2020.
* ``vae`` — conditional VAE (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR
  2014; Sohn et al., "Learning Structured Output Representation using Deep Conditional
  Generative Models", NeurIPS 2015): q(z|x,a) = N(μ, diag σ²) by reparameterisation,
  loss = reconstruction + β·KL(q ‖ N(0, I)) with
  KL = −½ Σ (1 + log σ² − μ² − σ²) (``kl_weight`` = β).
* ``bir_vae`` — Bounded-Information-Rate VAE (Braithwaite & Kleijn, "Bounded Information
  Rate Variational Autoencoders", 2018): the posterior variance is fixed,
  z = μ(x, a) + σ·ε with σ = ``bir_sigma``, which bounds the information rate by
  I(x; z) ≤ (d/2)·log(1 + 1/σ²) nats; the aggregate posterior q(z) is pulled to N(0, I)
  by the maximum mean discrepancy (``mmd_weight``):
  MMD² = E k(z, z') + E k(p, p') − 2 E k(z, p), Gaussian kernel k(a, b) = exp(−‖a − b‖²/(2d))
  (the biased, V-statistic estimate over a batch and as many prior samples).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from zsgm.generate.config import GeneratorConfig
from zsgm.generate.family import Family
from zsgm.generate.nets import mlp
from zsgm.generate.registry import register


# ---------------------------------------------------------------- losses
def reconstruction(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (x_hat - x).pow(2).sum(1).mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag e^logvar) ‖ N(0, I)), summed over dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """exp(−‖a_i − b_j‖² / (2d)) for every pair."""
    return torch.exp(-torch.cdist(a, b).pow(2) / (2 * a.shape[1]))


def mmd(z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Biased MMD² between the samples ``z`` and ``p``."""
    return gaussian_kernel(z, z).mean() + gaussian_kernel(p, p).mean() - 2 * gaussian_kernel(z, p).mean()


# ---------------------------------------------------------------- families
class EncoderDecoder(Family):
    adversarial = False
    code_factor = 1  # encoder outputs per latent dimension (2 for μ and log σ²)

    def __init__(self, feature_dim: int, att_dim: int, config: GeneratorConfig):
        super().__init__(feature_dim, att_dim, config)
        self.encoder = mlp([feature_dim + att_dim, config.hidden, self.code_factor * self.latent_dim], config.slope)

    def generator_parameters(self):
        return list(self.generator.parameters()) + list(self.encoder.parameters())

    def encode(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        return self.encoder(torch.cat([x, att], 1))

    def code(self, x: torch.Tensor, att: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(z to decode, the regulariser of the code, logs)."""
        raise NotImplementedError

    def generator_loss(self, real, fake, att):
        # ``fake`` (decoded from the prior) only serves the engine's classification
        # regulariser; the family's own loss is about reconstructing ``real``.
        z, reg, logs = self.code(real, att)
        rec = reconstruction(self.generator(z, att), real)
        return rec + reg, {"recon": rec.detach(), **logs}


@register("ae", "conditional autoencoder; synthesis decodes codes from a Gaussian fitted to training codes")
class Autoencoder(EncoderDecoder):
    @dataclass(frozen=True)
    class Params:
        ae_momentum: float   # running mean/std of the training codes

    def __init__(self, feature_dim: int, att_dim: int, config: GeneratorConfig):
        super().__init__(feature_dim, att_dim, config)
        self.register_buffer("code_mean", torch.zeros(self.latent_dim))
        self.register_buffer("code_std", torch.ones(self.latent_dim))

    def code(self, x, att):
        z = self.encode(x, att)
        with torch.no_grad():  # running estimate of the code distribution, for synthesis
            m = self.params.ae_momentum
            self.code_mean.lerp_(z.mean(0), m)
            self.code_std.lerp_(z.std(0) if z.shape[0] > 1 else self.code_std, m)
        return z, z.new_zeros(()), {}

    def latent(self, n, device, gen=None):
        return self.code_mean + self.code_std * torch.randn(n, self.latent_dim, device=device, generator=gen)


@register("vae", "conditional VAE: reparameterised Gaussian posterior, KL to N(0,I) (Kingma & Welling 2014)")
class VAE(EncoderDecoder):
    code_factor = 2

    @dataclass(frozen=True)
    class Params:
        kl_weight: float     # beta on KL(q(z|x,a) || N(0,I))

    def code(self, x, att):
        mu, logvar = self.encode(x, att).chunk(2, dim=1)
        logvar = logvar.clamp(-10, 10)  # keeps exp(logvar) finite early in training
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        kl = gaussian_kl(mu, logvar)
        return z, self.params.kl_weight * kl, {"kl": kl.detach()}


@register("bir_vae", "Bounded-Information-Rate VAE: fixed posterior variance, MMD to N(0,I) (Braithwaite & Kleijn 2018)")
class BIRVAE(EncoderDecoder):
    @dataclass(frozen=True)
    class Params:
        bir_sigma: float     # fixed posterior std
        mmd_weight: float

    def code(self, x, att):
        mu = self.encode(x, att)
        z = mu + self.params.bir_sigma * torch.randn_like(mu)
        d = mmd(z, torch.randn_like(z))
        return z, self.params.mmd_weight * d, {"mmd": d.detach()}
