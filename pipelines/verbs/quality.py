"""``zsgm quality``: the real-feature quality suite (the accuracy regression guard)."""
from __future__ import annotations

import json

from zsgm.pipelines.config import BUDGETS

HELP = ("run the standard configurations x seeds on every real FeatureSet at hand (validation-selected, the "
        "oracle beside it) and write mean ± std with the targets to quality/results/<date>.md")


def add_arguments(p) -> None:
    p.add_argument("--features", action="append", default=[], metavar="FILE",
                   help="another FeatureSet to measure (repeatable), besides the demo and the staged ones")
    p.add_argument("--seeds", type=int, help="seeds per configuration, 1..100 (default: the suite's, 3)")
    p.add_argument("--budget", default="auto", choices=BUDGETS,
                   help="auto: the seed's budget on a GPU, the declared CPU budget otherwise")
    p.add_argument("--configurations", help="comma-separated names from configs/quality.yaml (default: all)")
    p.add_argument("--selections", default="validation,oracle", help="validation,oracle (default both)")
    p.add_argument("--no-staged", action="store_true", help="skip <data root>/features/*.safetensors")
    p.add_argument("--no-demo", action="store_true", help="skip the bundled demo")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--jobs", type=int, default=1, help="local worker processes (one torch thread each), 1..256")
    p.add_argument("--store", help="records file (default quality/results/<date>.jsonl: resumes the same day)")
    p.add_argument("--out", help="report file (default quality/results/<date>.md)")
    p.add_argument("--no-run", action="store_true", help="render the report from the stored records only")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args) -> int:
    from zsgm.pipelines.params import QUALITY, check_device, check_flags, check_path
    from zsgm.pipelines.quality import QualityRequest, run as run_suite, to_markdown

    check_flags(args, QUALITY)  # --seeds 0 / --jobs 0: refused, never a silent default
    check_device(args.device)
    for f in args.features:
        check_path(f, "--features")

    split = (lambda s: [x.strip() for x in s.split(",") if x.strip()])
    report = run_suite(QualityRequest(
        features=args.features, seeds=args.seeds, budget=args.budget,
        configurations=split(args.configurations) if args.configurations else None,
        selections=tuple(split(args.selections)), staged=not args.no_staged, demo=not args.no_demo,
        device=args.device, jobs=args.jobs, store=args.store, out=args.out, run=not args.no_run))
    print(json.dumps(report, indent=1) if args.json else to_markdown(report))
    print(f"written to {report['markdown']}")
    return 0
