"""`zsgm bench --sections demo`: one fresh `zsgm gzsl` per seed, a compared variant interleaved seed
by seed, the wall ratio and H mean ± std reported, the 30 s target judged. The processes are faked
(a real demo is a minute of CPU): what is checked is the commands run and the bookkeeping."""
from __future__ import annotations

import json
import subprocess
import types

import torch

from zsgm.bench import suite
from zsgm.bench.suite import BenchConfig, bench_demo, targets


def test_demo_section_runs_each_seed_beside_the_compared_variant(monkeypatch):
    clock = [0.0]
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        seed = int(cmd[cmd.index("--seed") + 1])
        compared = "--epochs" in cmd
        clock[0] += 40.0 if compared else 20.0  # the compared run takes twice as long
        h = 30.0 + seed + (5.0 if compared else 0.0)
        return types.SimpleNamespace(returncode=0, stdout=json.dumps({"H": h}) + "\n", stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(suite.time, "perf_counter", lambda: clock[0])
    cfg = BenchConfig(repeats=3, demo_compare=("--set", "critic_iters=5", "--epochs", "30"))
    res = bench_demo(cfg, torch.device("cpu"), progress=lambda msg: None)

    # seed by seed, the demo then the compared run, each a fresh process at the bench's threads
    assert [(c[c.index("--seed") + 1], "--epochs" in c) for c in calls] == [
        ("0", False), ("0", True), ("1", False), ("1", True), ("2", False), ("2", True)]
    assert all(c[c.index("--threads") + 1] == str(torch.get_num_threads()) for c in calls)
    assert res["wall_seconds"]["median"] == 20.0 and res["compared"]["wall_seconds"]["median"] == 40.0
    assert res["compared"]["speedup"]["values"] == [2.0, 2.0, 2.0]
    assert res["H"]["values"] == [30.0, 31.0, 32.0] and res["compared"]["H"]["values"] == [35.0, 36.0, 37.0]
    assert targets([], res)["demo_under_30s"]["met"] is True

    md = suite.to_markdown({"meta": {"host": "h", "started": "t", "device": "cpu", "device_name": "cpu", "cpus": 2,
                                     "torch_threads": 2, "budget": {"name": "cpu", "hp": {}, "clf_hp": {},
                                                                    "epochs": 1, "eval_every": 1, "ref_clf_epochs": 1},
                                     "repeats": 3, "ttr_repeats": 3, "load_avg_before": 0, "load_avg_after": 0,
                                     "seconds": 1},
                            "throughput": [], "pairs": [], "time_to_result": [], "demo": res,
                            "extraction": {"rows": [], "status": "skipped"}, "memory": {"peak_mb": 1},
                            "targets": targets([], res)})
    # mean ± sample std, as every table prints a cell
    assert "| demo | 20.0 (20.0–20.0) | 31.00 ± 1.00 (n=3) |" in md and "| 36.00 ± 1.00 (n=3) |" in md
    assert "--set critic_iters=5 --epochs 30" in md and "2.00×" in md
    assert "under 30 s wall: 20.0 s, H 31.00 ± 1.00 (n=3) → met" in md


def test_a_failing_demo_run_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: types.SimpleNamespace(
        returncode=2, stdout="", stderr="zsgm: error: --features x: no such file\n"))
    res = bench_demo(BenchConfig(repeats=2), torch.device("cpu"), progress=lambda msg: None)
    assert res["status"].startswith("failed (demo, seed 0)") and "no such file" in res["status"]
    assert "demo_under_30s" not in targets([], res)
