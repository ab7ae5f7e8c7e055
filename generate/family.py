"""The base of every generative family: its networks and its losses, nothing else.

The engine (``generate/engine.py``) owns the loop: batching, critic iterations,
gradient penalties, the classification regulariser, attribute noise, checkpoints,
seeding and timing. A family only says

* which networks it has (``generator`` always; ``critic`` for adversarial families,
  ``encoder`` for encoder–decoder ones) and which parameters each optimiser steps;
* ``critic_loss`` (adversarial families) and ``generator_loss``;
* optionally a ``penalty`` kind the engine applies to ``critic_score``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from zsgm.generate.config import GeneratorConfig
from zsgm.generate.nets import ConditionalCritic, ConditionalGenerator

Logs = dict[str, "torch.Tensor | float"]  # detached tensors: a float() per step syncs the GPU


@dataclass(frozen=True)
class NoParams:
    """The parameters of a family that has none of its own."""


class Family(nn.Module):
    name = "?"
    # The family's own hyper-parameters: a frozen dataclass whose fields are the keys of its
    # configs/models/<name>.yaml (their defaults live there); the engine's are in GeneratorConfig.
    Params: type = NoParams
    adversarial = True           # critic steps before each generator step
    penalty: str | None = None   # 'gp' (WGAN-GP) or 'dragan', applied by the engine
    closed_form = False          # fitted once, no epochs (baselines)
    synthesizes = True           # False only for the no-generator baseline
    # Steps are pure device work (logs are detached tensors, state lives in buffers), so the
    # engine may capture a whole generator iteration as one CUDA graph. A family whose step
    # reads values on the host (float(), .item(), data-dependent Python branches) says False.
    graph_safe = True

    def __init__(self, feature_dim: int, att_dim: int, config: GeneratorConfig):
        super().__init__()
        self.feature_dim, self.att_dim, self.config, self.params = feature_dim, att_dim, config, config.family
        self.latent_dim = config.latent_dim or att_dim
        self.generator = ConditionalGenerator(self.latent_dim, att_dim, feature_dim, config.hidden, config.slope,
                                              prior=config.prior_lambda is not None and not self.closed_form)
        if self.adversarial:
            self.critic = self.build_critic(config.hidden)

    # ------------------------------------------------------------ networks
    def build_critic(self, hidden: int) -> nn.Module:
        return ConditionalCritic(self.feature_dim, self.att_dim, hidden, slope=self.config.slope)

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters()) if self.adversarial else []

    # ------------------------------------------------------------ sampling
    def latent(self, n: int, device: torch.device, gen: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=device, generator=gen)

    def sample(self, att: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        return self.generator(self.latent(att.shape[0], att.device, gen), att)

    # ------------------------------------------------------------ losses
    def critic_score(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        """Per-sample critic value the gradient penalty is taken of."""
        return self.critic(x, att)

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor, att: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    def generator_loss(self, real: torch.Tensor, fake: torch.Tensor, att: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    def penalty_score(self, fake: torch.Tensor, att: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The function of x whose gradient the penalty constrains (the critic by default)."""
        return lambda x: self.critic_score(x, att)

    def after_critic_step(self, logs: Logs) -> None:
        """State updates outside autograd (BEGAN's k_t, Fisher's λ)."""

    def fit_closed_form(self, features: torch.Tensor, att: torch.Tensor) -> None:
        raise NotImplementedError
