"""``zsgm weights fetch|list``: fill timm's hub cache for an offline cluster; show what is found."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "pretrained backbone weights: fetch them into timm's hub cache (or a weights/ folder), list what is found"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = sub.add_parser("fetch", help="download checkpoints into timm's hub cache (what timm itself would fetch)",
                       description="Download the checkpoints of the named backbones (timm names, optionally "
                                   "name.tag; an untagged study backbone means the study's tag) into timm's hub "
                                   "cache, so that a machine or cluster sharing that cache (HF_HOME) runs offline.")
    f.add_argument("names", nargs="*", metavar="BACKBONE", help="timm names, e.g. vit_base_patch16_224 "
                                                                "or convnext_tiny.fb_in1k")
    f.add_argument("--study", action="store_true", help="all backbones of the seed study (see `zsgm backbones`)")
    f.add_argument("--into", metavar="DIR", help="also copy each checkpoint to DIR/<name>.<tag>.<ext> "
                                                 "(e.g. the weights/ folder of an offline checkout)")
    f.add_argument("--force", action="store_true", help="download again even if a copy is found")
    ls = sub.add_parser("list", help="where each backbone's weights would come from (nothing is downloaded)")
    ls.add_argument("names", nargs="*", metavar="BACKBONE", help="timm names (default: the study's backbones)")


def _names(args: argparse.Namespace) -> list[str]:
    from zsgm.extract import backbones
    from zsgm.core.errors import ZsgmError

    names = list(args.names)
    if getattr(args, "study", False) or (args.action == "list" and not names):
        names += [n for n in backbones.SEED_BACKBONES if n not in names]
    if not names:
        raise ZsgmError("name at least one backbone (e.g. `zsgm weights fetch vit_base_patch16_224`) or pass --study")
    return names


def run(args: argparse.Namespace) -> int:
    from zsgm.extract import backbones, weights
    from zsgm.core.errors import ZsgmError

    names = _names(args)
    for n in names:
        backbones.check_name(n)
        backbones.pretrained_cfg(n)  # an unknown tag is refused before any download
    if args.action == "list":
        for n in names:
            w = weights.available(n, any_tag=True)
            shown = backbones.tagged_name(n)
            note = backbones.tag_note(shown)
            where = f"{w.source}: {w.path}" if w else ("missing (offline: nothing is downloaded)" if weights.offline()
                                                      else "not on this machine; timm downloads it on first use")
            print(f"{shown}  {where}" + (f"  [{note}]" if note else ""))
        return 0
    if weights.offline():
        raise ZsgmError("HF_HUB_OFFLINE is set: `zsgm weights fetch` downloads; run it on a machine that is online "
                        "(unset HF_HUB_OFFLINE there)")
    into = Path(args.into).expanduser() if args.into else None
    for n in names:
        got, downloaded = weights.fetch(n, into=into, force=args.force)
        size = got.path.stat().st_size / 2 ** 20
        note = backbones.tag_note(got.tagged)
        print(f"{got.tagged}: {'downloaded' if downloaded else 'already present'} {got.path} "
              f"({size:.1f} MiB, sha256 {got.sha256()[:16]}...)" + (f"  [{note}]" if note else ""))
    return 0
