"""CramérGAN: Bellemare et al., "The Cramer Distance as a Solution to Biased Wasserstein
Gradients", 2017 (Algorithm 1).

The critic is a map h into R^k. With two independent generated samples x_g, x'_g:
  f(x) = ‖h(x) − h(x'_g)‖ − ‖h(x)‖                       (critic surrogate)
  critic maximises f(x_r) − f(x_g), with the gradient penalty taken of f;
  generator minimises ‖h(x_r) − h(x_g)‖ + ‖h(x_r) − h(x'_g)‖ − ‖h(x_g) − h(x'_g)‖
(the energy distance, whose sample gradients are unbiased).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from zsgm.generate.family import Family
from zsgm.generate.nets import ConditionalCritic
from zsgm.generate.registry import register


def l2(x: torch.Tensor) -> torch.Tensor:
    # A tiny floor keeps the gradient of the norm finite at 0.
    return (x.pow(2).sum(dim=1) + 1e-12).sqrt()


@register("cramer", "CramérGAN: energy-distance critic in R^k (Bellemare et al. 2017)")
class Cramer(Family):
    penalty = "gp"

    @dataclass(frozen=True)
    class Params:
        critic_dim: int      # the critic maps into R^critic_dim

    def build_critic(self, hidden: int):
        return ConditionalCritic(self.feature_dim, self.att_dim, hidden, out_dim=self.params.critic_dim,
                                 slope=self.config.slope)

    def surrogate(self, x: torch.Tensor, h_other: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        hx = self.critic(x, att)
        return l2(hx - h_other) - l2(hx)

    def critic_loss(self, real, fake, att):
        with torch.no_grad():
            self._fake2 = self.sample(att)
        # One critic call over [real; fake; fake2] (row-wise critic: equal to three calls);
        # h(fake2) is kept for the penalty, which needs the very same value and graph.
        hr, hg, h2 = self.critic(torch.cat([real, fake, self._fake2]), torch.cat([att, att, att])).chunk(3)
        self._h2 = h2
        gap = (l2(hr - h2) - l2(hr)).mean() - (l2(hg - h2) - l2(hg)).mean()
        return -gap, {"surrogate": gap.detach()}

    def penalty_score(self, fake, att):
        h2 = self._h2  # computed in critic_loss of this very step; no second critic pass
        return lambda x: self.surrogate(x, h2, att)

    def generator_loss(self, real, fake, att):
        fake2 = self.sample(att)
        hr, hg, hg2 = self.critic(torch.cat([real, fake, fake2]), torch.cat([att, att, att])).chunk(3)
        energy = l2(hr - hg).mean() + l2(hr - hg2).mean() - l2(hg - hg2).mean()
        return energy, {"energy": energy.detach()}
