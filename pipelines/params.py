"""Parameter declarations: the one place that says each option's type and range.

Everything a run is configured with is checked here, before a file is read or a model
built: the run's own fields (``--epochs``, ``--seed``, ``--eval-every``, ``--device`` ...),
every generative hyper-parameter (``--set``, and each YAML layer it overrides) and every
final-classifier option (``--clf-set``), and ``zsgm extract``'s numeric options.

* Generative hyper-parameters are the fields of the typed configs that read them (the engine's
  ``GeneratorConfig``, the family's ``Params``, ``SelectionConfig``: ``pipelines.config.hp_owners``);
  their defaults are in the YAML layers. Types and ranges are declared in :data:`HP`; a field not
  declared there is checked against its annotation.
* Classifier options are the fields of each classifier's ``Options`` dataclass (read by
  introspection, so an option added there is known at once); :data:`CLF` declares ranges by
  option name, the annotation's type serves otherwise.

A message names the flag (or the YAML file and key), the value and what is allowed; every
failure is a :class:`~extract.errors.ZsgmError` (exit 2).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterable

from zsgm.core.errors import ZsgmError
from zsgm.extract.featureset import NORMALISATIONS

SELECTIONS = ("validation", "oracle", "fixed")
# The attribute-noise trick's switch: which side is on. train: the seen classes' attributes while
# training; synthesis: the unseen classes' attributes when synthesising; on: both; off: neither.
NOISE = ("on", "off", "train", "synthesis")

SEED_MAX = 2**32 - 1  # NumPy's seed range (torch takes more); re-seeds add 1000 per attempt below 2**64
# Upper bounds where memory or time need one: a value past these cannot finish on any machine the
# study targets (the seed's own budgets are far below: 30 epochs, hidden 4096, n_synth 4000, k 20).
EPOCHS_MAX = 100_000        # generator or classifier epochs, evaluation cadences, patience
WIDTH_MAX = 65_536          # hidden / latent / critic widths (a 65536 x 65536 float32 layer is 16 GiB)
BATCH_MAX = 1_048_576       # samples per step, test rows per chunk
STEPS_MAX = 10_000_000      # optimisation steps per epoch / at least
N_SYNTH_MAX = 100_000       # synthetic features per unseen class (x classes x width floats in memory)
K_MAX = 1_000_000           # neighbours that vote (also refused when larger than the features at hand)


@dataclass(frozen=True)
class Param:
    """One option: ``kind`` int | float | bool | str | choice | any; a closed range [lo, hi]
    unless ``lo_open`` / ``hi_open``; ``nullable`` lets ``None`` (YAML null) through."""
    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    nullable: bool = False
    choices: tuple = ()

    def allowed(self, null: bool = True) -> str:
        """What is allowed, in words; ``null`` False leaves '(or null)' out (a flag cannot be null)."""
        if self.kind == "choice":
            text = "one of " + ", ".join(_show(c, quote=False) for c in self.choices)
        elif self.kind in ("int", "float"):
            text = "an integer" if self.kind == "int" else "a finite number"
            bounds = []
            if self.lo is not None:
                bounds.append(f"{'>' if self.lo_open else '>='} {_num(self.lo)}")
            if self.hi is not None:
                bounds.append(f"{'<' if self.hi_open else '<='} {_num(self.hi)}")
            if bounds:
                text += " " + " and ".join(bounds)
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "str":
            text = "a string"
        else:
            text = "any value"
        return text + (" (or null)" if null and self.nullable and self.kind != "any" else "")

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.nullable or self.kind == "any"
        if self.kind == "any":
            return True
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "str":
            return isinstance(value, str)
        if self.kind == "choice":
            return _norm_choice(value) in {_norm_choice(c) for c in self.choices}
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.kind == "int" and not (isinstance(value, int) or float(value).is_integer()):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
            return False
        return True


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _norm_choice(v: Any) -> str:
    return str(v).lower()


# Shorthands for the tables below.
def Int(lo=None, hi=None, **kw) -> Param:  # noqa: N802
    return Param("int", lo, hi, **kw)


def Float(lo=None, hi=None, **kw) -> Param:  # noqa: N802
    return Param("float", lo, hi, **kw)


def Choice(*choices, **kw) -> Param:  # noqa: N802
    return Param("choice", choices=tuple(choices), **kw)


BOOL = Param("bool")
POSITIVE = Float(0, lo_open=True)
NONNEG = Float(0)
FRACTION = Float(0, 1)
SWITCH = Choice("auto", "on", "off", True, False)   # YAML may hand over a bool for on/off

# ---------------------------------------------------------------- generative hyper-parameters
HP: dict[str, Param] = {
    # budget and batching
    "epochs": Int(1, EPOCHS_MAX), "batch_size": Int(1, BATCH_MAX), "steps_per_epoch": Int(1, STEPS_MAX, nullable=True),
    "eval_every": Int(1, EPOCHS_MAX), "patience": Int(0, EPOCHS_MAX), "checkpoint_seconds": Float(0, 86_400),
    # networks
    "hidden": Int(1, WIDTH_MAX), "latent_dim": Int(1, WIDTH_MAX, nullable=True), "slope": NONNEG,
    "critic_dim": Int(1, WIDTH_MAX),
    # optimisation
    "lr": POSITIVE, "lr_critic": Float(0, lo_open=True, nullable=True),
    "beta1": Float(0, 1, hi_open=True), "beta2": Float(0, 1, hi_open=True),
    "critic_iters": Int(1, 1000), "gp_weight": NONNEG, "cls_weight": NONNEG, "cls_pretrain_epochs": Int(1, EPOCHS_MAX),
    "center_weight": NONNEG, "prior_lambda": Float(0, nullable=True),
    "weight_reg": Float(0, nullable=True),
    # attribute noise and synthesis
    "noise_train": NONNEG, "noise_relative": BOOL, "noise_unseen": NONNEG,
    "noise_fraction": FRACTION, "n_synth": Int(1, N_SYNTH_MAX), "collapse_threshold": Float(0, 100),
    "calibration": Choice("max_h", "balance"),
    # speed options
    "amp": Choice("off", "bf16", False, True), "compile": BOOL, "cuda_graphs": SWITCH,
    # family-specific
    "formulation": Choice("paper", "study", nullable=True),
    "ae_momentum": Float(0, 1, lo_open=True), "kl_weight": NONNEG, "bir_sigma": POSITIVE, "mmd_weight": NONNEG,
    "began_gamma": POSITIVE, "began_lambda_k": NONNEG, "began_k0": FRACTION, "began_code_dim": Int(1, WIDTH_MAX),
    "fisher_rho": NONNEG, "info_categories": Int(1, WIDTH_MAX), "info_continuous": Int(0, WIDTH_MAX),
    "info_weight": NONNEG,
    "info_continuous_weight": NONNEG, "ridge_lambda": POSITIVE, "ridge_spread": NONNEG,
}

# ---------------------------------------------------------------- final-classifier options (by name)
CLF: dict[str, Param] = {
    "epochs": Int(1, EPOCHS_MAX), "lr": POSITIVE, "weight_decay": NONNEG, "hidden": Int(1, WIDTH_MAX),
    "scale": POSITIVE, "batch_size": Int(1, BATCH_MAX), "lr_step": Int(1, EPOCHS_MAX), "seen_scale": POSITIVE,
    "min_steps": Int(0, STEPS_MAX), "k": Int(1, K_MAX), "chunk": Int(1, BATCH_MAX), "cuda_graphs": SWITCH,
    "real_mix": Float(0, 1),
    "softmax_over": Choice("rows", "all"),
}

# ---------------------------------------------------------------- the run's own fields
RUN: dict[str, Param] = {
    "seed": Int(0, SEED_MAX), "epochs": Int(1, EPOCHS_MAX, nullable=True),
    "eval_every": Int(1, EPOCHS_MAX, nullable=True),
    "max_reseeds": Int(0, 100), "noise": Choice(*NOISE), "calibrate": BOOL,
    "selection": Choice(*SELECTIONS), "normalise": Choice("auto", *NORMALISATIONS),
}

# ---------------------------------------------------------------- zsgm extract
EXTRACT: dict[str, Param] = {
    "batch_size": Int(1, 65_536), "shard_size": Int(1, STEPS_MAX), "workers": Int(-1, 1024),
    "img_size": Int(8, 8192, nullable=True), "epochs": Int(1, EPOCHS_MAX), "train_batch_size": Int(1, 65_536),
    "lr": POSITIVE, "weight_decay": NONNEG, "seed": Int(0, SEED_MAX),
}
# timm's learning-rate schedules (``create_scheduler_v2``); optimisers come from timm.optim.list_optimizers().
SCHEDULES = ("constant", "cosine", "multistep", "plateau", "poly", "rsqrt", "step", "tanh")

# ---------------------------------------------------------------- the other verbs' numeric flags
# Each verb checks its flags against its table with :func:`check_flags` before any work; ``None`` is a
# flag left out (its default then applies).
RERUN: dict[str, Param] = {"tolerance": Float(0, 100)}           # percentage points
QUALITY: dict[str, Param] = {"seeds": Int(1, 100, nullable=True), "jobs": Int(1, 256)}
TABLES: dict[str, Param] = {"seeds": Int(1, 1000, nullable=True), "jobs": Int(1, 256),
                            "gpus_per_cell": Float(0, 1024, nullable=True)}
BENCH: dict[str, Param] = {
    "threads": Int(1, 4096, nullable=True), "repeats": Int(1, 1000), "ttr_repeats": Int(1, 1000, nullable=True),
    "epochs": Int(1, EPOCHS_MAX, nullable=True), "ttr_epochs": Int(1, EPOCHS_MAX, nullable=True),
    "eval_every": Int(1, EPOCHS_MAX, nullable=True), "images": Int(1, 10_000_000, nullable=True),
}
RESULTS: dict[str, Param] = {"last": Int(1, 10**9, nullable=True)}

# The command-line flag of each RunConfig field (messages name what the user typed).
CLI_FLAGS = {"seed": "--seed", "epochs": "--epochs", "eval_every": "--eval-every", "device": "--device",
             "selection": "--selection", "normalise": "--normalise", "hp": "--set", "clf_hp": "--clf-set",
             "noise": "--noise", "calibrate": "--no-calibration", "max_reseeds": "max_reseeds",
             "features": "--features", "data_root": "--data-root"}


def inferred(default: Any) -> Param:
    """The type a default value implies, for options not declared above."""
    if isinstance(default, str) and default in _ANNOTATIONS:  # a dataclass field's annotation
        return _ANNOTATIONS[default]
    if isinstance(default, bool):
        return BOOL
    if isinstance(default, int):
        return Int()
    if isinstance(default, float):
        return Float()
    if isinstance(default, str):
        return Param("str")
    return Param("any")


_ANNOTATIONS = {"int": Int(), "float": Float(), "bool": BOOL, "str": Param("str"),
                "int | None": Int(nullable=True), "float | None": Float(nullable=True)}


def _show(value: Any, quote: bool = True) -> str:
    if isinstance(value, str):
        return repr(value) if quote else value
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def check_value(param: Param, value: Any, name: str, where: str) -> None:
    """Raise ZsgmError unless ``value`` fits ``param``. ``where`` is a flag (``--epochs``: "--epochs
    must be ..."), a flag and its item (``--set hidden=abc``: "--set hidden=abc: hidden must be ...") or
    a file ("demo.yaml: hp.hidden must be ...")."""
    if param.ok(value):
        return
    flag = where.startswith("--")
    lead = where if flag and " " not in where else f"{where}: {name}"
    raise ZsgmError(f"{lead} must be {param.allowed(null=not flag)}, got {_show(value)}")


def _setting(flag: str | None, key: str, value: Any, source: str) -> str:
    """How to point at one setting: ``--set hidden=abc`` / ``--epochs`` on the command line, else the
    source (a file, 'command line', a grid cell)."""
    if flag in ("--set", "--clf-set"):
        return f"{flag} {key}={_show(value, quote=False)}"
    if flag and flag.startswith("--") and flag != "--no-calibration":
        return flag
    return source


# ---------------------------------------------------------------- checks
def check_device(name: str | None, where: str = "--device") -> None:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` (a device torch sees) or ``mps``."""
    if name in (None, "", "auto"):
        return
    import torch

    hint = "use auto, cpu, cuda or cuda:N"
    if not isinstance(name, str):
        raise ZsgmError(f"{where} {_show(name)}: not a device name; {hint}")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ZsgmError(f"{where} {name}: not a device; {hint}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ZsgmError(f"{where} {name}: torch sees no CUDA device here; use --device cpu (or auto)")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ZsgmError(f"{where} {name}: torch sees {n} CUDA device(s), cuda:0..cuda:{n - 1}")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ZsgmError(f"{where} {name}: no MPS device here; {hint}")
    elif dev.type != "cpu":
        raise ZsgmError(f"{where} {name!r}: device type '{dev.type}' is not supported; {hint}")


def check_hp_layer(values: dict, known: Iterable[str], source: str, flag: str | None = None, model: str = "") -> None:
    """One layer of hyper-parameters: known keys (``known``), each of its declared type and range."""
    if not isinstance(values, dict):
        raise ZsgmError(f"{source}: 'hp' must be a mapping of KEY: VALUE, got {_show(values)}")
    unknown = sorted(k for k in values if k not in known)
    if unknown:
        what = f" for model '{model}'" if model else ""
        raise ZsgmError(f"{flag or source}: unknown hyper-parameter(s) {unknown}{what}; known: "
                        f"{', '.join(sorted(known))}")
    for key, value in values.items():
        check_value(HP.get(key, Param("any")), value, key if flag else f"hp.{key}",
                    _setting(flag, key, value, source))


def classifier_options(name: str) -> dict[str, Param]:
    """The options of classifier ``name``: the fields of its ``Options``, typed by :data:`CLF` or by
    their annotations."""
    from zsgm.evaluate.classifiers import CLASSIFIERS

    fields = dataclasses.fields(CLASSIFIERS.get_entry(name).cls.Options)
    return {f.name: CLF.get(f.name) or inferred(f.type) for f in fields}


def check_clf_layer(classifier: str, values: dict, source: str, flag: str | None = None,
                    prefix: str = "clf_hp.") -> None:
    if not isinstance(values, dict):
        raise ZsgmError(f"{source}: classifier options must be a mapping of KEY: VALUE, got {_show(values)}")
    options = classifier_options(classifier)
    unknown = sorted(k for k in values if k not in options)
    if unknown:
        raise ZsgmError(f"{flag or source}: unknown option(s) {unknown} for classifier '{classifier}'; known: "
                        f"{', '.join(sorted(options))}")
    for key, value in values.items():
        check_value(options[key], value, key if flag else prefix + key, _setting(flag, key, value, source))


def check_extract_args(args) -> None:
    """``zsgm extract``'s numbers, paths, optimiser, schedule and device, before any image is listed or a
    model built."""
    for dest, param in EXTRACT.items():
        if hasattr(args, dest):
            value = getattr(args, dest)
            check_value(param, value, dest, "--" + dest.replace("_", "-"))
    for dest in ("out", "weights", "data_root"):
        check_path(getattr(args, dest, None), "--" + dest.replace("_", "-"))
    if getattr(args, "opt", None) is not None:
        check_optimizer(args.opt)
    sched = getattr(args, "sched", None)
    if sched is not None and str(sched).lower() not in SCHEDULES:
        raise ZsgmError(f"--sched {sched}: not a timm learning-rate schedule; use one of {', '.join(SCHEDULES)}")
    check_device(getattr(args, "device", None))


def check_optimizer(name: str, flag: str = "--opt") -> None:
    """A timm optimiser name (``adamw``, ``sgd``, ``lookahead_adamw`` ...)."""
    from timm.optim import list_optimizers

    import difflib

    known = list_optimizers()
    base = str(name).lower().split("_")[-1]
    if not name or base not in known:
        close = difflib.get_close_matches(base, known, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ZsgmError(f"{flag} {name}: unknown timm optimizer; {hint}common ones: adamw, sgd, adam, lamb, lion "
                        f"({len(known)} in timm.optim.list_optimizers())")


# ---------------------------------------------------------------- flags, paths, output locations
def check_flags(args, table: dict[str, Param]) -> None:
    """Each of ``args``' attributes named in ``table`` (a verb's numeric flags, ``None`` when left out)
    against its declaration; the message names the flag (``--seeds must be an integer >= 1 ...``)."""
    for dest, param in table.items():
        if hasattr(args, dest):
            check_value(param, getattr(args, dest), dest, "--" + dest.replace("_", "-"))


def check_path(value, flag: str) -> None:
    """A path flag given as an empty (or blank) string is an error, never the default."""
    if value is not None and not str(value).strip():
        raise ZsgmError(f"{flag} is empty: give a path, or leave {flag} out for the default")


def check_output_file(path, flag: str) -> None:
    """Prove before any work that ``path`` can be written (atomically: a temp file beside it, then a
    rename): not a directory, its folder creatable and writable. Nothing is left behind."""
    from pathlib import Path

    check_path(path, flag)
    p = Path(path)
    if p.is_dir():
        raise ZsgmError(f"{flag} {p}: is a directory, not a file; give a file path (or move the directory away)")
    if p.exists() and not p.is_file():
        raise ZsgmError(f"{flag} {p}: is not a regular file (a device or a pipe?); give a file path")
    check_output_dir(p.parent, flag, of=p)


def check_output_dir(path, flag: str, of=None) -> None:
    """Prove before any work that files can be created in folder ``path`` (created if missing)."""
    from pathlib import Path

    from zsgm.evaluate.records import probe_folder

    check_path(path, flag)
    problem = probe_folder(Path(path))
    if problem:
        raise ZsgmError(f"{flag} {of if of is not None else path}: {problem}")


def describe(params: dict[str, Param], names: Iterable[str] | None = None) -> str:
    """``key: allowed`` lines, for help texts and docs."""
    return "\n".join(f"{k}: {params[k].allowed()}" for k in (names or sorted(params)))

