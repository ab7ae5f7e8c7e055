"""The prototype classifier's batch size on a CUB-sized planted GZSL problem.

A cramer generator (the bench's cpu budget, 5 epochs) synthesises 400 features per unseen
class once; the classifier is then fitted with each ``batch,lr,seed[,cuda_graphs]`` given and
scored on test (γ = 0 and the best γ). This decided the default batch (1024):

    python lab/experiments/prototype_batch.py 1024,5e-4,0 1024,1e-3,0 256,5e-4,0

and on a GPU it times the classifier's CUDA-graph steps against eager ones (a first fit warms up):

    python lab/experiments/prototype_batch.py --device cuda 1024,5e-4,0 1024,5e-4,0,off 1024,5e-4,0 256,5e-4,0,off
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


from zsgm.evaluate.classifiers.prototype import PrototypeClassifier  # noqa: E402
from zsgm.evaluate.metrics import best_gamma, gzsl_evaluate  # noqa: E402
from zsgm.evaluate.scoring import make_problem  # noqa: E402
from zsgm.generate.engine import Engine, TrainData  # noqa: E402
from zsgm.bench.suite import BUDGETS, make_featureset, model_config  # noqa: E402
from zsgm.pipelines.config import classifier_defaults  # noqa: E402


def main(specs: list[str], device: torch.device) -> None:
    fs = make_featureset(BUDGETS["seed"], seed=0)  # CUB-sized: 7057 / 1764 / 2967, 2048-d
    prob = make_problem(fs, fs.trainval_loc, fs.seen_classes, fs.unseen_classes, fs.test_seen_loc,
                        fs.test_unseen_loc, "minmax", device)
    config = model_config("cramer", BUDGETS["cpu"], n_synth=400)
    torch.manual_seed(0)
    eng = Engine("cramer", fs.feature_dim, prob.attributes.shape[1], config, device)
    eng.fit(TrainData(prob.train_features, prob.train_labels, prob.attributes), 5, progress=False)
    n = config.n_synth
    fake = eng.synthesize(prob.attributes[prob.unseen], n)
    x = torch.cat([prob.train_features, fake])
    y = torch.cat([prob.train_labels, prob.unseen.repeat_interleave(n)])
    n_all = prob.attributes.shape[0]
    local = torch.full((n_all,), -1, dtype=torch.long, device=device)
    local[prob.classes] = torch.arange(len(prob.classes))
    seen_mask = torch.zeros(n_all, dtype=torch.bool, device=device)
    seen_mask[prob.seen] = True
    for spec in specs:
        bs, lr, seed, graphs = (spec.split(",") + ["auto"])[:4]
        torch.manual_seed(int(seed))
        _sync(device)
        t0 = time.perf_counter()
        options = classifier_defaults("prototype", batch_size=int(bs), lr=float(lr), cuda_graphs=graphs)
        clf = PrototypeClassifier(PrototypeClassifier.Options(**options)).fit(
            x, local[y], len(prob.classes), prob.attributes[prob.classes], seen_mask[prob.classes])
        _sync(device)
        fit = time.perf_counter() - t0

        def full(xe: torch.Tensor) -> torch.Tensor:
            out = torch.full((xe.shape[0], n_all), float("-inf"), device=device)
            out[:, prob.classes] = clf.scores(xe)
            return out

        args = (full(prob.eval_seen[0]), prob.eval_seen[1], full(prob.eval_unseen[0]), prob.eval_unseen[1], seen_mask)
        r0 = gzsl_evaluate(*args)
        g, rb = best_gamma(*args)
        print(f"batch {bs} lr {lr} seed {seed} cuda_graphs {graphs} on {device}: fit {fit:.2f} s; "
              f"γ=0 U {r0.U:.2f} S {r0.S:.2f} H {r0.H:.2f} "
              f"zsl {r0.zsl:.2f}; best γ {g:.2f} H {rb.H:.2f}", flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("specs", nargs="*", default=["1024,5e-4,0", "256,5e-4,0"])
    a = ap.parse_args()
    main(a.specs, torch.device(a.device))
