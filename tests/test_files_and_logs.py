"""Files and logs: outputs honour the umask, finished runs drop their checkpoints unless asked to
keep them, no carriage-return bars when stderr is not a terminal, --quiet, one logger under
torchrun, and `zsgm tables` takes --data-root / --device / --no-progress."""
from __future__ import annotations

import io
import logging
import os
import stat
from pathlib import Path

import pytest

from zsgm.core import logs
from zsgm.core.files import atomic_write_text
from zsgm.core.logs import setup_logging, show_progress
from zsgm.pipelines.cli import main

TINY = ["--epochs", "1", "--set", "hidden=64", "--set", "n_synth=20", "--set", "cls_pretrain_epochs=1",
        "--clf-set", "epochs=2", "--model", "cramer", "--classifier", "softmax"]


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("mask, want", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_honour_the_umask(tmp_path, umask, mask, want):
    umask(mask)
    atomic_write_text(tmp_path / "table.md", "x")
    assert mode(tmp_path / "table.md") == want            # mkstemp alone gives 0600


def test_atomic_rewrite_keeps_the_files_mode(tmp_path, umask):
    p = tmp_path / "secret.json"
    p.write_text("{}")
    p.chmod(0o600)
    atomic_write_text(p, "{}\n")
    assert mode(p) == 0o600


def test_featureset_and_mat_exports_are_readable_by_the_group(tmp_path, umask):
    from zsgm.testing import planted_featureset
    from zsgm.extract.xlsa17 import to_xlsa17

    umask(0o022)
    fs = planted_featureset(n_classes=6, n_unseen=2, n_val=0, n_per_class=4, feature_dim=4, seed=0)
    path = fs.save(tmp_path / "fs.safetensors")
    assert mode(path) == 0o644
    for p in to_xlsa17(fs, tmp_path / "mat"):
        assert mode(p) == 0o644


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_show_progress_needs_a_terminal_rank_0_and_not_quiet(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(logs, "_QUIET", False)
    assert show_progress(True, FakeTTY()) is True
    assert show_progress(True, io.StringIO()) is False     # redirected: no carriage returns
    assert show_progress(False, FakeTTY()) is False        # --no-progress
    monkeypatch.setenv("RANK", "1")
    assert show_progress(True, FakeTTY()) is False         # torchrun: rank 0 alone draws bars
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(logs, "_QUIET", True)
    assert show_progress(True, FakeTTY()) is False         # --quiet


def test_logging_levels_quiet_and_ranks(monkeypatch):
    zsgm = logging.getLogger("zsgm")
    try:
        monkeypatch.delenv("RANK", raising=False)
        setup_logging()
        assert zsgm.isEnabledFor(logging.INFO) and not zsgm.isEnabledFor(logging.DEBUG)
        setup_logging(quiet=True)
        assert not zsgm.isEnabledFor(logging.INFO) and zsgm.isEnabledFor(logging.WARNING)
        monkeypatch.setenv("RANK", "1")
        setup_logging()
        assert not zsgm.isEnabledFor(logging.WARNING) and zsgm.isEnabledFor(logging.ERROR)
        monkeypatch.setenv("RANK", "0")
        setup_logging(verbose=True)
        assert zsgm.isEnabledFor(logging.DEBUG)
    finally:
        monkeypatch.delenv("RANK", raising=False)
        setup_logging()


def test_gzsl_redirected_has_no_carriage_returns_and_drops_checkpoints(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    runs = tmp_path / "results" / "runs"  # inside the folder $ZSGM_RESULTS names
    # Control: with bars forced on, the same run writes carriage returns (so the check below can fail).
    monkeypatch.setattr(logs, "show_progress", lambda requested=True, stream=None: requested)
    assert main(["gzsl", *TINY, "--keep-checkpoints"]) == 0
    forced = capsys.readouterr().err
    assert "\r" in forced
    kept = list(runs.glob("*/*.pt"))
    assert kept, "--keep-checkpoints kept nothing"
    monkeypatch.undo()
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    for p in kept:  # start over: the next run trains and must then remove its checkpoints
        p.unlink()
    (tmp_path / "results" / "runs.jsonl").unlink()
    assert main(["gzsl", *TINY]) == 0                       # stderr is pytest's capture: not a TTY
    out = capsys.readouterr()
    assert "\r" not in out.err and "U=" in out.out
    run_dirs = [d for d in runs.iterdir() if d.is_dir()]
    assert run_dirs and not list(runs.glob("*/*.pt"))       # checkpoints of the finished run removed
    assert all((d / "history.json").is_file() and (d / "record.json").is_file() for d in run_dirs)


def test_grid_drops_checkpoints_of_finished_cells_unless_kept(tmp_path, monkeypatch):
    from zsgm.pipelines.grid import load_experiment
    from zsgm.pipelines.runner import LocalExecutor, run_plan

    sets = {"epochs": 1, "model": "cramer", "classifier": "softmax",
            "hp": {"hidden": 64, "n_synth": 20, "cls_pretrain_epochs": 1}, "clf_hp": {"epochs": 2}}
    plan = load_experiment("demo", seeds=1, sets=sets)
    assert len(plan.gzsl_cells) == 1
    cid = plan.gzsl_cells[0].id
    run_plan(plan, LocalExecutor(1), store=tmp_path / "a.jsonl", runs_dir=tmp_path / "a", keep_checkpoints=True)
    assert list((tmp_path / "a" / cid).glob("*.pt"))
    run_plan(plan, LocalExecutor(1), store=tmp_path / "b.jsonl", runs_dir=tmp_path / "b")
    assert (tmp_path / "b" / cid / "history.json").is_file() and not list((tmp_path / "b" / cid).glob("*.pt"))


def test_a_failed_cell_keeps_its_checkpoints(tmp_path):
    from zsgm.pipelines.runner import drop_checkpoints

    d = tmp_path / "runs" / "abc-s0"
    d.mkdir(parents=True)
    (d / "val_0.pt").write_bytes(b"x" * 1000)
    (d / "history.json").write_text("[]")
    assert drop_checkpoints(tmp_path / "runs", "abc-s0") == 1000
    assert not (d / "val_0.pt").exists() and (d / "history.json").exists()


def test_tables_takes_data_root_device_and_no_progress(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    root = tmp_path / "elsewhere"
    root.mkdir()
    rc = main(["tables", "--exp", "tricks", "--seeds", "1", "--dry-run", "--data-root", str(root),
               "--device", "cpu", "--no-progress", "--gpus-per-cell", "0.5"])
    assert rc == 0
    out = capsys.readouterr().out
    assert str(root / "CUB") in out                      # inputs are looked for under --data-root
    from zsgm.pipelines.grid import load_experiment

    plan = load_experiment("tricks", seeds=1, sets={"data_root": str(root), "device": "cpu"})
    assert {c.params["data_root"] for c in plan.cells} == {str(root)}
    assert {c.params["device"] for c in plan.cells} == {"cpu"}
    assert {c.id for c in plan.cells} == {c.id for c in load_experiment("tricks", seeds=1).cells}


def test_quiet_flag_is_accepted_everywhere(capsys):
    assert main(["--quiet", "models"]) == 0
    assert main(["models", "--quiet"]) == 0
    assert "cramer" in capsys.readouterr().out
    setup_logging()
