"""Run configuration: one dataclass that YAML, the CLI and the grid runner all fill.

Model hyper-parameters come in layers: the shared defaults (``configs/models/_shared.yaml``),
then the family's block (``configs/models/<model>.yaml``, its ``hp:`` section), then
``hp`` overrides of the run. Unknown keys are rejected, never ignored.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from extract.errors import ZsgmError
from extract.files import stable_hash

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SELECTIONS = ("validation", "oracle", "fixed")


@dataclass
class RunConfig:
    """Everything that decides one GZSL run's numbers (and nothing that does not)."""
    data: str = "demo"                 # dataset name (apy awa1 awa2 cub cub_sent flo sun) or 'demo'
    features: str | None = None        # a FeatureSet file; wins over data/backbone
    backbone: str | None = None        # with data: use the cache data/features/<data>/<backbone>.safetensors
    model: str = "cramer"              # registered generative model (zsgm models)
    classifier: str = "prototype"      # softmax | knn | prototype
    seed: int = 0
    epochs: int | None = None          # generator epochs; None = the model's default
    selection: str = "validation"      # validation | oracle | fixed
    noise: bool = True                 # the attribute-noise trick
    calibrate: bool = True             # calibrated stacking (seen-score penalty chosen on validation)
    # auto | l2 (the field's habit for pooled CNN/ViT features) | minmax (the seed's) | none, fitted on
    # training features only. auto = l2 for the cosine classifiers, minmax for softmax: on the CUB-50
    # real features the prototype classifier reaches validation H 72.3 with l2 against 70.6 with
    # minmax (no generator, scale 50), while wgan + softmax reaches 58.1 with l2 against 65.7 with
    # minmax (a linear layer on unit-norm features learns slowly at the seed's lr).
    normalise: str = "auto"
    hp: dict[str, Any] = field(default_factory=dict)       # generative model overrides
    clf_hp: dict[str, Any] = field(default_factory=dict)   # final classifier overrides
    max_reseeds: int = 2               # bounded re-seeding on mode collapse
    eval_every: int | None = None      # validation every K epochs; None = the model config's
    data_root: str | None = None       # where datasets live (not part of the hash)
    device: str = "auto"               # not part of the hash

    # Fields that locate data or hardware but do not change what is computed.
    NON_IDENTITY = ("data_root", "device")

    @classmethod
    def from_dict(cls, d: dict, source: str = "config", flags: dict | None = None) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ZsgmError(f"{source}: unknown key(s) {unknown}; known keys: {', '.join(sorted(names))}")
        cfg = cls(**d)
        cfg.check(source, flags)
        return cfg

    def check(self, source: str = "config", flags: dict | None = None) -> None:
        """Every field, hyper-parameter and classifier option against its declaration
        (``pipelines/params.py``), before any data are read; ``flags`` maps fields to the
        command-line flags that set them, for the messages."""
        from pipelines.params import check_run

        check_run(self, source, flags)

    @property
    def feature_normalisation(self) -> str:
        if self.normalise != "auto":
            return self.normalise
        return "minmax" if self.classifier == "softmax" else "l2"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        d = self.to_dict()
        for k in self.NON_IDENTITY:
            d.pop(k, None)
        return d

    def config_hash(self) -> str:
        return stable_hash(self.identity())

    def run_id(self) -> str:
        return f"{self.config_hash()}-s{self.seed}"

    @property
    def tricks(self) -> str:
        """The seed study's three tricks in effect, e.g. 'cramer+noise+prototype'."""
        parts = [t for t, on in (("cramer", self.model == "cramer"), ("noise", self.noise),
                                 ("prototype", self.classifier == "prototype")) if on]
        return "+".join(parts) or "none"


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ZsgmError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ZsgmError(f"{path}: invalid YAML{where}: {what}; fix the file") from exc
    if not isinstance(data, dict):
        raise ZsgmError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def layered_model_defaults(model: str) -> list[tuple[Path, dict]]:
    """``[(file, its hp: block)]``: the shared defaults, then the family's own YAML (if any)."""
    layers = []
    for path in (CONFIG_DIR / "models" / "_shared.yaml", CONFIG_DIR / "models" / f"{model}.yaml"):
        if path.is_file():
            hp = load_yaml(path).get("hp") or {}
            if not isinstance(hp, dict):
                raise ZsgmError(f"{path}: 'hp' must be a mapping of KEY: VALUE")
            layers.append((path, hp))
    return layers


def model_defaults(model: str) -> dict:
    """Shared hyper-parameters overlaid with the family's own YAML ``hp:`` block."""
    out: dict = {}
    for _, hp in layered_model_defaults(model):
        out.update(hp)
    return out


def dataset_overrides(data: str | None) -> dict:
    """``configs/datasets/<data>.yaml`` (``hp:``, ``clf_hp:``), or {} where there is none."""
    path = CONFIG_DIR / "datasets" / f"{data}.yaml"
    return load_yaml(path) if data and path.is_file() else {}
