"""``zsgm bench``: engine throughput, zsgm vs the field's loop, time to result, extraction.

Writes ``bench/results/<date>-<host>.json`` and ``.md`` and prints the Markdown.
"""
from __future__ import annotations

HELP = ("benchmark: engine throughput, full runs vs the field's reference loop, time-to-H, extraction "
        "(writes bench/results/<date>-<host>.json/.md)")


def add_arguments(p) -> None:
    from zsgm.bench.suite import BUDGETS, BenchConfig

    D = BenchConfig()  # the defaults, from the one place that declares them
    p.add_argument("--device", default=D.device, help="auto (CUDA when present) | cpu | cuda[:N]; default %(default)s")
    p.add_argument("--quick", action="store_true", help="a small smoke run (well under a minute)")
    p.add_argument("--repeats", type=int, default=D.repeats,
                   help="repeats per figure (median, min, max); default %(default)s")
    p.add_argument("--ttr-repeats", type=int, help="repeats of the time-to-result runs (default: --repeats)")
    p.add_argument("--tag", default=D.tag, help="suffix of the result file name (bench/results/<date>-<host>-<tag>)")
    p.add_argument("--budget", default=D.budget, choices=("auto", *BUDGETS),
                   help="seed: the seed study's networks (hidden 4096) on CUB-sized data; cpu: the same data with "
                        "narrower networks for a small CPU; auto: seed on CUDA, cpu on CPU (bench/budgets.yaml); "
                        "default %(default)s")
    p.add_argument("--epochs", type=int, help="generator epochs of the compared runs (default: the budget's cap)")
    p.add_argument("--ttr-epochs", type=int, help="epochs of the time-to-result runs (default: the model's own "
                                                  "at the seed budget, the compared epochs otherwise)")
    p.add_argument("--eval-every", type=int, help="zsgm's validation cadence K (default: the budget's)")
    p.add_argument("--also-eval-every", default="", metavar="K[,K...]",
                   help="more zsgm cadences for the pairs section, each timed and scored against the same "
                        "reference runs (e.g. 1: zsgm also scores every epoch, as the reference does)")
    p.add_argument("--models", default=",".join(D.models),
                   help="comma-separated generative models (default %(default)s)")
    p.add_argument("--classifiers", default=",".join(D.classifiers),
                   help="comma-separated final classifiers (default %(default)s)")
    p.add_argument("--sections", default=",".join(D.sections),
                   help="comma-separated sections, run in this order: pairs (zsgm vs the reference), "
                        "ttr (time to result), throughput, demo (make gzsl end to end), extraction")
    p.add_argument("--demo-compare", default="", metavar="ARGS",
                   help="demo section: also run the demo with these extra zsgm gzsl arguments, seed by seed beside "
                        "it, and report the wall ratio (before / after a change), e.g. "
                        "\"--set critic_iters=5 --epochs 30\"")
    p.add_argument("--no-extraction", action="store_true", help="skip the extraction benchmark")
    p.add_argument("--no-speed-options", "--no-gpu-options", dest="no_speed_options", action="store_true",
                   help="skip the speed-option variants of the throughput section (bf16; on CUDA also eager "
                        "and compiled); --no-gpu-options is its old name")
    p.add_argument("--clf-set", action="append", default=[], metavar="KEY=VALUE",
                   help="final-classifier setting for zsgm's runs, not the reference's (repeatable), "
                        "e.g. cuda_graphs=off")
    p.add_argument("--backbones", default="", metavar="NAME[,NAME...]",
                   help="extraction section: timm backbones to time (default: the budget's)")
    p.add_argument("--images", type=int, help="extraction section: images per backbone (default: the budget's)")
    p.add_argument("--decode", default="", metavar="D[,D...]",
                   help="extraction section: decoders to compare, some of auto, pil, gpu, gpu-inline (the GPU "
                        "decoder without its background thread); default pil, on CUDA pil,gpu,gpu-inline")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", help="output folder (default bench/results)")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the Markdown")


def run(args) -> int:
    import json
    import shlex
    from pathlib import Path

    import torch

    from zsgm.bench.suite import BenchConfig, run_bench, to_markdown, write_results
    from zsgm.pipelines.grid import parse_sets

    check_args(args)
    if args.threads is not None:
        torch.set_num_threads(int(args.threads))
    sections = tuple(x for x in args.sections.split(",") if x and not (args.no_extraction and x == "extraction"))
    cfg = BenchConfig(device=args.device, quick=args.quick, repeats=args.repeats, budget=args.budget,
                      ttr_repeats=args.ttr_repeats, tag=args.tag,
                      epochs=args.epochs, eval_every=args.eval_every,
                      also_eval_every=tuple(int(k) for k in args.also_eval_every.split(",") if k.strip()),
                      ttr_epochs=args.ttr_epochs,
                      models=tuple(m for m in args.models.split(",") if m),
                      classifiers=tuple(c for c in args.classifiers.split(",") if c),
                      sections=sections, speed_options=not args.no_speed_options,
                      clf_set=parse_sets(args.clf_set, "--clf-set"), demo_compare=tuple(shlex.split(args.demo_compare)),
                      backbones=tuple(b for b in args.backbones.split(",") if b), images=args.images,
                      decoders=tuple(d for d in args.decode.split(",") if d),
                      out_dir=Path(args.out) if args.out else None)
    written: list = []

    def save(partial: dict) -> None:  # after every section: a run cut short keeps what it measured
        written[:] = write_results(partial, cfg.out_dir, cfg.tag)

    res = run_bench(cfg, on_section=save)
    jp, mp = written
    print(json.dumps(res, indent=2) if args.json else to_markdown(res))
    print(f"wrote {jp} and {mp}")
    return 0


def check_args(args) -> None:
    """Every flag of ``zsgm bench`` before the first measurement: numbers within their declared ranges
    (pipelines/params.py ``BENCH``), the device, the model and classifier names and their settings, the
    sections and the output folder (writable)."""
    from zsgm.bench.suite import RESULTS_DIR, SECTIONS, check_decoders
    from zsgm.core.errors import ZsgmError
    from zsgm.evaluate.classifiers import CLASSIFIERS
    from zsgm.generate.registry import get as get_model
    from zsgm.pipelines.grid import parse_sets
    from zsgm.pipelines.params import (BENCH, Int, check_device, check_flags, check_output_dir, check_value,
                                       classifier_options)

    check_flags(args, BENCH)
    check_device(args.device)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    classifiers = [c.strip() for c in args.classifiers.split(",") if c.strip()]
    if not models:
        raise ZsgmError("--models is empty: name at least one generative model (zsgm models)")
    if not classifiers:
        raise ZsgmError("--classifiers is empty: name at least one final classifier (zsgm classifiers)")
    for m in models:
        get_model(m)  # an unknown name fails here, with suggestions
    for c in classifiers:
        CLASSIFIERS.get_entry(c)
    clf_set = parse_sets(args.clf_set, "--clf-set")
    options = {c: classifier_options(c) for c in classifiers}
    for key, value in clf_set.items():  # each setting taken by some compared classifier, within its range
        takers = [c for c in classifiers if key in options[c]]
        if not takers:
            known = sorted({k for o in options.values() for k in o})
            raise ZsgmError(f"--clf-set {key}: no compared classifier ({', '.join(classifiers)}) has this option; "
                            f"known: {', '.join(known)}")
        for c in takers:
            check_value(options[c][key], value, key, f"--clf-set {key}={value}")
    sections = [x for x in args.sections.split(",") if x]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ZsgmError(f"--sections: unknown {', '.join(unknown)}; use some of {', '.join(SECTIONS)}")
    for k in (x.strip() for x in args.also_eval_every.split(",") if x.strip()):
        try:
            value = int(k)
        except ValueError:
            raise ZsgmError(f"--also-eval-every {args.also_eval_every}: {k!r} is not an integer") from None
        check_value(Int(1, BENCH["eval_every"].hi), value, "also_eval_every", "--also-eval-every")
    check_decoders(tuple(d for d in args.decode.split(",") if d))
    check_output_dir(args.out if args.out is not None else RESULTS_DIR, "--out")
