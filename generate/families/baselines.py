"""Baselines in the box, registered like the generative families so that every table can
show what generation adds.

* ``ridge``: closed form. A ridge regression from class attributes to class-mean features
  (fitted on the training classes); "synthesis" returns the predicted mean of a class,
  plus Gaussian noise of the training residual's spread. With the prototype or kNN
  classifier this is the classic cosine nearest-class-mean sanity line.
* ``none``: no generator at all — the final classifier sees real seen features only
  (with the prototype classifier this is class-normalised ZSL alone).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from zsgm.generate.config import GeneratorConfig
from zsgm.generate.family import Family
from zsgm.generate.nets import ridge_map, with_bias
from zsgm.generate.registry import register


class ClosedForm(Family):
    adversarial = False
    closed_form = True

    def __init__(self, feature_dim: int, att_dim: int, config: GeneratorConfig):
        super().__init__(feature_dim, att_dim, dataclasses.replace(config, hidden=1))  # no network to train
        self.register_buffer("weight", torch.zeros(att_dim + 1, feature_dim))
        self.register_buffer("spread", torch.zeros(feature_dim))

    def generator_parameters(self):
        return []


@register("ridge", "baseline: closed-form ridge map attributes -> class-mean features")
class Ridge(ClosedForm):
    synthesizes = True

    @dataclass(frozen=True)
    class Params:
        ridge_lambda: float  # the ridge penalty (the bias is not shrunk)
        ridge_spread: float  # synthetic spread, in units of the training residuals' std

    def fit_closed_form(self, features: torch.Tensor, att: torch.Tensor) -> None:
        self.weight.copy_(ridge_map(features, att, self.params.ridge_lambda))
        resid = features - self._mean(att)
        self.spread.copy_(resid.std(0) * self.params.ridge_spread)

    def _mean(self, att: torch.Tensor) -> torch.Tensor:
        return with_bias(att) @ self.weight

    def sample(self, att, gen=None):
        eps = torch.randn(att.shape[0], self.feature_dim, device=att.device, generator=gen)
        return (self._mean(att) + eps * self.spread).clamp_min(0)


@register("none", "baseline: no generator; the classifier sees real seen features only")
class NoGenerator(ClosedForm):
    synthesizes = False

    def fit_closed_form(self, features, att) -> None:
        pass
