"""Experiment configs → a plan of cells.

An experiment YAML (``pipelines/configs/experiments/<name>.yaml``) names::

    title: ...                     # the table caption's first words
    base: {epochs: 30, ...}        # RunConfig fields every cell shares
    grid: {data: [...], model: [...], classifier: [...]}   # RunConfig fields; the product
    seeds: 3                       # 0..2, or a list of seeds
    variants:                      # optional; each one is a set of overrides on top of the grid
      - {name: "full", set: {}}
      - {name: "− noise", set: {noise: "off"}}
    backbones:                     # optional: features come from our own extraction
      names: [convnext_tiny, ...]  # timm names
      weights: [pretrained, scratch]
                                   # or a list, each backbone with its own kinds (and extract
                                   # options over the experiment's):
                                   # [{name: convnext_tiny, weights: [scratch], extract: {...}}, ...]
    extract: {epochs: 30, ...}     # options of the extraction cells (scratch training budget ...);
                                   # tag: a suffix of this experiment's cache names (its own files),
                                   # scratch: {...} options of the scratch cells only (over the others)
    featuresets:                   # optional: FeatureSets at hand (not extracted by the plan), each
      - {features: "{data_root}/features/x.safetensors", labels: {dataset: x, backbone: ...}}
                                   # crossed with the grid's other axes, the variants and the seeds
    budget: seed                   # auto | seed | cpu (configs/budgets.yaml; --budget overrides)
    resources: {num_cpus: 1, num_gpus: 0.25, extract: {num_cpus: 8, num_gpus: 1}}
                                   # per GZSL cell (num_cpus is also its torch thread count) and per
                                   # extraction cell; Ray only (--gpus-per-cell overrides num_gpus of
                                   # every cell; a cluster without GPUs runs them with 0)
    model_hp:                      # optional: hp overrides for the models matching a name or glob
      "fgan_*": {formulation: study}
    tables: [{name: ..., rows: [...], columns: [...], metrics: [...], where: {...}, baselines: [...],
              sources: {...}}]

The grid is ``grid`` × ``variants`` × ``backbones`` × ``seeds``; every GZSL cell is one
:class:`RunConfig`, identified by ``run_id()`` (hash of the resolved config + seed).
Extraction cells come first and their GZSL cells depend on them.
"""
from __future__ import annotations

import copy
import fnmatch
import functools
import itertools
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from zsgm.evaluate.tables import TableSpec
from zsgm.core.errors import ZsgmError, unknown_name_error
from zsgm.core.files import stable_hash
from zsgm.core.project import PROJECT_ROOT
from zsgm.pipelines.config import CONFIG_DIR, RunConfig, dataset_layer, load_yaml, resolve_budget, with_budget

log = logging.getLogger("zsgm.grid")
EXPERIMENTS_DIR = CONFIG_DIR / "experiments"
TOP_KEYS = {"title", "description", "base", "grid", "seeds", "variants", "backbones", "extract", "resources",
            "tables", "model_hp", "budget", "featuresets"}
WEIGHT_KINDS = ("pretrained", "scratch")


@dataclass
class Cell:
    """One unit of work: a GZSL run (``params`` = RunConfig dict) or an extraction."""
    id: str
    kind: str                                    # "gzsl" | "extract"
    params: dict[str, Any]
    labels: dict[str, Any] = field(default_factory=dict)    # display fields (variant, weights ...)
    needs: list[str] = field(default_factory=list)           # ids of extraction cells
    missing: list[str] = field(default_factory=list)         # inputs this machine lacks
    num_cpus: float = 1
    num_gpus: float = 0
    # Run-time options the runner sets (not part of the plan's identity):
    progress: bool = False                                   # tqdm bars (in-process runs only)
    keep_checkpoints: bool = False                           # keep runs/<id>/*.pt after a finished run

    def describe(self) -> str:
        p = self.params
        if self.kind == "extract":
            return f"extract {p['backbone']}{' (scratch)' if p['scratch'] else ''} on {p['data']}"
        what = " ".join(f"{v}" for v in self.labels.values()) if self.labels else ""
        bb = f" {p['backbone']}" if p.get("backbone") else ""
        # a FeatureSet file names the data better than --data, which it overrides
        data = Path(p["features"]).stem if p.get("features") else p["data"]
        return (f"gzsl {data}{bb} {p['model']}+{p['classifier']} seed {p['seed']}"
                f"{' [' + what + ']' if what else ''}")

    def table_row(self) -> dict:
        """The record-like fields tables group by, for cells that have no record."""
        cfg = RunConfig.from_dict(self.params)
        return {"dataset": cfg.data, "backbone": cfg.backbone, "model": cfg.model, "classifier": cfg.classifier,
                "tricks": cfg.tricks, "seed": cfg.seed, "selection": cfg.selection, "noise": cfg.noise,
                **self.labels}


@dataclass
class Plan:
    name: str
    title: str
    source: Path
    cells: list[Cell]
    tables: list[TableSpec]
    budget: str = "seed"                         # the run budget its GZSL cells were given

    @property
    def extract_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.kind == "extract"]

    @property
    def gzsl_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.kind == "gzsl"]


# ---------------------------------------------------------------- loading
def experiment_path(name: str) -> Path:
    """``demo`` → the shipped config; a path to a YAML file is taken as is."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise ZsgmError(f"experiment config {p} not found")
        return p
    p = EXPERIMENTS_DIR / f"{name}.yaml"
    if not p.is_file():
        raise unknown_name_error("experiment", name, [q.stem for q in EXPERIMENTS_DIR.glob("*.yaml")])
    return p


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def yaml_value(text: str, where: str) -> Any:
    """A command-line value read as YAML, except that numbers YAML 1.1 leaves as strings
    (``5e-4``, ``1e3``) are numbers, as a user means them."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ZsgmError(f"{where}: the value is not valid YAML ({exc})") from exc
    return float(value) if isinstance(value, str) and _NUMBER.fullmatch(value.strip()) else value


SET_EXAMPLES = {"--set": "n_synth=100", "--clf-set": "epochs=20", "--cell": "epochs=5"}


def parse_sets(items: Iterable[str], flag: str = "--set") -> dict[str, Any]:
    """``["epochs=2", "hp.n_synth=20"]`` → ``{"epochs": 2, "hp": {"n_synth": 20}}`` (values read as
    YAML): the ``KEY=VALUE`` overrides of every command's ``--set`` / ``--clf-set``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ZsgmError(f"{flag} {item!r}: expected KEY=VALUE, e.g. {flag} {SET_EXAMPLES.get(flag, 'key=5')}")
        parsed = yaml_value(value, f"{flag} {item!r}")
        *parents, leaf = key.strip().split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = parsed
    return out


def _merge(base: dict, over: dict) -> dict:
    """Overrides win; nested dicts (hp, clf_hp) merge key by key."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _seeds(value, source: str) -> list[int]:
    if isinstance(value, bool) or value is None:
        raise ZsgmError(f"{source}: seeds must be a count (e.g. 3) or a list of ints, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ZsgmError(f"{source}: seeds must be >= 1, got {value}")
        return list(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        return list(dict.fromkeys(value))
    raise ZsgmError(f"{source}: seeds must be a count (e.g. 3) or a non-empty list of ints, got {value!r}")


def _axis_values(key: str, value, source: str) -> list:
    values = value if isinstance(value, list) else [value]
    if key == "model" and "all" in values:
        from zsgm.generate.registry import MODELS

        values = [m for v in values for m in (list(MODELS) if v == "all" else [v])]
    return list(dict.fromkeys(values)) if all(isinstance(v, (str, int, float, bool)) for v in values) else values


def load_experiment(name: str, seeds: int | list[int] | None = None, sets: dict | None = None,
                    gpus_per_cell: float | None = None, budget: str | None = None) -> Plan:
    """Read and expand an experiment; ``seeds``, ``sets``, ``gpus_per_cell`` and ``budget`` are the
    command-line overrides."""
    path = experiment_path(name)
    source = str(path)
    doc = load_yaml(path)
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        raise ZsgmError(f"{source}: unknown key(s) {unknown}; known: {', '.join(sorted(TOP_KEYS))}")
    grid = doc.get("grid") or {}
    if not isinstance(grid, dict):
        raise ZsgmError(f"{source}: 'grid' must map RunConfig fields to lists of values")
    for key in ("base", "grid", "extract", "resources", "model_hp"):
        if not isinstance(doc.get(key) or {}, dict):
            raise ZsgmError(f"{source}: '{key}' must be a mapping")
    for bad in ("seed", "data_root", "device"):
        if bad in grid:
            raise ZsgmError(f"{source}: '{bad}' cannot be a grid axis; use 'seeds:' for seeds and --set for "
                            f"data_root/device")
    sets = sets or {}
    # A --set of a grid axis pins that axis (e.g. --set model=cramer runs one model).
    axes = {k: _axis_values(k, sets[k] if k in sets else v, source) for k, v in grid.items()}
    # A list given on the command line for any other field makes it an axis too (--set model=[cramer,wgan]),
    # unless variants set that field: then it only chooses among the variants (see _variants).
    variant_keys = {k for v in (doc.get("variants") or []) if isinstance(v, dict) for k in (v.get("set") or {})}
    axes.update({k: _axis_values(k, v, source) for k, v in sets.items()
                 if isinstance(v, list) and k not in axes and k not in variant_keys})
    fixed = {k: v for k, v in sets.items() if k not in axes and not (isinstance(v, list) and k in variant_keys)}
    base = _merge(doc.get("base") or {}, fixed)
    seed_list = _seeds(seeds if seeds is not None else doc.get("seeds", 1), f"{source}: seeds")
    variants = _variants(doc.get("variants"), source, sets, doc.get("base") or {})
    backbones = _backbones(doc.get("backbones"), source)
    resources, extract_resources = _resources(doc.get("resources") or {}, source, gpus_per_cell)
    extract_opts = doc.get("extract") or {}
    budget_name = resolve_budget(str(budget or doc.get("budget") or "seed"), str(sets.get("device") or "auto"))
    featuresets = _featuresets(doc.get("featuresets"), source, sets.get("data_root"))
    model_hp = doc.get("model_hp") or {}
    for pattern, hp in model_hp.items():
        if not isinstance(hp, dict):
            raise ZsgmError(f"{source}: model_hp['{pattern}'] must map hyper-parameters to values")

    cells: dict[str, Cell] = {}
    extracts: dict[str, Cell] = {}
    names = list(axes)
    # (grid values, backbone or None, featureset or None): the grid crossed with the backbones, then
    # the featuresets crossed with the grid's other axes (their data is their own)
    sources = [(dict(zip(names, combo)), bb, None) for combo in itertools.product(*axes.values())
               for bb in backbones]
    others = {k: v for k, v in axes.items() if k != "data"}
    sources += [(dict(zip(others, combo)), None, fset) for fset in featuresets
                for combo in itertools.product(*others.values())]
    # a bad value given on the command line is named as the command line's, not the experiment file's
    where = f"the command line's --cell/--set/--clf-set {fixed} (over {source})" if fixed else source
    for values, bb, fset in sources:
        for vname, vset in variants:
            for seed in seed_list:
                # Command-line overrides win over the grid and the variants.
                params = _merge(_merge(base, values), vset)
                for pattern, hp in model_hp.items():  # per-model hp, under the command line's
                    if fnmatch.fnmatchcase(str(params.get("model", "cramer")), str(pattern)):
                        params = _merge(params, {"hp": hp})
                params = _merge(params, fixed)
                labels = {"variant": vname} if vname is not None else {}
                needs: list[str] = []
                if bb is not None:
                    name, kind, own = bb
                    ex = _extract_cell(params.get("data", "demo"), name, kind, _merge(extract_opts, own),
                                       extract_resources, params.get("data_root"), source, params.get("device"))
                    extracts.setdefault(ex.id, ex)
                    params["backbone"] = cache_key(name, kind, ex.params.get("tag"))
                    labels.update(backbone=name, pretrained=kind)
                    needs = [ex.id]
                if fset is not None:
                    params.pop("data", None)
                    params["features"] = fset["features"]
                    labels.update(fset["labels"])
                params["seed"] = seed
                params = with_budget(params, budget_name, dataset_layer(RunConfig.from_dict(params, where)))
                cfg = RunConfig.from_dict(params, where)
                _check_names(cfg, where)
                cell = Cell(cfg.run_id(), "gzsl", cfg.to_dict(), labels, needs, **resources)
                cells.setdefault(cell.id, cell)
    tables = [TableSpec.from_dict(t, source) for t in (doc.get("tables") or [])] or \
        [TableSpec(name=path.stem, title=doc.get("title", path.stem))]
    plan = Plan(path.stem, doc.get("title", path.stem), path, [*extracts.values(), *cells.values()], tables,
                budget_name)
    annotate_missing(plan)
    return plan


def _variants(value, source: str, sets: dict, base: dict) -> list[tuple[str | None, dict]]:
    """The variants, minus those a ``--set`` contradicts: ``--set classifier=softmax`` keeps only
    the variants whose classifier (their own, else the base's) is softmax, so that a variant
    is never relabelled into something it is not."""
    if not value:
        return [(None, {})]
    out = []
    for i, v in enumerate(value):
        if not isinstance(v, dict) or "name" not in v or set(v) - {"name", "set"}:
            raise ZsgmError(f"{source}: variants[{i}] must be {{name: ..., set: {{...}}}}, got {v!r}")
        out.append((str(v["name"]), dict(v.get("set") or {})))
    touched = {k for _, vset in out for k in vset if k in sets and not isinstance(vset[k], dict)}

    def agrees(vset: dict, k: str) -> bool:
        want = sets[k] if isinstance(sets[k], list) else [sets[k]]
        return vset.get(k, base.get(k)) in want

    out = [(name, vset) for name, vset in out if all(agrees(vset, k) for k in touched)]
    if not out:
        raise ZsgmError(f"{source}: no variant agrees with --set {sets}; the variants are "
                        f"{', '.join(str(v.get('name')) for v in value)}")
    return out


def _backbones(value, source: str) -> list[tuple[str, str, dict] | None]:
    """(timm name, weights kind, its own extraction options): ``{names: [...], weights: [...]}`` (every
    name with every kind) or ``[{name: ..., weights: [...], extract: {...}}, ...]`` (each backbone with its
    own kinds, and options over the experiment's ``extract``)."""
    if not value:
        return [None]
    if isinstance(value, dict) and not set(value) - {"names", "weights"} and value.get("names"):
        value = [{"name": n, "weights": value.get("weights") or ["pretrained"]} for n in value["names"]]
    if not isinstance(value, list) or not all(isinstance(v, dict) and v.get("name") and
                                              not set(v) - {"name", "weights", "extract"} for v in value):
        raise ZsgmError(f"{source}: backbones must be {{names: [timm names], weights: [pretrained, scratch]}} or a "
                        f"list of {{name: timm name, weights: [pretrained, scratch], extract: {{options}}}}")
    out = []
    for v in value:
        kinds = v.get("weights") or ["pretrained"]
        kinds = kinds if isinstance(kinds, list) else [kinds]
        bad = [k for k in kinds if k not in WEIGHT_KINDS]
        if bad:
            raise ZsgmError(f"{source}: backbones: {v['name']}: weights {bad} unknown; use {', '.join(WEIGHT_KINDS)}")
        if not isinstance(v.get("extract") or {}, dict):
            raise ZsgmError(f"{source}: backbones: {v['name']}: extract must map extraction options to values")
        out += [(str(v["name"]), str(k), dict(v.get("extract") or {})) for k in kinds]
    return list({bb[:2]: bb for bb in out}.values())


def _featuresets(value, source: str, data_root: str | None) -> list[dict]:
    """The experiment's FeatureSets at hand: ``{features: path, labels: {...}}``; ``{data_root}`` in a
    path is the data root (--data-root, $ZSGM_DATA, data/)."""
    if not value:
        return []
    from zsgm.core.project import data_root as root_of

    if not isinstance(value, list):
        raise ZsgmError(f"{source}: featuresets must be a list of {{features: FILE, labels: {{...}}}}")
    out = []
    for i, v in enumerate(value):
        if not isinstance(v, dict) or not isinstance(v.get("features"), str) or set(v) - {"features", "labels"} \
                or not isinstance(v.get("labels") or {}, dict):
            raise ZsgmError(f"{source}: featuresets[{i}] must be {{features: FILE, labels: {{field: value}}}}, "
                            f"got {v!r}")
        # absolute, so that the cells' ids do not depend on how the root was spelled (../shared/data or /work/...)
        path = str(Path(v["features"].replace("{data_root}", str(root_of(data_root)))).resolve())
        out.append({"features": path, "labels": {str(k): str(x) for k, x in (v.get("labels") or {}).items()}})
    return out


def _resources(value: dict, source: str, gpus_per_cell: float | None = None) -> tuple[dict, dict]:
    """(GZSL cell, extraction cell) resources: ``num_cpus``, ``num_gpus``, and an optional
    ``extract: {num_cpus, num_gpus}`` for the extraction cells (default: the GZSL cells')."""

    def one(d, where: str) -> dict:
        if not isinstance(d, dict):
            raise ZsgmError(f"{source}: {where} must be a mapping of num_cpus, num_gpus")
        unknown = sorted(set(d) - {"num_cpus", "num_gpus"} - ({"extract"} if where == "resources" else set()))
        if unknown:
            raise ZsgmError(f"{source}: {where}: unknown key(s) {unknown}; use num_cpus, num_gpus"
                            + (", extract" if where == "resources" else ""))
        out = {}
        for key, default in (("num_cpus", 1.0), ("num_gpus", 0.0)):
            v = d.get(key, default)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ZsgmError(f"{source}: {where}.{key} must be a number >= 0, got {v!r}")
            out[key] = float(v)
        return out

    gzsl = one(value, "resources")
    extra = value.get("extract")
    if extra is not None and not isinstance(extra, dict):
        raise ZsgmError(f"{source}: resources.extract must be a mapping of num_cpus, num_gpus")
    extract = one({**gzsl, **extra}, "resources.extract") if extra else dict(gzsl)
    if gpus_per_cell is not None:
        if isinstance(gpus_per_cell, bool) or gpus_per_cell < 0:
            raise ZsgmError(f"--gpus-per-cell must be a number >= 0, got {gpus_per_cell}")
        gzsl["num_gpus"] = extract["num_gpus"] = float(gpus_per_cell)
    return gzsl, extract


def _check_names(cfg: RunConfig, source: str) -> None:
    """Unknown model or classifier names fail at plan time, not an hour into the grid."""
    from zsgm.generate.registry import get as get_model

    get_model(cfg.model)
    try:
        from zsgm.evaluate.classifiers import CLASSIFIERS
    except ImportError:  # classifiers not importable: run_gzsl reports it per cell
        return
    if cfg.classifier not in CLASSIFIERS:
        raise unknown_name_error(f"classifier (in {source})", cfg.classifier, CLASSIFIERS)


# ---------------------------------------------------------------- extraction cells
def cache_key(backbone: str, weights: str, tag: str | None = None) -> str:
    """The name under data/features/<data>/ (and RunConfig.backbone) of a backbone's features;
    an experiment's ``extract: {tag: T}`` gives its cells files of their own (``<name>[_scratch]_T``)."""
    return backbone + ("_scratch" if weights == "scratch" else "") + (f"_{tag}" if tag else "")


def feature_cache(data: str, backbone: str, weights: str, tag: str | None = None) -> Path:
    """Where extraction writes (and GZSL with ``backbone: cache_key(...)`` reads) the features."""
    from zsgm.extract.job import default_output

    return default_output(data, backbone, weights).with_name(cache_key(backbone, weights, tag) + ".safetensors")


EXTRACT_OPTS = ("weights", "img_size", "dtype", "classes", "engine", "train", "tag", "scratch")


def _extract_cell(data: str, backbone: str, weights: str, opts: dict, resources: dict,
                  data_root: str | None, source: str, device: str | None = None) -> Cell:
    unknown = sorted(set(opts) - set(EXTRACT_OPTS))
    if unknown:
        raise ZsgmError(f"{source}: extract: unknown option(s) {unknown}; known: {', '.join(EXTRACT_OPTS)} "
                        f"(engine and train take the fields of extract.extractor.EngineConfig / "
                        f"zsgm.extract.scratch.ScratchConfig)")
    scratch_opts = opts.get("scratch") or {}
    if not isinstance(scratch_opts, dict) or set(scratch_opts) - (set(EXTRACT_OPTS) - {"tag", "scratch"}):
        raise ZsgmError(f"{source}: extract.scratch must map extraction options of the scratch cells "
                        f"({', '.join(o for o in EXTRACT_OPTS if o not in ('tag', 'scratch'))}), got {scratch_opts!r}")
    own = {k: v for k, v in opts.items() if k != "scratch" and v is not None}
    if weights == "scratch":
        own = _merge(own, scratch_opts)
    params = {"data": data, "backbone": backbone, "scratch": weights == "scratch", **own}
    # data_root locates the images and device the hardware; like RunConfig's, not part of the identity.
    located = {"data_root": data_root, **({"device": device} if device not in (None, "auto") else {})}
    return Cell(f"x-{stable_hash(params)}", "extract", {**params, **located},
                {"backbone": backbone, "pretrained": weights}, **resources)


# ---------------------------------------------------------------- missing inputs
def annotate_missing(plan: Plan) -> None:
    """Fill each cell's ``missing``: the features, images or weights this machine lacks.

    A GZSL cell whose features an extraction cell of the plan will build inherits that
    cell's missing inputs instead.
    """
    by_id = {c.id: c for c in plan.cells}
    for cell in plan.extract_cells:
        cell.missing = [] if extraction_output(cell).is_file() else extraction_missing(cell.params)
    for cell in plan.gzsl_cells:
        if cell.needs:
            ex = [by_id[i] for i in cell.needs]
            cell.missing = [m for e in ex for m in e.missing]
        else:
            cell.missing = gzsl_missing(cell.params)


def extraction_output(cell: Cell) -> Path:
    """The FeatureSet an extraction cell builds."""
    p = cell.params
    return feature_cache(p["data"], p["backbone"], "scratch" if p["scratch"] else "pretrained", p.get("tag"))


def gzsl_missing(params: dict) -> list[str]:
    """What a GZSL cell cannot find, following run_gzsl's precedence of inputs."""
    from zsgm.extract.specs import get_spec

    if params.get("features"):
        p = Path(params["features"])
        return [] if p.is_file() else [f"features {p}"]
    data = params.get("data") or "demo"
    if data == "demo":
        demo = PROJECT_ROOT / "data" / "demo"
        return [] if any(demo.glob("*.safetensors")) else [f"features {demo}/*.safetensors"]
    if params.get("backbone"):
        p = feature_cache(data, params["backbone"], "pretrained")  # the key already carries _scratch
        return [] if p.is_file() else [f"features {_rel(p)}"]
    spec = get_spec(data)
    root = params.get("data_root")
    return [f"{what} {_rel(p)}" for what, p in (("features", spec.features_path(root)),
                                                 ("splits", spec.split_path(root))) if not p.is_file()]


def extraction_missing(params: dict) -> list[str]:
    """Images of the dataset and, for pretrained cells, the backbone's weights."""
    missing = []
    images = images_missing(params["data"], params.get("data_root"))
    if images:
        missing.append(images)
    if not params["scratch"]:
        from zsgm.extract import weights

        # Online, timm downloads what is not local; only an offline machine lacks it.
        if weights.offline() and weights.available(params["backbone"]) is None:
            missing.append(f"weights {_rel(weights.expected_files(params['backbone'])[0])}")
    return missing


@functools.lru_cache(maxsize=64)
def images_missing(data: str, root: str | None = None) -> str:
    """'' when the dataset's raw images are found (the extraction stage's own scan), else what is missing."""
    from zsgm.extract.layouts import open_root
    from zsgm.extract.specs import get_spec

    try:
        open_root(data, root)
    except ZsgmError as exc:
        log.debug("images of %s: %s", data, exc)
        return f"images {_rel(get_spec(data).folder_path(root))}/ ({exc})"
    return ""


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(p)
