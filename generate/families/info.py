"""InfoGAN: Chen et al., "InfoGAN: Interpretable Representation Learning by Information
Maximizing Generative Adversarial Nets", NeurIPS 2016 (eqs. 4–6).

The generator's input is [z, c, a]: noise z, a categorical code c_cat (one-hot over
``info_categories`` values) and continuous codes c_cont ~ U(−1, 1) (``info_continuous``),
plus the class attributes. The critic shares its hidden layer between the adversarial
logit D and the auxiliary head Q(c | x), which outputs categorical logits and the means of
a fixed-variance Gaussian over c_cont. The variational lower bound of the mutual
information I(c; G(z, c)) is, up to the constant H(c),

    L_I = E[log Q(c | G(z, c))] = −CE(Q_cat, c_cat) − ½‖Q_μ − c_cont‖²  (+ const)

and both the generator and Q maximise it with weight λ (``info_weight``), on top of the
non-saturating GAN loss (the paper's choice). ``info_loss`` below is −L_I (minimised).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zsgm.generate.config import GeneratorConfig
from zsgm.generate.families.gan_losses import bce_critic, nonsaturating_generator
from zsgm.generate.family import Family
from zsgm.generate.nets import ConditionalCritic
from zsgm.generate.registry import register


def info_loss(cat_logits: torch.Tensor, cat_codes: torch.Tensor, cont_mean: torch.Tensor,
              cont_codes: torch.Tensor, cont_weight: float = 1.0) -> torch.Tensor:
    """−L_I: cross-entropy of the categorical code plus the unit-variance Gaussian NLL
    (without its constant) of the continuous codes, averaged over the batch."""
    loss = F.cross_entropy(cat_logits, cat_codes) if cat_logits.shape[1] else cat_logits.new_zeros(())
    if cont_codes.shape[1]:
        loss = loss + cont_weight * 0.5 * (cont_mean - cont_codes).pow(2).sum(1).mean()
    return loss


@register("info", "InfoGAN: categorical + continuous latent codes, mutual-information head Q (Chen et al. 2016)")
class InfoGAN(Family):
    graph_safe = False  # F.one_hot checks its codes on the host: no CUDA graph capture (seen on an H200)

    @dataclass(frozen=True)
    class Params:
        info_categories: int    # one categorical code with this many values
        info_continuous: int    # continuous codes ~ U(-1, 1)
        info_weight: float      # lambda on the MI lower bound
        info_continuous_weight: float

    def __init__(self, feature_dim: int, att_dim: int, config: GeneratorConfig):
        params = config.family
        self.n_cat, self.n_cont = params.info_categories, params.info_continuous
        self.noise_dim = config.latent_dim or att_dim
        super().__init__(feature_dim, att_dim,
                         dataclasses.replace(config, latent_dim=self.noise_dim + self.n_cat + self.n_cont))
        self._codes: tuple[torch.Tensor, torch.Tensor] | None = None

    def build_critic(self, hidden):
        # Output 0 is D's logit; the rest is Q: categorical logits, then continuous means.
        return ConditionalCritic(self.feature_dim, self.att_dim, hidden, out_dim=1 + self.n_cat + self.n_cont,
                                 slope=self.config.slope)

    def latent(self, n, device, gen=None):
        z = torch.randn(n, self.noise_dim, device=device, generator=gen)
        cat = torch.randint(0, max(self.n_cat, 1), (n,), device=device, generator=gen)
        cont = torch.rand(n, self.n_cont, device=device, generator=gen) * 2 - 1
        # The codes of the latest batch, for the MI term of the loss that follows the sampling.
        self._codes = (cat, cont)
        return torch.cat([z, F.one_hot(cat, self.n_cat).float() if self.n_cat else z[:, :0], cont], 1)

    def _heads(self, x, att):
        out = self.critic(x, att)
        return out[:, 0], out[:, 1:1 + self.n_cat], out[:, 1 + self.n_cat:]

    def critic_score(self, x, att):
        return self._heads(x, att)[0]

    def _mi(self, cat_logits, cont_mean) -> torch.Tensor:
        cat, cont = self._codes
        return info_loss(cat_logits, cat, cont_mean, cont, self.params.info_continuous_weight)

    def critic_loss(self, real, fake, att):
        d_real = self.critic_score(real, att)
        d_fake, cat_logits, cont_mean = self._heads(fake, att)
        mi = self._mi(cat_logits, cont_mean)
        loss = bce_critic(d_real, d_fake) + self.params.info_weight * mi
        return loss, {"mi": mi.detach()}

    def generator_loss(self, real, fake, att):
        d_fake, cat_logits, cont_mean = self._heads(fake, att)
        mi = self._mi(cat_logits, cont_mean)
        return nonsaturating_generator(d_fake) + self.params.info_weight * mi, {"mi": float(mi.detach())}
