"""``zsgm datasets | models | classifiers``: registered names, one per line."""
from __future__ import annotations

HELP = "list registered names"
HELPS = {
    "datasets": "list the datasets with what the data root holds for each (read from the files; --names for "
                "bare names, --long for the expected counts; `zsgm data check` for details)",
    "models": "list generative model names, one per line (--long for a description)",
    "classifiers": "list final classifier names, one per line",
}


def add_arguments(parser, verb: str) -> None:
    parser.add_argument("--long", action="store_true", help="add a description to each name")
    if verb == "datasets":
        parser.add_argument("--names", action="store_true", help="names only, one per line")
        parser.add_argument("--data-root", metavar="DIR", help="the folder holding the dataset folders "
                                                               "(default $ZSGM_DATA, then <project>/data)")


def run(args) -> int:
    if args.verb == "datasets":
        from zsgm.extract.specs import DATASETS

        if args.names:
            print("\n".join(list(DATASETS) + ["demo"]))
            return 0
        from zsgm.core.project import data_root
        from zsgm.extract.datacheck import check

        root = data_root(args.data_root)
        print(f"# data root {root} (--data-root / $ZSGM_DATA)")
        rows = []
        for s in DATASETS.values():
            status = check(s.name, root).summary()
            desc = f"; {s.description}; {s.n_seen}+{s.n_unseen} classes, {s.n_images} images" if args.long else ""
            rows.append((s.name, status + desc))
        rows.append(("demo", "the bundled demo FeatureSet (data/demo/)"))
        width = max(len(r[0]) for r in rows)
        for name, desc in rows:
            print(f"{name:<{width}}  {desc}")
        return 0
    elif args.verb == "models":
        from zsgm.generate.registry import MODELS

        rows = [(name, entry.description) for name, entry in MODELS.items()]
    else:
        from zsgm.evaluate.classifiers import CLASSIFIERS

        rows = [(name, entry.description) for name, entry in CLASSIFIERS.items()]
    width = max(len(r[0]) for r in rows)
    for name, desc in rows:
        print(f"{name:<{width}}  {desc}" if args.long else name)
    return 0
