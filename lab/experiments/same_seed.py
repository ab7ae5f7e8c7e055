"""Same-seed numbers: nine fixed runs (four on the bundled demo, five on a small planted FeatureSet:
validation, oracle and fixed selection; cramer, info, began, f-CLSWGAN; noise on and off), their
U / S / H / ZSL / γ / epochs / re-seeds printed and written to a JSON file. Run it before and after a
change that should not move a number, and compare the two files:

    python lab/experiments/same_seed.py /tmp/after.json

(Issue 16's before/after used it at f1fb29c and 16bbed4; the prototype classifier's real_mix, on by
default since, moves the prototype rows.)
"""
import json
import sys
import tempfile
from pathlib import Path

import torch


from zsgm.testing import planted_featureset, planted_hp  # noqa: E402
from zsgm.pipelines.config import RunConfig  # noqa: E402
from zsgm.pipelines.gzsl import run_gzsl  # noqa: E402

torch.set_num_threads(1)
tmp = Path(tempfile.mkdtemp())
planted = tmp / "planted.safetensors"
planted_featureset(attributes=torch.rand(60, 40, generator=torch.Generator().manual_seed(3)), n_classes=30,
                   n_unseen=6, n_val=5, feature_dim=64).save(planted)
small = {"features": str(planted), "hp": {"hidden": 128}}
CASES = [
    ("demo cramer (make gzsl)", {}),
    ("demo wgan+softmax no noise", {"model": "wgan", "classifier": "softmax", "noise": "off"}),
    ("demo vae", {"model": "vae", "epochs": 4}),
    ("demo ridge", {"model": "ridge"}),
    ("planted cramer", {**small, "epochs": 6, "eval_every": 2}),
    ("planted info oracle", {**small, "hp": {**small["hp"], **planted_hp("info")}, "model": "info", "selection": "oracle",
                             "epochs": 4, "eval_every": 2}),
    ("planted began fixed", {**small, "model": "began", "selection": "fixed", "epochs": 3}),
    ("planted f-CLSWGAN", {**small, "model": "wgan", "classifier": "softmax", "noise": "off", "epochs": 4,
                           "eval_every": 2}),
    ("planted cramer no noise", {**small, "noise": "off", "epochs": 4, "eval_every": 2}),
]
out = {}
for name, kw in CASES:
    r = run_gzsl(RunConfig(**kw), store=tmp / "r.jsonl", runs_dir=tmp / "runs", progress=False)
    out[name] = {k: r[k] for k in ("U", "S", "H", "zsl", "gamma", "epochs", "reseeds")}
    print(name, out[name], flush=True)
Path(sys.argv[1]).write_text(json.dumps(out, indent=1))
