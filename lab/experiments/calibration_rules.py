"""Which calibration rule transfers from the validation problem to the test problem?

Every validation-selected run keeps, in ``runs/<id>/scores.safetensors``, the test scores of its
final classifier and the validation scores its γ was chosen on (at the chosen epoch). This
replays candidate rules on those stored scores: each rule picks γ from the validation scores
only, and the γ is then applied to the run's own test scores. The epoch stays the one the run
chose (with max_h), so this isolates calibration; 'γ on test' is the ceiling no rule can pass.

Run it on runs whose test sets may be read for choosing, i.e. the demo-shaped proxies
(``demo_proxies.py --keep-runs DIR``, built from CUB-50's trainval images), never to choose on the
demo's or CUB-50's own test sets:

    python lab/experiments/demo_proxies.py --seeds 0 1 --keep-runs /tmp/kept 'cramer={}' ...
    python lab/experiments/calibration_rules.py /tmp/kept
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from safetensors.torch import load_file


from zsgm.evaluate.metrics import gamma_grid, gzsl_evaluate  # noqa: E402


def _curve(t: dict, prefix: str, grid: torch.Tensor) -> list[tuple[float, float, float, float]]:
    """(γ, U, S, H) over ``grid`` for the scores under ``prefix`` ('' test, 'val_' validation)."""
    out = []
    for g in sorted(grid.tolist()):
        r = gzsl_evaluate(t[prefix + "scores_seen"], t[prefix + "labels_seen"], t[prefix + "scores_unseen"],
                          t[prefix + "labels_unseen"], t[prefix + "seen_mask"], g)
        out.append((g, r.U, r.S, r.H))
    return out


def weighted_h(u: float, s: float, w: float) -> float:
    """Weighted harmonic mean, weight ``w`` on U (0.5: H)."""
    return 0.0 if u <= 0 or s <= 0 else 1.0 / (w / u + (1 - w) / s)


def argmax(curve: list, key=lambda c: c[3]) -> float:
    """The γ of ``curve`` with the best ``key`` (default H); ties go to the smaller γ, as in best_gamma."""
    best = max(key(c) for c in curve)
    return min(c[0] for c in curve if key(c) >= best - 1e-9)


def rules() -> dict:
    """name -> function(validation curve) -> γ."""
    def tolerant(t):  # the largest γ whose validation H is within t points of the best
        return lambda curve: max(c[0] for c in curve if c[3] >= max(x[3] for x in curve) - t)

    out = {"max_h": argmax,
           "balance": lambda curve: min(curve, key=lambda c: (abs(c[1] - c[2]), -c[3]))[0]}
    for w in (0.6, 0.67, 0.75):
        out[f"weighted_u{w}"] = (lambda w: lambda curve: argmax(curve, lambda c: weighted_h(c[1], c[2], w)))(w)
    for k in (0.75, 0.9, 1.25, 1.5, 2.0):
        out[f"max_h_x{k}"] = (lambda k: lambda curve: k * argmax(curve))(k)
    for t in (1.0, 2.0):
        out[f"within_{t:g}"] = tolerant(t)

    def smoothed(curve, w=2):  # the argmax of H averaged over 2w+1 neighbouring grid points
        hs = [c[3] for c in curve]
        sm = [sum(hs[max(0, i - w):i + w + 1]) / len(hs[max(0, i - w):i + w + 1]) for i in range(len(hs))]
        return curve[max(range(len(sm)), key=lambda i: (sm[i], -i))][0]
    out["smoothed_2"] = smoothed
    return out


def bootstrap_gammas(t: dict, grid: torch.Tensor, n: int = 40) -> torch.Tensor:
    """The H-best γ of each of ``n`` class-stratified bootstrap resamples of the validation images: their
    mean or median bags the argmax, whose variance on a few validation classes transfer may lose."""
    g = torch.Generator().manual_seed(0)

    def resample(labels):
        idx = []
        for c in torch.unique(labels):
            rows = torch.nonzero(labels == c).flatten()
            idx.append(rows[torch.randint(len(rows), (len(rows),), generator=g)])
        return torch.cat(idx)

    picks = []
    for _ in range(n):
        i, j = resample(t["val_labels_seen"]), resample(t["val_labels_unseen"])
        sub = {"val_scores_seen": t["val_scores_seen"][i], "val_labels_seen": t["val_labels_seen"][i],
               "val_scores_unseen": t["val_scores_unseen"][j], "val_labels_unseen": t["val_labels_unseen"][j],
               "val_seen_mask": t["val_seen_mask"]}
        picks.append(argmax(_curve(sub, "val_", grid)))
    return torch.tensor(picks)


def _on_test(t: dict, gamma: float) -> dict:
    r = gzsl_evaluate(t["scores_seen"], t["labels_seen"], t["scores_unseen"], t["labels_unseen"], t["seen_mask"],
                      gamma)
    return {"gamma": gamma, "U": r.U, "S": r.S, "H": r.H}


def replay(run_dir: Path) -> dict | None:
    path = run_dir / "scores.safetensors"
    if not path.is_file():
        return None
    t = load_file(str(path))
    if "val_scores_seen" not in t:
        return None
    val_grid = gamma_grid(t["val_scores_seen"], t["val_scores_unseen"], t["val_seen_mask"])
    val_curve = _curve(t, "val_", val_grid)
    out = {name: _on_test(t, rule(val_curve)) for name, rule in rules().items()}
    picks = bootstrap_gammas(t, val_grid)  # one set of resamples serves both summaries
    out["bootstrap_mean"] = _on_test(t, float(picks.mean()))
    out["bootstrap_median"] = _on_test(t, float(picks.median()))
    test_grid = gamma_grid(t["scores_seen"], t["scores_unseen"], t["seen_mask"])
    best = max(_curve(t, "", test_grid), key=lambda c: c[3])
    out["γ on test"] = {"gamma": best[0], "U": best[1], "S": best[2], "H": best[3]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kept", type=Path, help="the folder given to demo_proxies.py --keep-runs")
    a = ap.parse_args()
    runs = []  # <kept>/<variant>-<proxy>/runs/<id>/record.json
    for rec in sorted(a.kept.glob("*/runs/*/record.json")):
        r = json.loads(rec.read_text())
        if r.get("selection") == "validation":
            runs.append({"variant": rec.parents[2].name.rsplit("-proxy", 1)[0], "run_dir": str(rec.parent)})
    table: dict = {}
    for r in runs:
        out = replay(Path(r["run_dir"]))
        if out is None:
            continue
        for name, res in out.items():
            table.setdefault(r["variant"], {}).setdefault(name, []).append(res)
    names = list(rules()) + ["bootstrap_mean", "bootstrap_median", "γ on test"]
    variants = list(table)
    print("validation-selected test H (mean over proxies x seeds), by calibration rule; the epoch is the run's own")
    print(f"{'rule':14s} " + " ".join(f"{v[:12]:>12s}" for v in variants) + f" {'mean':>8s} {'Δ max_h':>8s}")
    base = {v: statistics.mean(x["H"] for x in table[v]["max_h"]) for v in variants}
    for name in names:
        hs = {v: statistics.mean(x["H"] for x in table[v][name]) for v in variants}
        mean = statistics.mean(hs.values())
        print(f"{name:14s} " + " ".join(f"{hs[v]:12.2f}" for v in variants)
              + f" {mean:8.2f} {mean - statistics.mean(base.values()):+8.2f}")
    print(f"runs per variant: " + ", ".join(f"{v} {len(table[v]['max_h'])}" for v in variants))
    print("mean γ, max_h against γ on test: " + ", ".join(
        f"{v} {statistics.mean(x['gamma'] for x in table[v]['max_h']):.2f}/"
        f"{statistics.mean(x['gamma'] for x in table[v]['γ on test']):.2f}" for v in variants))


if __name__ == "__main__":
    main()
