"""``zsgm gzsl``: one GZSL run; prints a final line ``U=.. S=.. H=..`` (or JSON with --json).

The flags' defaults are :class:`~pipelines.config.RunConfig`'s (one copy); ``--print-config`` prints the
settings a run would use (its budget applied) as YAML, and ``--config FILE.yaml`` runs such a file.
"""
from __future__ import annotations

import dataclasses
import logging
import sys

from zsgm.pipelines.config import BUDGETS, NOISE, SELECTIONS, RunConfig

HELP = "train a generative model, synthesise unseen features, evaluate U/S/H (default: the bundled demo)"
log = logging.getLogger("zsgm.gzsl")
D = RunConfig()  # the defaults, from the one place that declares them


def add_arguments(p) -> None:
    src = p.add_argument_group("data")
    src.add_argument("--data", default=D.data, help=f"dataset name (zsgm datasets) or 'demo' (default {D.data})")
    src.add_argument("--features", default=D.features, help="a FeatureSet file (wins over --data/--backbone)")
    src.add_argument("--backbone", default=D.backbone,
                     help="use the cached features data/features/<data>/<backbone>.safetensors")
    src.add_argument("--data-root", default=D.data_root,
                     help="folder holding the dataset folders (default $ZSGM_DATA or data/)")
    m = p.add_argument_group("model")
    m.add_argument("--model", default=D.model, help=f"generative model (zsgm models); default {D.model}")
    m.add_argument("--classifier", default=D.classifier, help=f"softmax | knn | prototype (default {D.classifier})")
    m.add_argument("--epochs", type=int, default=D.epochs, help="generator epochs (default: the budget's, else the "
                                                                "model config's)")
    m.add_argument("--seed", type=int, default=D.seed, help=f"default {D.seed}")
    m.add_argument("--selection", default=D.selection, choices=SELECTIONS,
                   help="validation (default, honest) | oracle (best epoch on test, as the seed did) | fixed")
    m.add_argument("--noise", choices=NOISE, default=D.noise,
                   help="the attribute-noise trick: on (default: the seen classes' attributes while training and "
                        "the unseen classes' when synthesising), off, train (training side only), synthesis "
                        "(synthesis side only)")
    m.add_argument("--no-noise", dest="noise", action="store_const", const="off", help="the same as --noise off")
    m.add_argument("--no-calibration", dest="calibrate", action="store_false", default=D.calibrate,
                   help="turn calibrated stacking off")
    m.add_argument("--normalise", default=D.normalise, choices=("auto", "minmax", "l2", "none"),
                   help="auto (default): l2 for the cosine classifiers (prototype, knn), minmax for softmax")
    m.add_argument("--eval-every", type=int, default=D.eval_every,
                   help="validate every K epochs (default: the budget's, else the model config's)")
    m.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model hyper-parameter (repeatable), e.g. --set n_synth=200")
    m.add_argument("--clf-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a classifier hyper-parameter, e.g. --clf-set epochs=20")
    m.add_argument("--budget", choices=BUDGETS, default=None,
                   help="run budget (pipelines/configs/budgets.yaml): seed, cpu, or auto (default: seed on a GPU, "
                        "the declared CPU budget otherwise; the demo keeps its own layer, cramer at 2 critic steps "
                        "and 20 epochs on a CPU); your flags go over it")
    c = p.add_argument_group("settings as a file")
    c.add_argument("--print-config", action="store_true",
                   help="print the run's settings (budget applied, defaults filled) as YAML and exit")
    c.add_argument("--config", metavar="FILE.yaml",
                   help="run the settings of a YAML file (the keys --print-config prints, checked the same way); "
                        "flags given beside it override its keys")
    o = p.add_argument_group("output")
    o.add_argument("--device", default=D.device, help="auto | cpu | cuda[:N]")
    o.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads (default: the cores free now, i.e. cores minus the 1-minute load "
                        "average, at least 1); numbers are reproducible at the same thread count, which the "
                        "record holds")
    o.add_argument("--out", metavar="DIR", help="folder the run's folder goes in (default runs/ inside the results "
                                                "folder $ZSGM_RESULTS names, else the project's runs/)")
    o.add_argument("--name", metavar="NAME", help="the run's folder name (default its id, <config hash>-s<seed>)")
    o.add_argument("--tensorboard", metavar="DIR",
                   help="also write the per-epoch scalars (losses, U/S/H) as TensorBoard events in DIR/<run name>/ "
                        "(needs the tensorboard extra)")
    o.add_argument("--json", action="store_true", help="print the record as one JSON object on the last line")
    o.add_argument("--no-progress", action="store_true",
                   help="no progress bars (a log line per epoch instead, as when the output is not a terminal)")
    o.add_argument("--keep-checkpoints", action="store_true",
                   help="keep the finished run's checkpoints (runs/<id>/*.pt); by default they are removed")


def _from_args(args) -> dict:
    """The RunConfig fields the flags give (defaults included)."""
    from zsgm.pipelines.grid import parse_sets

    return {
        "data": args.data, "features": args.features, "backbone": args.backbone, "model": args.model,
        "classifier": args.classifier, "seed": args.seed, "epochs": args.epochs, "selection": args.selection,
        "noise": args.noise, "calibrate": args.calibrate, "normalise": args.normalise,
        "hp": parse_sets(args.set, "--set"), "clf_hp": parse_sets(args.clf_set, "--clf-set"),
        "eval_every": args.eval_every, "data_root": args.data_root, "device": args.device,
    }


def settings(args) -> tuple[dict, str]:
    """(RunConfig fields, their source) from the flags, over ``--config``'s file when given: a flag
    left at its default leaves the file's value; ``--set``/``--clf-set`` go over the file's hp/clf_hp."""
    from zsgm.core.errors import ZsgmError
    from zsgm.pipelines.config import load_yaml

    given = _from_args(args)
    if not args.config:
        return {**given, "budget": args.budget or "auto"}, "command line"
    d = load_yaml(args.config)
    names = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ZsgmError(f"{args.config}: unknown key(s) {unknown}; known keys: {', '.join(sorted(names))} "
                        f"(zsgm gzsl --print-config prints them all)")
    for key in ("hp", "clf_hp"):
        if not isinstance(d.get(key) or {}, dict):
            raise ZsgmError(f"{args.config}: '{key}' must be a mapping of KEY: VALUE")
    out = dict(d)
    for key, value in given.items():
        if key in ("hp", "clf_hp"):
            out[key] = {**(d.get(key) or {}), **value}
        elif value != getattr(D, key) or key not in d:
            out[key] = value
    if args.budget is not None and d.get("budget") not in (None, args.budget):
        raise ZsgmError(f"--budget {args.budget}: {args.config} holds settings resolved under budget "
                        f"'{d['budget']}'; print them again with --budget {args.budget} --print-config, or drop "
                        f"--budget")
    out["budget"] = d.get("budget") or args.budget or "auto"
    return out, str(args.config)


def config_from_args(args) -> RunConfig:
    """The run's settings, resolved once: the flags (over --config's file), the named budget filled in
    under them, every field checked."""
    from zsgm.core.errors import ZsgmError
    from zsgm.pipelines.config import budget_params, dataset_layer
    from zsgm.pipelines.params import CLI_FLAGS

    d, source = settings(args)
    known = {f.name for f in dataclasses.fields(RunConfig)}
    if d.get("budget") not in BUDGETS:
        raise ZsgmError(f"{source}: budget {d.get('budget')!r}: unknown; use one of {', '.join(BUDGETS)}")
    layer = dataset_layer(RunConfig(**{k: v for k, v in d.items() if k in known}))  # which budget entry applies
    flags = CLI_FLAGS if source == "command line" else {}
    return RunConfig.from_dict(budget_params(d, layer), source, flags={**flags, "budget": "--budget"})


def config_yaml(cfg: RunConfig) -> str:
    """``cfg`` as the YAML ``--config`` reads (every field), with the resolved typed settings below it as
    comments (what the run computes with: the YAML layers, the budget and the overrides)."""
    import yaml

    from zsgm.pipelines.config import resolve

    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=False, allow_unicode=True)
    typed = resolve(cfg).to_dict()
    typed = {"dataset_layer": typed.pop("budget"), **typed}  # Resolved names its dataset layer 'budget'
    resolved = yaml.safe_dump(typed, sort_keys=False, default_flow_style=False, allow_unicode=True)
    head = (f"# zsgm gzsl settings (run id {cfg.run_id()}); run them with: zsgm gzsl --config FILE.yaml\n"
            f"# budget {cfg.budget} is applied in the values below (epochs, eval_every, hp, clf_hp)\n")
    return head + text + "# resolved (for reading; not read back):\n" + "".join(
        f"#   {line}\n" for line in resolved.splitlines())


def threads_for(args) -> int:
    from zsgm.core.errors import ZsgmError
    from zsgm.core.logs import free_cores

    if args.threads is None:
        return free_cores()
    if args.threads < 1:
        raise ZsgmError(f"--threads must be >= 1, got {args.threads}")
    return args.threads


def run(args) -> int:
    import torch

    from zsgm.pipelines.gzsl import check_run_name

    cfg = config_from_args(args)
    if args.name:
        check_run_name(args.name)
    if args.print_config:
        sys.stdout.write(config_yaml(cfg))
        return 0
    threads = threads_for(args)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # for this run only: a caller's process (tests, a notebook) keeps its own
    try:
        return _run(args, cfg, threads)
    finally:
        torch.set_num_threads(previous)


def _run(args, cfg, threads: int) -> int:
    from zsgm.core.logs import show_progress
    from zsgm.pipelines.gzsl import final_line, record_json, run_gzsl

    log.info("budget %s%s; %d torch thread(s)%s; device %s", cfg.budget,
             " (auto: seed on a GPU, cpu otherwise)" if (args.budget or "auto") == "auto" and not args.config else "",
             threads, "" if args.threads else " (the cores free now; --threads N to pin it)", cfg.device)
    record = run_gzsl(cfg, progress=show_progress(not args.no_progress), runs_dir=args.out, name=args.name,
                      keep_checkpoints=args.keep_checkpoints, tensorboard=args.tensorboard, checked=True)
    print(final_line(record))
    if args.json:
        print(record_json(record))
    return 0
