"""The quality suite's own CUB-50 cells (configs/quality.yaml, its CPU budget, validation selection)
with settings set over them: what a change does on the staged real FeatureSet, validation H (what
selection sees) beside test H, one JSON line per run. The unchanged side is the suite's own records
(quality/results/<date>.jsonl).

    python lab/experiments/cub50_cells.py --configurations cramer+tricks none ridge \
        --set '{"clf_hp": {"real_mix": 0.0}}'          # records: git show 43e331b:bench/results/2026-12-02-cub50-real-mix-0.jsonl
    python lab/experiments/cub50_cells.py --configurations cramer+tricks f-CLSWGAN \
        --set '{"epochs": 20}'                          # records: git show 43e331b:bench/results/2026-12-02-cub50-epochs-20.jsonl

``--set`` is a JSON object of RunConfig fields; ``hp`` and ``clf_hp`` are merged into the cell's own.
``--features FILE`` runs the same cells on another FeatureSet instead (e.g. sentence_featureset.py's).
"""
import argparse
import json
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


from zsgm.pipelines.quality import QualityRequest, plan  # noqa: E402

MERGED = ("hp", "clf_hp")  # dict fields merged into the cell's own rather than replaced


def over(params: dict, changes: dict) -> dict:
    return {**params, **changes, **{k: {**params.get(k, {}), **changes[k]} for k in MERGED if k in changes}}


def one(job):
    cell, changes = job
    import logging

    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    from zsgm.pipelines.config import RunConfig
    from zsgm.pipelines.gzsl import run_gzsl

    params = over(cell.params, changes)
    work = Path(tempfile.mkdtemp(prefix="cub50-cells"))
    r = run_gzsl(RunConfig.from_dict(params), store=work / "runs.jsonl", runs_dir=work / "runs", progress=False)
    return {**cell.labels, "set": changes, "seed": params["seed"], "val_H": r["val"]["H"], "val_gamma":
            r["val"]["gamma"], "epoch": r["epochs"], "gamma": r["gamma"], "U": r["U"], "S": r["S"], "H": r["H"],
            "zsl": r["zsl"], "seconds": r["seconds"]}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configurations", nargs="+", required=True, help="names from configs/quality.yaml")
    ap.add_argument("--set", default="{}", help="JSON object of RunConfig fields set over each cell")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--features", type=Path, default=None, help="another FeatureSet instead of CUB-50")
    args = ap.parse_args()
    changes = json.loads(args.set)
    extra = [str(args.features.resolve())] if args.features else []
    cells, _, _ = plan(QualityRequest(budget="cpu", configurations=args.configurations, features=extra,
                                      selections=("validation",), demo=False, staged=not extra))
    name = args.features.stem if args.features else "cub50_lite0"
    jobs = [(c, changes) for c in cells.cells
            if c.labels["featureset"] == name and c.params["seed"] in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        for r in pool.map(one, jobs):
            print(json.dumps(r), flush=True)
