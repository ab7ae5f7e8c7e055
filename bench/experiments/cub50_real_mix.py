"""The prototype classifier's real_mix at 0 on the staged CUB-50 FeatureSet: the quality suite's own
cells (configs/quality.yaml, its CPU budget, validation selection) for cramer + tricks, none and ridge
x 3 seeds, with real_mix 0 set over them. Prints validation H (what selection sees) and test H, one
JSON line per run; real_mix 0.5's side is the suite's own records (quality/results/<date>.jsonl).

    python bench/experiments/cub50_real_mix.py
"""
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipelines.quality import QualityRequest, plan  # noqa: E402


def one(cell):
    import logging

    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    from pipelines.config import RunConfig
    from pipelines.gzsl import run_gzsl

    params = {**cell.params, "clf_hp": {**cell.params["clf_hp"], "real_mix": 0.0}}
    work = Path(tempfile.mkdtemp(prefix="real-mix"))
    r = run_gzsl(RunConfig.from_dict(params), store=work / "runs.jsonl", runs_dir=work / "runs", progress=False)
    return {**cell.labels, "real_mix": 0.0, "seed": params["seed"], "val_H": r["val"]["H"], "U": r["U"],
            "S": r["S"], "H": r["H"]}


if __name__ == "__main__":
    cells, _, _ = plan(QualityRequest(budget="cpu", configurations=["cramer+tricks", "none", "ridge"],
                                      selections=("validation",), demo=False))
    with ProcessPoolExecutor(2) as pool:
        for r in pool.map(one, [c for c in cells.cells if c.labels["featureset"] == "cub50_lite0"]):
            print(json.dumps(r), flush=True)
