"""``zsgm datasets | models | classifiers``: registered names, one per line."""
from __future__ import annotations

HELP = "list registered names"
HELPS = {
    "datasets": "list dataset names, one per line (--long for counts)",
    "models": "list generative model names, one per line (--long for a description)",
    "classifiers": "list final classifier names, one per line",
}


def add_arguments(parser, verb: str) -> None:
    parser.add_argument("--long", action="store_true", help="add a description to each name")


def run(args) -> int:
    if args.verb == "datasets":
        from extract.specs import DATASETS

        rows = [(s.name, f"{s.description}; {s.n_seen}+{s.n_unseen} classes, {s.n_images} images")
                for s in DATASETS.values()]
        rows.append(("demo", "the bundled demo FeatureSet (data/demo/)"))
    elif args.verb == "models":
        from generate.registry import MODELS

        rows = [(name, entry.description) for name, entry in MODELS.items()]
    else:
        from evaluate.classifiers import CLASSIFIERS

        rows = [(name, entry.description) for name, entry in CLASSIFIERS.items()]
    width = max(len(r[0]) for r in rows)
    for name, desc in rows:
        print(f"{name:<{width}}  {desc}" if args.long else name)
    return 0
