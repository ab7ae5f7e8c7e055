"""The console script and the Makefile as a person uses them."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zsgm.pipelines.cli import main

ROOT = Path(__file__).resolve().parent.parent
FINAL = re.compile(r"^U=\d+\.\d\d S=\d+\.\d\d H=\d+\.\d\d ZSL=\d+\.\d\d \(.*selection \w+, \d+ classes")


def test_datasets_and_models_are_listed_one_per_line(capsys):
    assert main(["datasets", "--names"]) == 0
    names = capsys.readouterr().out.split()
    assert names[:7] == ["apy", "awa1", "awa2", "cub", "cub_sent", "flo", "sun"] and "demo" in names
    assert main(["models"]) == 0
    models = capsys.readouterr().out.split()
    assert {"wgan", "cramer", "ridge", "none"} <= set(models)
    assert main(["classifiers"]) == 0
    assert set(capsys.readouterr().out.split()) >= {"softmax", "knn", "prototype"}


def test_help_everywhere(capsys):
    for verb in ("gzsl", "datasets", "models"):
        with pytest.raises(SystemExit) as exit_:
            main([verb, "--help"])
        assert exit_.value.code == 0
        assert "usage: zsgm" in capsys.readouterr().out


def test_unknown_model_is_a_usage_error(capsys):
    assert main(["gzsl", "--model", "cramr", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown generative model 'cramr'" in err and "Did you mean 'cramer'" in err
    assert "Traceback" not in err


def test_json_last_line(tmp_path, capsys):
    from zsgm.testing import planted_featureset

    path = tmp_path / "p.safetensors"
    planted_featureset(n_classes=12, n_unseen=3, n_val=0, n_per_class=10, feature_dim=16).save(path)
    assert main(["gzsl", "--features", str(path), "--model", "ridge", "--classifier", "softmax", "--json",
                 "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert FINAL.match(lines[-2]), lines[-2]
    rec = json.loads(lines[-1])
    assert {"dataset", "model", "seed", "selection", "U", "S", "H", "zsl", "epochs", "seconds"} <= set(rec)
    assert rec["selection"] == "fixed"  # no validation classes: said so, not hidden
    assert 0 <= rec["U"] <= 100 and rec["n_classes"] == 12


@pytest.mark.skipif(not (ROOT / "data" / "demo").is_dir(), reason="bundled demo missing")
def test_make_gzsl_on_the_demo_prints_the_final_line(tmp_path):
    env = {**os.environ, "ZSGM_RESULTS": str(tmp_path / "results")}
    zsgm = Path(sys.executable).parent / "zsgm"
    cmd = ["make", "-s", "gzsl", "ARGS=--no-progress"] if (ROOT / ".venv" / "bin" / "zsgm").exists() else \
        [str(zsgm), "gzsl", "--no-progress"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert FINAL.match(last) and "(demo, cramer+prototype" in last, last
    assert (tmp_path / "results" / "runs.jsonl").is_file()
