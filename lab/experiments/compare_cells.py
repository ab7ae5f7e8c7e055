"""A change's cells (cub50_cells.py's JSON lines) against the quality suite's own validation-selected
records of the same FeatureSet, configuration and seed: validation H (what selection sees) and test H,
before -> after, with the paired difference and how many seeds rose.

    python lab/experiments/compare_cells.py lab/results/2026-12-02-cub50-prior.jsonl \\
        --against quality/results/2026-12-06.jsonl
"""
import argparse
import json
import statistics
from pathlib import Path


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cells", type=Path)
    ap.add_argument("--against", type=Path, required=True, help="the quality suite's records (.jsonl)")
    a = ap.parse_args()
    before = {(r["featureset"], r["configuration"], r["seed"]): r for r in load(a.against)
              if r.get("selection") == "validation" and r.get("status", "ok") == "ok"}
    groups: dict[tuple, list[tuple[dict, dict]]] = {}
    for r in load(a.cells):
        old = before.get((r["featureset"], r["configuration"], r["seed"]))
        if old is not None:
            groups.setdefault((r["featureset"], r["configuration"]), []).append((old, r))
    print("| FeatureSet | configuration | seeds | validation H | test H | test H, paired | seeds higher |")
    print("|---|---|---|---|---|---|---|")
    for (fs, conf), pairs in groups.items():
        mean = lambda xs: statistics.mean(xs)  # noqa: E731
        val = (mean(o["val"]["H"] for o, _ in pairs), mean(n["val_H"] for _, n in pairs))
        test = (mean(o["H"] for o, _ in pairs), mean(n["H"] for _, n in pairs))
        diff = [n["H"] - o["H"] for o, n in pairs]
        print(f"| {fs} | {conf} | {len(pairs)} | {val[0]:.1f} -> {val[1]:.1f} | {test[0]:.1f} -> {test[1]:.1f} "
              f"| {mean(diff):+.1f} | {sum(d > 0 for d in diff)} of {len(diff)} |")


if __name__ == "__main__":
    main()
