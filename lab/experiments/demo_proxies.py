"""Demo-shaped proxy problems, for choosing the demo's budget without its test set.

The bundled demo has 4 validation classes: its validation H ranks settings little better than
chance, and its test set must not be tuned on. This builds problems shaped like it (20 classes:
10 seen, 4 of them validation classes, and 10 unseen; about 360 / 100 / 450 trainval / test-seen /
test-unseen images) from the trainval images of the staged CUB-50 FeatureSet only: its 40 seen
classes, so that no test image of CUB-50 or of the demo (whose 10 unseen classes are CUB-50's
test-unseen classes) is ever read. Each proxy runs under the demo's dataset layer, as the demo
does. For each variant it prints the mean validation-selected test H over proxies x seeds (and
the oracle's with --oracle) and appends every run to a JSON-lines file:

    python lab/experiments/demo_proxies.py --seeds 0 1 --out /tmp/proxies.jsonl \\
        'default={}' 'no mix={"clf_hp": {"real_mix": 0}}' 'ridge={"model": "ridge"}'

A variant is a JSON object of RunConfig fields (model, classifier, noise, hp, clf_hp, epochs,
eval_every).
The proxies' classes are drawn at random, so their pseudo-unseen classes often have a same-genus
seen class, where the demo's unseen classes rarely do and are siblings of one another (imagenet_head.py
and quality/README.md): they test a setting's behaviour at the demo's size, not on the demo's harder
unseen classes.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]

from zsgm.extract.featureset import FeatureSet  # noqa: E402

CUB50 = ROOT.parent / "shared" / "data" / "features" / "cub50_lite0.safetensors"


def build_proxies(source: Path, out_dir: Path, n: int) -> list[Path]:
    src = FeatureSet.load(source, mmap_features=False)
    tv = src.trainval_loc
    classes = torch.unique(src.labels[tv])
    paths = []
    for k in range(n):
        g = torch.Generator().manual_seed(100 + k)
        pick = classes[torch.randperm(len(classes), generator=g)[:20]]
        seen, unseen = pick[10:], pick[:10]
        order = torch.cat([seen, unseen])  # proxy class i = source class order[i]
        rows, labels, trainval, test_seen, test_unseen = [], [], [], [], []
        for new, cls in enumerate(order.tolist()):
            idx = tv[src.labels[tv] == cls]
            idx = idx[torch.randperm(len(idx), generator=g)]
            pos = list(range(len(rows), len(rows) + len(idx)))
            rows += idx.tolist()
            labels += [new] * len(idx)
            if new >= len(seen):
                test_unseen += pos
            else:  # the demo's split: about 22 % of a seen class's images are test-seen
                k_test = max(1, round(0.22 * len(idx)))
                test_seen += pos[:k_test]
                trainval += pos[k_test:]
        fs = FeatureSet(src.features[torch.tensor(rows)].clone(), torch.tensor(labels),
                        src.attributes[order].clone(), torch.tensor(sorted(trainval)),
                        torch.tensor(sorted(test_seen)), torch.tensor(sorted(test_unseen)),
                        extra={"val_classes": torch.arange(4)},  # 4 of the 10 seen classes, as in the demo
                        class_names=[src.class_names[i] for i in order.tolist()],
                        meta={**{k: v for k, v in src.meta.items() if k != "image_files"}, "partial": "proxy"})
        paths.append(fs.save(out_dir / f"proxy{k}.safetensors"))
    return paths


def run_one(job: tuple) -> dict:
    path, name, variant, selection, seed, keep = job
    torch.set_num_threads(1)
    import logging

    logging.disable(logging.WARNING)
    import zsgm.pipelines.config as config
    from zsgm.pipelines.gzsl import run_gzsl

    config.DEMO_DIR = Path(path).parent  # the proxies stand in for the demo: they get its layer
    work = Path(keep) / f"{name}-{Path(path).stem}" if keep else Path(tempfile.mkdtemp(prefix="proxy-run"))
    cfg = config.RunConfig(features=str(path), seed=seed, selection=selection, **variant)
    t0 = time.perf_counter()
    r = run_gzsl(cfg, store=work / "runs.jsonl", runs_dir=work / "runs", progress=False)
    return {"variant": name, "proxy": Path(path).stem, "selection": selection, "seed": seed,
            "U": r["U"], "S": r["S"], "H": r["H"], "val_H": r["val"].get("H"), "epochs": r["epochs"],
            "gamma": r["gamma"], "seconds": round(time.perf_counter() - t0, 1),
            "run_dir": str(work / "runs" / r["id"]) if keep else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", help="NAME=JSON (RunConfig fields)")
    ap.add_argument("--proxies", type=int, default=6)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--oracle", action="store_true", help="also the oracle (epoch and γ picked on test)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("demo_proxies.jsonl"))
    ap.add_argument("--keep-runs", type=Path, default=None,
                    help="keep every run's folder (scores.safetensors: test and validation scores) here")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    variants = [(v.split("=", 1)[0], json.loads(v.split("=", 1)[1])) for v in a.variants]
    paths = build_proxies(CUB50, Path(tempfile.mkdtemp(prefix="proxies")), a.proxies)
    selections = ["validation"] + (["oracle"] if a.oracle else [])
    keep = str(a.keep_runs.resolve()) if a.keep_runs else None
    jobs = [(str(p), name, v, s, seed, keep) for name, v in variants for s in selections for seed in a.seeds for p in paths]
    with ProcessPoolExecutor(a.jobs) as pool:
        runs = list(pool.map(run_one, jobs))
    with a.out.open("a") as fh:
        for r in runs:
            fh.write(json.dumps(r) + "\n")
    print(f"{'variant':24s} {'selection':10s} {'U':>6s} {'S':>6s} {'H':>6s} {'± std':>6s} {'val H':>6s} {'s/run':>6s}")
    for name, _ in variants:
        for s in selections:
            rs = [r for r in runs if r["variant"] == name and r["selection"] == s]
            mean = {k: statistics.mean(r[k] for r in rs) for k in ("U", "S", "H", "seconds")}
            val = statistics.mean(r["val_H"] for r in rs) if s == "validation" else float("nan")
            print(f"{name:24s} {s:10s} {mean['U']:6.2f} {mean['S']:6.2f} {mean['H']:6.2f} "
                  f"{statistics.pstdev(r['H'] for r in rs):6.2f} {val:6.2f} {mean['seconds']:6.1f}")


if __name__ == "__main__":
    main()
