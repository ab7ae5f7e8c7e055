"""``zsgm data fetch|check``: get a benchmark root from the official archives; report what a root holds."""
from __future__ import annotations

import argparse

HELP = "benchmark data: fetch the official archives into a data root (checked, resumable), check what a root holds"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = sub.add_parser("fetch", help="download, check (sha256) and unpack a dataset's official archives",
                       description="Download the official archives of each DATASET (xlsa17 splits and features, "
                                   "the raw images and their metadata), check their checksums, resume a cut "
                                   "download, and unpack them into DIR/<DATASET folder>/ in the layout "
                                   "`zsgm extract` reads (see data/README.md). Parts already in place are skipped.")
    f.add_argument("datasets", nargs="+", metavar="DATASET", help="apy awa1 awa2 cub cub_sent flo sun")
    f.add_argument("--data-root", metavar="DIR", help="the folder that holds the dataset folders "
                                                      "(default $ZSGM_DATA, then <project>/data)")
    f.add_argument("--only", choices=["splits", "images"], help="only the xlsa17 split/feature files, or only the "
                                                                "raw images and their metadata")
    f.add_argument("--mirror", metavar="URL", help="fetch every archive as URL/<archive file name> instead of "
                                                   "from the official hosts (an institutional mirror)")
    f.add_argument("--sha256", action="append", metavar="FILE=HEX", help="pin an archive's sha256 (repeatable)")
    f.add_argument("--keep-archives", action="store_true", help="keep the downloaded image archives in "
                                                                "DIR/.downloads after unpacking")
    f.add_argument("--force", action="store_true", help="fetch and unpack again even if the files are in place")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    c = sub.add_parser("check", help="report per dataset what a data root holds (files, images per split, class "
                                     "order); nothing is trained")
    c.add_argument("datasets", nargs="*", metavar="DATASET", help="default: every dataset")
    c.add_argument("--data-root", metavar="DIR", help="default $ZSGM_DATA, then <project>/data")
    c.add_argument("--json", action="store_true", help="one JSON object per dataset")
    c.add_argument("--strict", action="store_true", help="exit 2 when a staged file's bytes differ from the known "
                   "xlsa17 release (by default they are reported: a re-saved or self-made copy may differ and be fine)")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from zsgm.extract import datacheck
    from zsgm.core.errors import ZsgmError
    from zsgm.core.logs import show_progress
    from zsgm.extract.specs import get_spec

    names = [get_spec(n).name for n in args.datasets]  # unknown names fail before anything is fetched
    if args.action == "fetch":
        from zsgm.extract import fetch

        pins = fetch.parse_pins(args.sha256)
        for name in names:
            rep = fetch.fetch(name, args.data_root, only=args.only, mirror=args.mirror, pins=pins,
                              keep_archives=args.keep_archives, force=args.force,
                              show=show_progress(not args.no_progress))
            print(f"{name}: fetched into {rep.folder}")
            for line in rep.lines:
                print(f"  {line}")
            print("\n".join(datacheck.check(name, args.data_root).lines()))
        return 0
    from zsgm.pipelines.params import check_path

    check_path(args.data_root, "--data-root")
    root = datacheck.check_root(args.data_root)  # a root that does not exist is an error, not "all absent"
    reports = datacheck.check_all(names or None, args.data_root)
    for r in reports:
        print(json.dumps(r.to_dict()) if args.json else "\n".join(r.lines()))
    staged = datacheck.root_featuresets(args.data_root)
    if args.json:
        print(json.dumps({"featuresets": staged, "folder": str(root / "features")}))
    else:
        by = {}
        for ds in staged.values():
            by[ds] = by.get(ds, 0) + 1
        print(f"{root / 'features'}: {len(staged)} FeatureSet(s)"
              + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(by.items()))})" if staged else ""))
    broken = [r.dataset for r in reports if r.status == "broken"]
    unusable = [r.dataset for r in reports if names and not r.ok]
    changed = [f for r in reports for f in r.changed]
    if changed and not args.strict:
        print(f"note: {', '.join(sorted(set(changed)))}: the bytes differ from the known xlsa17 release (corrupted, "
              f"or another copy); --strict makes this an error", file=sys.stderr)
    if changed and args.strict:  # the most specific fault first: named files whose bytes are not the release's
        unusable_too = sorted(set(broken + unusable))
        raise ZsgmError(f"{', '.join(sorted(set(changed)))}: the bytes differ from the known xlsa17 release "
                        f"(corrupted, or another copy; see above)"
                        + (f"; {', '.join(unusable_too)} not usable under this data root" if unusable_too else "")
                        + "; `zsgm data fetch DATASET --force` gets them again")
    if broken or unusable:
        raise ZsgmError(f"{', '.join(sorted(set(broken + unusable)))}: not usable under this data root (see above); "
                        f"`zsgm data fetch DATASET --data-root DIR` gets the official files")
    return 0
