"""Run configuration: the run (:class:`RunConfig`, which YAML, the CLI and the grid runner fill)
and the typed settings it resolves to (:func:`resolve`).

Defaults live in YAML only, in layers: the shared defaults (``configs/models/_shared.yaml``), the
family's ``hp:`` block (``configs/models/<model>.yaml``), the dataset's file
(``configs/datasets/<layer>.yaml``), then the run's own overrides (``--set``, ``--epochs``,
``--eval-every``, ``--noise``). :func:`resolve` routes every key to the one dataclass that reads
it (the engine's :class:`~generate.config.GeneratorConfig`, the family's ``Params``,
:class:`SelectionConfig`), and the classifier's options (``configs/classifiers/<name>.yaml`` <
the dataset's ``clf_hp`` < ``--clf-set``) to its ``Options``. Unknown keys are refused, a key
without a default is an error naming the file to add it to.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from zsgm.core.errors import ZsgmError
from zsgm.core.files import stable_hash
from zsgm.core.project import PROJECT_ROOT
from zsgm.pipelines.params import (NOISE, RUN, SELECTIONS, _setting, check_clf_layer, check_device, check_hp_layer,
                                   check_value)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEMO_DIR = PROJECT_ROOT / "data" / "demo"
# Settings that have one way in, a typed run field (and its flag), not --set.
RUN_FIELDS_IN_HP = {"epochs": "--epochs", "eval_every": "--eval-every"}


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
    noise: str = "on"                  # the attribute-noise trick: on | off | train | synthesis (NOISE)
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
    # The run budget of configs/budgets.yaml its settings were filled from: auto | seed | cpu (auto: seed
    # on a GPU, cpu otherwise); None: none named (the shared defaults with the dataset's layer, which
    # is the seed's). Not part of the hash: what the budget sets is (epochs, hp, clf_hp), once applied
    # (apply_budget).
    budget: str | None = None

    # Fields that locate data or hardware, or name where settings came from, but do not change what is computed.
    NON_IDENTITY = ("data_root", "device", "budget")

    def __post_init__(self):
        if isinstance(self.noise, bool):  # records and configs written before the switch had sides
            self.noise = "on" if self.noise else "off"

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
        if self.budget is not None and self.budget not in BUDGETS:
            flag = (flags or {}).get("budget") or f"{source}: budget"
            raise ZsgmError(f"{flag} {self.budget!r}: unknown; use one of {', '.join(BUDGETS)} "
                            f"(pipelines/configs/budgets.yaml)")
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
        noise = {"on": "noise", "train": "noise(train)", "synthesis": "noise(synthesis)"}.get(self.noise, "")
        parts = [t for t, on in (("cramer", self.model == "cramer"), (noise, bool(noise)),
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


def layered_model_defaults(model: str) -> list[tuple[str, dict]]:
    """``[(file, its hp: block)]``: the shared defaults, then the family's own YAML (if any); files
    named relative to the project, as messages name them."""
    layers = []
    for path in (CONFIG_DIR / "models" / "_shared.yaml", CONFIG_DIR / "models" / f"{model}.yaml"):
        if path.is_file():
            hp = load_yaml(path).get("hp") or {}
            if not isinstance(hp, dict):
                raise ZsgmError(f"{path}: 'hp' must be a mapping of KEY: VALUE")
            layers.append((_rel(path), hp))
    return layers


def dataset_overrides(data: str | None) -> dict:
    """``configs/datasets/<data>.yaml`` (``hp:``, ``clf_hp:``), or {} where there is none."""
    path = CONFIG_DIR / "datasets" / f"{data}.yaml"
    return load_yaml(path) if data and path.is_file() else {}


def classifier_layer(name: str) -> dict:
    """``configs/classifiers/<name>.yaml``: the classifier's ``options:`` (every default) and ``search:``."""
    path = CONFIG_DIR / "classifiers" / f"{name}.yaml"
    if not path.is_file():
        raise ZsgmError(f"classifier '{name}' has no defaults file {path}; add one with its options: block")
    return load_yaml(path)


def dataset_layer(cfg: RunConfig, fs=None) -> str:
    """The name of the ``configs/datasets/<name>.yaml`` layer a run gets: the demo's budget for
    the bundled demo file only; any other FeatureSet gets the layer of its own dataset
    (``fs.dataset``), whatever ``--data`` says or omits."""
    from zsgm.extract.featureset import FeatureSet

    if cfg.features:
        path = Path(cfg.features)
        if path.resolve().parent == DEMO_DIR.resolve():
            return "demo"
        if fs is not None:
            return fs.dataset
        if path.is_file():
            return FeatureSet.dataset_of(path)
        # (hyper-parameters compared where the file is not at hand: a stored record's rerun check)
    if cfg.data in (None, "", "demo"):
        return "demo"
    return cfg.data


# ---------------------------------------------------------------- budgets (configs/budgets.yaml)
BUDGETS_FILE = CONFIG_DIR / "budgets.yaml"
BUDGETS = ("auto", "cpu", "seed")


def budgets() -> dict:
    """The declared run budgets: ``seed`` (the shared defaults with each dataset's layer) and ``cpu``."""
    return load_yaml(BUDGETS_FILE)


def resolve_budget(name: str, device: str = "auto") -> str:
    """``auto`` → ``seed`` on a GPU, ``cpu`` otherwise; a named budget as it is."""
    if name not in BUDGETS:
        raise ZsgmError(f"--budget {name}: unknown; use one of {', '.join(BUDGETS)}")
    if name != "auto":
        return name
    from zsgm.core.device import pick_device

    return "seed" if pick_device(device).type == "cuda" else "cpu"


def budget_overrides(budget: str, layer: str, model: str, classifier: str) -> dict:
    """The RunConfig fields ``budget`` sets for a FeatureSet whose dataset layer is ``layer``: the run
    fields it names (epochs, eval_every), ``hp`` with this model's ``model_hp`` over it (where a run
    field it names goes over the entry's), and this classifier's ``clf_hp``. A run's own settings
    go over these."""
    block = budgets().get(budget) or {}
    entry = block.get(layer, block.get("*", {})) or {}
    own = entry.get("model_hp", {}).get(model) or {}
    run = {k: v for k, v in {**entry, **own}.items() if k in RUN_FIELDS_IN_HP}
    hp = {k: v for k, v in {**entry.get("hp", {}), **own}.items() if k not in RUN_FIELDS_IN_HP}
    return {**run, "hp": hp, "clf_hp": dict(entry.get("clf_hp", {}).get(classifier, {}))}


def with_budget(params: dict, budget: str, layer: str) -> dict:
    """RunConfig fields ``params`` with the budget's overrides under them (``hp``/``clf_hp`` merged)."""
    over = budget_overrides(budget, layer, params.get("model", RunConfig.model),
                            params.get("classifier", RunConfig.classifier))
    return {**over, **params, "hp": {**over["hp"], **params.get("hp", {})},
            "clf_hp": {**over["clf_hp"], **params.get("clf_hp", {})}, "budget": budget}


def apply_budget(cfg: RunConfig, fs=None, source: str = "config") -> RunConfig:
    """``cfg`` with its named budget (``cfg.budget``: auto resolved by its device) filled in under its
    own settings, for the FeatureSet's dataset layer; ``cfg`` itself when it names none. Idempotent:
    a config printed after this (``zsgm gzsl --print-config``) gives the same run again."""
    if cfg.budget is None:
        return cfg
    params = budget_params(cfg.to_dict(), dataset_layer(cfg, fs))
    if params == cfg.to_dict():
        return cfg  # applied already (the CLI applies it before it checks, once)
    return RunConfig.from_dict(params, source)


def budget_params(params: dict, layer: str) -> dict:
    """RunConfig fields ``params`` with the budget they name (``budget``; None: as they are) filled in
    under them: ``auto`` resolved by their device, run fields left ``None`` taken from the budget."""
    if params.get("budget") is None:
        return dict(params)
    name = resolve_budget(str(params["budget"]), str(params.get("device") or "auto"))
    params = {k: v for k, v in params.items() if not (k in RUN_FIELDS_IN_HP and v is None)}
    return {**{k: None for k in RUN_FIELDS_IN_HP}, **with_budget(params, name, layer)}


# ---------------------------------------------------------------- the typed settings of a run
@dataclass(frozen=True)
class SelectionConfig:
    """How a run picks its epoch, γ and classifier options."""
    eval_every: int             # score on validation every K epochs
    patience: int               # early stop after this many evaluations without a better H (0: off)
    calibration: str            # max_h | balance: how γ is picked on the selection scores
    collapse_threshold: float   # validation U or S (%) at or below which a run counts as collapsed


@dataclass(frozen=True)
class ClassifierConfig:
    """The final classifier: its name, every option, and the options selection chooses among."""
    name: str
    options: dict
    search: dict    # option -> values; an option the run sets itself (--clf-set) is not searched

    def candidates(self) -> list[dict]:
        """Every combination of the searched options over the fixed ones; the first takes the first
        value of each (what a run without selection uses)."""
        out = [dict(self.options)]
        for key, values in self.search.items():
            out = [{**c, key: v} for c in out for v in values]
        return out


@dataclass(frozen=True)
class Resolved:
    """Everything a run computes with, typed: what the record stores (``to_dict``)."""
    run: RunConfig
    generator: Any              # generate.config.GeneratorConfig
    selection: SelectionConfig
    classifier: ClassifierConfig
    budget: str                 # the dataset layer that applied

    def to_dict(self) -> dict:
        return {"budget": self.budget, "generator": self.generator.to_dict(),
                "selection": dataclasses.asdict(self.selection), "classifier": dataclasses.asdict(self.classifier)}

    def describe(self) -> str:
        g, c = self.generator, self.classifier
        opts = ", ".join(f"{k} {v}" for k, v in sorted(c.options.items()))
        return (f"budget '{self.run.budget or 'seed'}' (dataset layer '{self.budget}'): "
                f"{g.epochs} epochs of batch {g.batch_size}"
                f"{'' if g.steps_per_epoch is None else ' x ' + str(g.steps_per_epoch) + ' steps'}, "
                f"hidden {g.hidden}, lr {g.lr}, {g.n_synth} synthetic features per class; "
                + "".join(f"{name} weight {w}; " for name, w in (("classification", g.cls_weight),
                                                                  ("class-centre", g.center_weight)) if w > 0)
                + (f"ridge prior (lambda {g.prior_lambda}); " if g.prior_lambda is not None else "")
                + f"attribute noise {self.run.noise} (train {g.noise.train}, unseen {g.noise.unseen}); "
                f"{c.name} classifier: {opts}"
                + "".join(f"; {k} chosen on validation among {v}" for k, v in c.search.items()))


def hp_layers(cfg: RunConfig, layer: str) -> list[tuple[str, dict]]:
    """``[(source, values)]`` of the flat hyper-parameters, lowest first: the shared YAML, the
    family's, the dataset's, then the run's (``--set``, and the typed flags that have their own field)."""
    out = layered_model_defaults(cfg.model)
    ds = dataset_overrides(layer)
    hp = ds.get("hp") or {}
    if not isinstance(hp, dict):
        raise ZsgmError(f"{_rel(CONFIG_DIR / 'datasets' / f'{layer}.yaml')}: 'hp' must be a mapping of KEY: VALUE")
    out.append((_rel(CONFIG_DIR / "datasets" / f"{layer}.yaml"), hp))
    out.append(("--set", dict(cfg.hp)))
    out.append(("run", {k: v for k, v in (("epochs", cfg.epochs), ("eval_every", cfg.eval_every)) if v}))
    return out


def refuse_run_fields(overrides: dict) -> None:
    """``--set`` may not set what has its own typed field (one way in for each setting)."""
    twice = sorted(set(overrides) & set(RUN_FIELDS_IN_HP))
    if twice:
        raise ZsgmError(f"--set {twice[0]}: use {RUN_FIELDS_IN_HP[twice[0]]} (one way in for each setting)")


def hp_owners(model: str) -> dict[str, str]:
    """Every flat hyper-parameter key a run of ``model`` reads, and the config that reads it."""
    from zsgm.generate.config import engine_keys
    from zsgm.generate.registry import get as get_model

    owners = {k: "engine" for k in engine_keys()}
    owners.update({f.name: "selection" for f in dataclasses.fields(SelectionConfig)})
    owners.update({f.name: "family" for f in dataclasses.fields(get_model(model).cls.Params)})
    return owners


def resolve(cfg: RunConfig, fs=None) -> Resolved:
    """The one builder: the YAML layers and the run's overrides into typed configs. ``fs`` (the
    loaded FeatureSet, when at hand) names the dataset layer (:func:`dataset_layer`)."""
    layer = dataset_layer(cfg, fs)
    layers = hp_layers(cfg, layer)
    refuse_run_fields(dict(layers)["--set"])
    values = _merged(cfg.model, layers)
    # The noise switch: σ 0 on the side that is off.
    values["noise_train"] = values["noise_train"] if cfg.noise in ("on", "train") else 0.0
    values["noise_unseen"] = values["noise_unseen"] if cfg.noise in ("on", "synthesis") else 0.0
    selection = SelectionConfig(**{f.name: values[f.name] for f in dataclasses.fields(SelectionConfig)})
    ds = dataset_overrides(layer)
    return Resolved(cfg, _generator(cfg.model, values), selection, resolve_classifier(cfg, ds), layer)


def _merged(model: str, layers: list[tuple[str, dict]]) -> dict:
    """The flat values of ``layers`` (lowest first), every key read by one of ``model``'s configs and
    every one of them set by some layer."""
    owners = hp_owners(model)
    values: dict = {}
    for source, layer_values in layers:
        unread = sorted(set(layer_values) - set(owners))
        if unread:
            raise ZsgmError(f"{source}: unknown hyper-parameter(s) {unread} for model '{model}'; known: "
                            f"{', '.join(sorted(owners))}")
        values.update(layer_values)
    missing = sorted(set(owners) - set(values))
    if missing:
        raise ZsgmError(f"no default for hyper-parameter(s) {missing} of model '{model}': add them to "
                        f"{_rel(CONFIG_DIR / 'models' / f'{model}.yaml')} (family) or _shared.yaml")
    return values


def _generator(model: str, values: dict):
    """GeneratorConfig (with the family's Params) from complete flat ``values``."""
    from zsgm.generate.config import generator_config
    from zsgm.generate.registry import get as get_model

    params_cls = get_model(model).cls.Params
    family = params_cls(**{f.name: values[f.name] for f in dataclasses.fields(params_cls)})
    return generator_config(values, family)


def generator_defaults(model: str, **overrides):
    """``model``'s GeneratorConfig from its YAML layers (shared < family) and ``overrides``, for code
    that drives an engine without a run (the benchmark, tests). Unknown keys are refused."""
    return _generator(model, _merged(model, [*layered_model_defaults(model), ("overrides", overrides)]))


def flat_hp(resolved: dict) -> dict:
    """The flat hyper-parameters (the keys of the YAML ``hp:`` blocks) a stored ``Resolved.to_dict()`` holds."""
    from zsgm.generate.config import NOISE_KEYS

    gen = dict(resolved.get("generator") or {})
    noise, family = gen.pop("noise", None) or {}, gen.pop("family", None) or {}
    return {**gen, **{key: noise[f] for key, f in NOISE_KEYS.items() if f in noise}, **family,
            **(resolved.get("selection") or {})}


def classifier_defaults(name: str, **overrides) -> dict:
    """Every option of classifier ``name``: its YAML defaults and ``overrides`` (for code that builds
    one without a run: the benchmark, tests)."""
    return {**(classifier_layer(name).get("options") or {}), **overrides}


def resolve_classifier(cfg: RunConfig, ds: dict) -> ClassifierConfig:
    """The classifier's options: its YAML < the dataset's ``clf_hp`` < ``--clf-set``; its search: its
    YAML < the dataset's ``clf_search`` (each keyed by classifier name), less what the run fixes."""

    name = cfg.classifier
    own = classifier_layer(name)
    src = _rel(CONFIG_DIR / "classifiers" / f"{name}.yaml")
    options = dict(own.get("options") or {})
    for key in ("clf_hp", "clf_search"):
        if not isinstance(ds.get(key) or {}, dict):
            raise ZsgmError(f"dataset layer: '{key}' must map classifier names to their options")
    options.update((ds.get("clf_hp") or {}).get(name) or {})
    options.update(cfg.clf_hp)
    search = {**(own.get("search") or {}), **((ds.get("clf_search") or {}).get(name) or {})}
    for key, vals in search.items():
        if not isinstance(vals, list) or not vals:
            raise ZsgmError(f"{src}: search.{key}: expected a non-empty list of values, got {vals!r}")
        for v in vals:
            check_clf_layer(name, {key: v}, src, prefix="search.")
    from zsgm.evaluate.classifiers import CLASSIFIERS

    fields = [f.name for f in dataclasses.fields(CLASSIFIERS.get_entry(name).cls.Options)]
    missing = sorted(set(fields) - set(options))
    if missing:
        raise ZsgmError(f"{src}: no default for option(s) {missing} of classifier '{name}'; add them under options:")
    return ClassifierConfig(name, options, {k: v for k, v in search.items() if k not in cfg.clf_hp})


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def check_run(cfg, source: str = "config", flags: dict | None = None) -> None:
    """Every field of a :class:`~pipelines.config.RunConfig` and every hyper-parameter and classifier
    option it resolves to, each against its declaration. Reads only the YAML configs."""
    from zsgm.evaluate.classifiers import CLASSIFIERS
    from zsgm.generate.registry import get as get_model

    flags = flags or {}

    def where(field: str, value: Any) -> str:
        return _setting(flags.get(field), field, value, source)

    for field, param in RUN.items():
        value = getattr(cfg, field)
        check_value(param, value, field, where(field, value))
    for field in ("features", "data_root"):
        value = getattr(cfg, field, None)
        if value is not None and not str(value).strip():
            lead = flags.get(field) or f"{source}: {field}"
            raise ZsgmError(f"{lead} is empty: give a path, or leave it out for the default")
    check_device(cfg.device, flags.get("device") or f"{source}: device")
    get_model(cfg.model)                    # unknown names fail here, with suggestions
    CLASSIFIERS.get_entry(cfg.classifier)
    # hyper-parameters: each YAML layer (the one the run will read: a FeatureSet's own dataset), then
    # the run's overrides, typed by the fields that read them
    known = hp_owners(cfg.model)
    for layer_source, values in hp_layers(cfg, dataset_layer(cfg)):
        if layer_source == "run":
            continue  # the typed run fields, checked above
        if layer_source == "--set":
            refuse_run_fields(values)
            check_hp_layer(values, [k for k in known if k not in RUN_FIELDS_IN_HP], source, flags.get("hp"), cfg.model)
        else:
            check_hp_layer(values, known, layer_source, model=cfg.model)
    check_clf_layer(cfg.classifier, cfg.clf_hp, source, flags.get("clf_hp"))
    resolve(cfg)  # the dataset's classifier layer, the search lists, keys without a default
