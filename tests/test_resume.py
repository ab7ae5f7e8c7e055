"""Nothing lost: ``kill -9`` at a random point of a GZSL run or of a grid, then the same
command again, gives the numbers of an uninterrupted run; the results store skips a torn
last line and refuses a damaged middle one.

The kill point is drawn at random (printed, and fixed by $ZSGM_TEST_KILL_SEED to replay it)
among the checkpoint writes of the run, so that every run of the suite probes another moment.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from zsgm.evaluate.records import append_record, read_records
from zsgm.core.errors import ZsgmError
from zsgm.core.project import PROJECT_ROOT

EPOCHS = 4
KEYS = ("U", "S", "H", "zsl", "epochs", "gamma", "reseeds", "collapsed", "seed_used", "val")


pytestmark = pytest.mark.slow  # runs killed with SIGKILL and resumed, in subprocesses: minutes


def planted(path: Path) -> Path:
    from zsgm.testing import planted_featureset

    fs = planted_featureset(attributes=torch.rand(40, 16, generator=torch.Generator().manual_seed(0)), n_classes=12,
                            n_unseen=3, n_val=3, n_per_class=20, feature_dim=32)
    return fs.save(path)


def gzsl_cmd(features: Path) -> list[str]:
    return [sys.executable, "-m", "zsgm.pipelines.cli", "gzsl", "--features", str(features), "--model", "cramer",
            "--classifier", "softmax", "--epochs", str(EPOCHS), "--set", "hidden=64", "--set", "n_synth=20",
            "--set", "cls_pretrain_epochs=2", "--set", "steps_per_epoch=10",
            "--set", "checkpoint_seconds=0", "--clf-set", "epochs=3", "--clf-set", "min_steps=0", "--no-progress", "--json"]


def env_for(results: Path) -> dict:
    # One intra-op thread: on a shared 2-core box spinning OpenMP threads make tiny nets 4x slower.
    return {**os.environ, "ZSGM_RESULTS": str(results), "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1"}


def kill_rng() -> random.Random:
    seed = int(os.environ.get("ZSGM_TEST_KILL_SEED", random.randrange(1 << 30)))
    print(f"kill point seed: {seed} (replay with ZSGM_TEST_KILL_SEED={seed})")
    return random.Random(seed)


def kill_after_writes(proc: subprocess.Popen, watch: list[Path], writes: int, rng: random.Random,
                      timeout: float = 300) -> bool:
    """SIGKILL ``proc`` a random instant after the ``writes``-th write of any file in ``watch``
    (a write = a new mtime). False when the process ended first."""
    seen: dict[Path, int] = {}
    count = 0
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            return False
        for p in watch:
            try:
                m = p.stat().st_mtime_ns
            except FileNotFoundError:
                continue
            if seen.get(p) != m:
                seen[p] = m
                count += 1
        if count >= writes:
            time.sleep(rng.uniform(0, 0.1))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("the run never reached the kill point")


def kill_when(proc: subprocess.Popen, cond, timeout: float = 300) -> bool:
    """SIGKILL ``proc`` as soon as ``cond()`` holds; False when the process ended first."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            return False
        if cond():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.002)
    proc.kill()
    raise AssertionError("the run never reached the kill point")


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_sigkilled_gzsl_run_resumes_to_the_same_numbers(tmp_path):
    feats = planted(tmp_path / "planted.safetensors")
    cmd = gzsl_cmd(feats)
    # The uninterrupted reference runs beside the killed one (own results and runs folders).
    ref = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env_for(tmp_path / "ref" / "results"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = tmp_path / "k" / "results"
    rng = kill_rng()
    # A random instant after a random checkpoint write of the validation phase (epochs 1..EPOCHS),
    # or (EPOCHS + 1) the moment the final phase starts writing its first checkpoint (mid-write).
    target = rng.randint(1, EPOCHS + 1)
    run_dirs = results / "runs"  # inside the folder $ZSGM_RESULTS names
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env_for(results), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # run id is known only to the run: watch the one folder it creates
    deadline = time.monotonic() + 120
    while not (run_dirs.is_dir() and any(run_dirs.iterdir())) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.01)
    run_dir = next(run_dirs.iterdir())
    if target <= EPOCHS:
        killed = kill_after_writes(proc, [run_dir / "val_0.pt"], target, rng)
    else:
        killed = kill_when(proc, lambda: any(p.name.startswith((".final_0.pt.", "final_0.pt"))
                                             for p in run_dir.iterdir()))
    out, err = proc.communicate()
    assert killed, f"the run finished before the kill point ({target} checkpoint writes): {err[-2000:]}"
    assert proc.returncode == -signal.SIGKILL

    # Every file left behind is valid: checkpoints load, no temp file is mistaken for one, no record yet.
    litter = set(run_dir.glob(".*.tmp"))  # a temp file of a write the kill cut short: hidden, never read
    ckpts = sorted(p for p in run_dir.glob("*.pt") if not p.name.endswith(".best.pt"))  # .best.pt: kept scores
    assert ckpts, "killed after a checkpoint write, but none is there"
    for p in ckpts:
        state = torch.load(p, map_location="cpu", weights_only=False)
        assert 1 <= state["epoch"] <= EPOCHS and len(state["history"]) == state["epoch"]
    assert read_records(results / "runs.jsonl") == []
    print(f"kill target {target}; left: {[(p.name, torch.load(p, weights_only=False)['epoch']) for p in ckpts]}"
          f" + {len(litter)} temp file(s)")

    again = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env_for(results), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed cramer" in again.stderr
    ref_out, ref_err = ref.communicate(timeout=600)
    assert ref.returncode == 0, ref_err[-3000:]

    resumed = read_records(results / "runs.jsonl")
    reference = read_records(tmp_path / "ref" / "results" / "runs.jsonl")
    assert len(resumed) == len(reference) == 1
    assert last_json(again.stdout)["H"] == last_json(ref_out)["H"]
    assert {k: resumed[0][k] for k in KEYS} == {k: reference[0][k] for k in KEYS}, f"kill target {target}"
    # The per-epoch trace agrees too (losses and validation scores), not only the final line.
    h_res = json.loads((run_dir / "history.json").read_text())
    h_ref = json.loads(next((tmp_path / "ref" / "results" / "runs").iterdir()).joinpath("history.json").read_text())
    strip = lambda h: [{k: v for k, v in e.items() if k not in ("seconds", "wall")} for e in h]  # noqa: E731
    assert strip(h_res) == strip(h_ref)
    assert set(run_dir.glob(".*.tmp")) <= litter, "the resumed run left a temp file behind"
    # Nothing lost (issue 28): scores.safetensors holds what the uninterrupted run's does, the validation
    # scores γ was chosen on (val_*) included and equal, and the record's seconds is the sum of the segments.
    from safetensors.torch import load_file

    ref_dir = next((tmp_path / "ref").rglob("scores.safetensors")).parent
    got = load_file(str(run_dir / "scores.safetensors"))
    want = load_file(str(ref_dir / "scores.safetensors"))
    assert sorted(got) == sorted(want) and any(k.startswith("val_") for k in want), (sorted(got), sorted(want))
    assert all(torch.equal(got[k], want[k]) for k in want), f"kill target {target}"
    segments = resumed[0]["segments"]
    assert len(segments) == 2 and segments[0]["seconds"] > 0, segments
    assert resumed[0]["seconds"] == pytest.approx(sum(s["seconds"] for s in segments), abs=0.02)
    assert resumed[0]["seconds"] > segments[-1]["seconds"]
    assert len(reference[0]["segments"]) == 1 and not (run_dir / "segments.json").exists()


# ---------------------------------------------------------------- the results store
def test_torn_last_line_is_skipped_and_a_damaged_middle_line_is_refused(tmp_path):
    store = tmp_path / "runs.jsonl"
    for i in range(3):
        append_record({"id": f"r{i}", "H": float(i)}, store)
    whole = store.read_bytes()
    # A writer killed mid-line leaves a torn last line (no newline, cut JSON): skipped on read.
    store.write_bytes(whole + b'{"id": "r3", "H": 1.')
    assert [r["id"] for r in read_records(store)] == ["r0", "r1", "r2"]
    # A damaged line in the middle is not a torn write: say where, do not guess.
    lines = whole.decode().splitlines(True)
    store.write_text(lines[0] + '{"id": "r1", "H"\n' + lines[2])
    with pytest.raises(ZsgmError, match="line 2 is not valid JSON"):
        read_records(store)


def test_append_after_torn_line_loses_no_record(tmp_path):
    """The next append drops the torn fragment and starts a line of its own: before the fix,
    the new record was glued to the fragment and silently lost (or made the store unreadable)."""
    store = tmp_path / "runs.jsonl"
    append_record({"id": "a"}, store)
    with open(store, "ab") as fh:
        fh.write(b'{"id": "tor')
    append_record({"id": "b"}, store)
    assert [r["id"] for r in read_records(store)] == ["a", "b"]
    # A whole record that only lacks its final newline (edited by hand) is kept, not dropped.
    with open(store, "ab") as fh:
        fh.write(b'{"id": "c"}')
    append_record({"id": "d"}, store)
    assert [r["id"] for r in read_records(store)] == ["a", "b", "c", "d"]


# ---------------------------------------------------------------- the grid
GRID = """\
title: tiny grid for the kill test
base: {{features: {features}, epochs: 2, selection: validation, clf_hp: {{epochs: 2, min_steps: 0}},
        hp: {{hidden: 64, n_synth: 20, cls_pretrain_epochs: 1}}}}
grid:
  model: [ridge, cramer]
  classifier: [softmax]
seeds: 2
tables:
  - name: tiny
    rows: [model, classifier]
    columns: [dataset]
    metrics: [U, S, H]
"""


def test_sigkilled_grid_resumes_to_the_same_records(tmp_path):
    feats = planted(tmp_path / "planted.safetensors")
    exp = tmp_path / "tiny.yaml"
    exp.write_text(GRID.format(features=feats))
    cmd = [sys.executable, "-m", "zsgm.pipelines.cli", "tables", "--exp", str(exp), "--no-plots"]
    ref = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env_for(tmp_path / "ref" / "results"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = tmp_path / "k" / "results"
    rng = kill_rng()
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env_for(results), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # Kill after 1..3 records are in the store (of 4 cells), a random instant later.
    target = rng.randint(1, 3)
    store = results / "runs.jsonl"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if store.is_file() and len(store.read_text().splitlines()) >= target:
            time.sleep(rng.uniform(0, 0.5))
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    out, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"grid ended before the kill point: {err[-2000:]}"
    before = read_records(store)
    assert 1 <= len(before) <= 4 and len({r["id"] for r in before}) == len(before)

    again = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env_for(results), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    ref_out, ref_err = ref.communicate(timeout=600)
    assert ref.returncode == 0, ref_err[-3000:]
    got = {r["id"]: r for r in read_records(store)}
    want = {r["id"]: r for r in read_records(tmp_path / "ref" / "results" / "runs.jsonl")}
    assert len(read_records(store)) == 4, "a finished cell was run twice or a cell is missing"
    assert set(got) == set(want)
    for i in want:
        assert {k: got[i][k] for k in ("U", "S", "H", "zsl", "epochs", "status")} == \
               {k: want[i][k] for k in ("U", "S", "H", "zsl", "epochs", "status")}, i
    assert (results / "tables" / "tiny.md").is_file()


# ---------------------------------------------------------------- engine checkpoints
def test_resume_after_early_stop_stays_stopped(tmp_path, request):
    """A run that stopped early (patience) and is re-run must not train on past the stop."""
    from zsgm.core.rng import seed_everything
    from zsgm.generate.engine import Engine, TrainData
    from zsgm.pipelines.config import generator_defaults

    hp = generator_defaults("cramer", hidden=32, cls_pretrain_epochs=1, batch_size=16)
    g = torch.Generator().manual_seed(0)
    data = TrainData(torch.rand(48, 8, generator=g), torch.arange(6).repeat(8), torch.rand(6, 5, generator=g))

    def stop_at_2(engine, epoch, logs):
        return {"stop": epoch == 2}

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: spinning OpenMP threads only cost time on a shared box
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    seed_everything(0)
    first = Engine("cramer", 8, 5, hp).fit(data, 5, stop_at_2, checkpoint=tmp_path / "c.pt", progress=False)
    seed_everything(0)
    again = Engine("cramer", 8, 5, hp)
    assert again.resume(tmp_path / "c.pt")
    again.fit(data, 5, stop_at_2, checkpoint=tmp_path / "c.pt", progress=False)
    assert first.epoch == again.epoch == 2
    assert all(torch.equal(a, b) for a, b in zip(first.family.state_dict().values(),
                                                 again.family.state_dict().values()))
