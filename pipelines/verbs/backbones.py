"""``zsgm backbones``: the registered backbones with feature size, input size and local weights."""
from __future__ import annotations

import argparse

HELP = "list backbones (timm names) with feature size, input size and the weights found locally"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", help="timm names to describe (default: the seed study's backbones)")
    p.add_argument("--json", action="store_true", help="one JSON object per backbone")


def run(args: argparse.Namespace) -> int:
    import json

    from zsgm.extract import backbones, weights

    names = args.names or list(backbones.SEED_BACKBONES)
    rows = []
    for name in names:
        d = backbones.describe(name)
        found = weights.available(name, any_tag=True)
        d["weights"] = (f"{found.source}: {found.path}" if found else "none here (expects " +
                        " or ".join(p.name for p in weights.expected_files(name) if p.suffix == ".safetensors") +
                        " in weights/; " + ("offline)" if weights.offline() else "timm downloads it on first use)"))
        d["name"] = backbones.tagged_name(name)
        rows.append(d)
    if args.json:
        for d in rows:
            print(json.dumps(d))
        return 0
    w = max(len(d["name"]) for d in rows)
    print(f"{'backbone':<{w}}  {'dim':>5}  {'input':>7}  weights")
    for d in rows:
        print(f"{d['name']:<{w}}  {d['feature_dim']:>5}  {d['input_size'][-1]:>4} px  {d['weights']}")
    return 0
