"""The typed settings of a generator: what the engine trains with and what a family is built from.

No value has a default here: the YAML layers (``pipelines/configs/models/_shared.yaml``, the
family's file, the dataset's file) are the one source of defaults, and ``pipelines.config.resolve``
builds these objects from them and the run's overrides, refusing unknown keys and bad types. A
family's own parameters are its ``Params`` dataclass (``generate/family.py``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AttributeNoise:
    """The attribute-noise trick, in one place: Gaussian noise on class attributes, σ in units of
    each attribute's spread across classes (raw units when ``relative`` is false). A σ of 0 is the
    switch that turns one side off (the run's ``noise`` setting does it)."""
    train: float       # on the training (seen) classes' attributes, at every training step
    unseen: float      # on the unseen classes' attributes when synthesising their features
    fraction: float    # share of each unseen class's synthetic features that get it
    relative: bool


@dataclass(frozen=True)
class GeneratorConfig:
    """The engine's settings: the training budget, the networks, the optimisation, attribute noise,
    synthesis and the speed options; ``family`` holds the family's own ``Params``."""
    # budget
    epochs: int
    batch_size: int
    steps_per_epoch: int | None     # None: one pass over the training features per epoch
    checkpoint_seconds: float
    # networks (one hidden layer in generator and critic)
    hidden: int
    latent_dim: int | None          # None: the attribute size
    slope: float
    # optimisation
    lr: float
    lr_critic: float | None         # None: lr
    beta1: float
    beta2: float
    critic_iters: int
    gp_weight: float
    cls_weight: float               # the f-CLSWGAN classification regulariser (0: off)
    cls_pretrain_epochs: int
    center_weight: float            # class-centre regulariser: generated class means to the real ones (0: off)
    prior_lambda: float | None      # the generator learns a residual around a ridge map of this penalty (None: off)
    # attribute noise and synthesis
    noise: AttributeNoise
    n_synth: int                    # synthetic features per unseen class
    # speed options
    amp: str | bool
    compile: bool
    cuda_graphs: str | bool
    family: Any                     # the family's Params (a frozen dataclass)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The flat keys of the YAML ``hp:`` blocks that fill AttributeNoise, and the field each fills.
NOISE_KEYS = {"noise_train": "train", "noise_unseen": "unseen", "noise_fraction": "fraction",
              "noise_relative": "relative"}


def engine_keys() -> list[str]:
    """The flat YAML keys GeneratorConfig reads (its own fields, and the noise keys)."""
    own = [f.name for f in dataclasses.fields(GeneratorConfig) if f.name not in ("noise", "family")]
    return own + list(NOISE_KEYS)


def generator_config(values: dict, family_params: Any) -> GeneratorConfig:
    """GeneratorConfig from flat ``values`` (every key of :func:`engine_keys`, extra keys ignored)."""
    noise = AttributeNoise(**{field: values[key] for key, field in NOISE_KEYS.items()})
    own = {k: values[k] for k in engine_keys() if k not in NOISE_KEYS}
    return GeneratorConfig(**own, noise=noise, family=family_params)
