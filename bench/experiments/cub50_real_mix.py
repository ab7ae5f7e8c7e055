"""The prototype classifier's real_mix at 0 on the staged CUB-50 FeatureSet, at the quality suite's CPU
budget (configs/quality.yaml), for cramer + tricks, none and ridge x seeds 0-2: validation H (what
selection sees) and test H, one JSON line per run. real_mix 0.5's side is the quality suite's own
records (quality/results/<date>.jsonl).

    python bench/experiments/cub50_real_mix.py
"""
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CUB50 = ROOT.parent / "shared" / "data" / "features" / "cub50_lite0.safetensors"


def one(job):
    name, model, noise, seed = job
    import logging

    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    from pipelines.config import RunConfig
    from pipelines.gzsl import run_gzsl

    work = Path(tempfile.mkdtemp(prefix="real-mix"))
    hp = {"hidden": 1024, "lr": 1e-3, **({"critic_iters": 2} if model == "cramer" else {})}
    cfg = RunConfig(features=str(CUB50), model=model, noise=noise, seed=seed, epochs=10, eval_every=5, hp=hp,
                    clf_hp={"min_steps": 300, "real_mix": 0.0})
    r = run_gzsl(cfg, store=work / "runs.jsonl", runs_dir=work / "runs", progress=False)
    return {"configuration": name, "real_mix": 0.0, "seed": seed, "val_H": r["val"]["H"], "U": r["U"],
            "S": r["S"], "H": r["H"]}


if __name__ == "__main__":
    jobs = [(name, model, noise, s) for name, model, noise in (("cramer+tricks", "cramer", "on"),
                                                               ("none", "none", "off"), ("ridge", "ridge", "off"))
            for s in range(3)]
    with ProcessPoolExecutor(2) as pool:
        for r in pool.map(one, jobs):
            print(json.dumps(r), flush=True)
