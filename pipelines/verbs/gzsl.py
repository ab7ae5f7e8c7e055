"""``zsgm gzsl``: one GZSL run; prints a final line ``U=.. S=.. H=..`` (or JSON with --json)."""
from __future__ import annotations

from zsgm.pipelines.config import NOISE, SELECTIONS, RunConfig

HELP = "train a generative model, synthesise unseen features, evaluate U/S/H (default: the bundled demo)"


def add_arguments(p) -> None:
    src = p.add_argument_group("data")
    src.add_argument("--data", default="demo", help="dataset name (zsgm datasets) or 'demo' (default)")
    src.add_argument("--features", help="a FeatureSet file (wins over --data/--backbone)")
    src.add_argument("--backbone", help="use the cached features data/features/<data>/<backbone>.safetensors")
    src.add_argument("--data-root", help="folder holding the dataset folders (default $ZSGM_DATA or data/)")
    m = p.add_argument_group("model")
    m.add_argument("--model", default="cramer", help="generative model (zsgm models); default cramer")
    m.add_argument("--classifier", default="prototype", help="softmax | knn | prototype (default)")
    m.add_argument("--epochs", type=int, help="generator epochs (default: the model's config)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--selection", default="validation", choices=SELECTIONS,
                   help="validation (default, honest) | oracle (best epoch on test, as the seed did) | fixed")
    m.add_argument("--noise", choices=NOISE, default="on",
                   help="the attribute-noise trick: on (default: the seen classes' attributes while training and "
                        "the unseen classes' when synthesising), off, train (training side only), synthesis "
                        "(synthesis side only)")
    m.add_argument("--no-noise", dest="noise", action="store_const", const="off", help="the same as --noise off")
    m.add_argument("--no-calibration", action="store_true", help="turn calibrated stacking off")
    m.add_argument("--normalise", default="auto", choices=("auto", "minmax", "l2", "none"),
                   help="auto (default): l2 for the cosine classifiers (prototype, knn), minmax for softmax")
    m.add_argument("--eval-every", type=int, help="validate every K epochs (default: the model config's)")
    m.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model hyper-parameter (repeatable), e.g. --set n_synth=200")
    m.add_argument("--clf-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a classifier hyper-parameter, e.g. --clf-set epochs=20")
    o = p.add_argument_group("output")
    o.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    o.add_argument("--json", action="store_true", help="print the record as one JSON object on the last line")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    o.add_argument("--keep-checkpoints", action="store_true",
                   help="keep the finished run's checkpoints (runs/<id>/*.pt); by default they are removed")


def config_from_args(args) -> RunConfig:
    from zsgm.pipelines.grid import parse_sets
    from zsgm.pipelines.params import CLI_FLAGS

    return RunConfig.from_dict({
        "data": args.data, "features": args.features, "backbone": args.backbone, "model": args.model,
        "classifier": args.classifier, "seed": args.seed, "epochs": args.epochs, "selection": args.selection,
        "noise": args.noise, "calibrate": not args.no_calibration, "normalise": args.normalise,
        "hp": parse_sets(args.set, "--set"), "clf_hp": parse_sets(args.clf_set, "--clf-set"),
        "eval_every": args.eval_every, "data_root": args.data_root, "device": args.device,
    }, "command line", flags=CLI_FLAGS)


def run(args) -> int:
    from zsgm.core.logs import show_progress
    from zsgm.pipelines.gzsl import final_line, record_json, run_gzsl

    record = run_gzsl(config_from_args(args), progress=show_progress(not args.no_progress))
    if not args.keep_checkpoints:
        from zsgm.evaluate.records import default_runs_dir
        from zsgm.pipelines.runner import drop_checkpoints

        drop_checkpoints(default_runs_dir(), record["id"])
    print(final_line(record))
    if args.json:
        print(record_json(record))
    return 0
