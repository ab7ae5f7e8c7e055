"""WGAN-GP with the f-CLSWGAN classification regulariser.

Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017 (gradient penalty);
Xian et al., "Feature Generating Networks for Zero-Shot Learning", CVPR 2018 (f-CLSWGAN:
conditional WGAN-GP on CNN features plus the cross-entropy of a pre-trained seen-class
classifier on generated features — applied by the engine through ``cls_weight``).
"""
from __future__ import annotations

import torch

from zsgm.generate.family import Family
from zsgm.generate.registry import register


@register("wgan", "WGAN-GP + classification loss (f-CLSWGAN, Xian et al. 2018)")
class WGAN(Family):
    penalty = "gp"

    def critic_loss(self, real, fake, att):
        # One critic call over [real; fake] (the critic is row-wise, so this equals two calls).
        d_real, d_fake = self.critic(torch.cat([real, fake]), torch.cat([att, att])).chunk(2)
        d_real, d_fake = d_real.mean(), d_fake.mean()
        # Logs stay detached tensors: the engine reads them once per epoch (no per-step sync).
        return d_fake - d_real, {"wasserstein": (d_real - d_fake).detach()}

    def generator_loss(self, real, fake, att):
        return -self.critic(fake, att).mean(), {}
