"""Issue 26, a researcher's daily tool: progress lines when the output is not a terminal, history.csv and
TensorBoard, --budget on gzsl, --out/--name, provenance in every record, --print-config / --config,
--threads, and the tables' plots (follow --out, none empty, titles wrapped, the models table's note)."""
from __future__ import annotations

import csv
import json
import logging

import pytest
import torch

from zsgm.core.logs import ProgressLog, duration, free_cores
from zsgm.core.project import PROJECT_ROOT
from zsgm.pipelines.cli import main
from zsgm.testing import planted_featureset

# A planted problem small enough for seconds: 12 classes (3 unseen, 3 validation), 16-d features.
TINY = ["--epochs", "3", "--eval-every", "2", "--set", "hidden=32", "--set", "n_synth=10",
        "--set", "cls_pretrain_epochs=1", "--set", "steps_per_epoch=2", "--clf-set", "epochs=2",
        "--clf-set", "min_steps=0", "--clf-set", "hidden=16", "--model", "cramer", "--threads", "1"]


@pytest.fixture
def feats(tmp_path):
    path = tmp_path / "planted.safetensors"
    planted_featureset(n_classes=12, n_unseen=3, n_val=3, n_per_class=8, feature_dim=16, seed=0).save(path)
    return path


def gzsl(capsys, *args) -> dict:
    assert main(["gzsl", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def full_record(results, rid: str) -> dict:
    return [r for r in map(json.loads, (results / "runs.jsonl").read_text().splitlines()) if r["id"] == rid][-1]


# ---------------------------------------------------------------- 1. progress a person can watch
def test_redirected_run_logs_a_line_per_epoch_with_eta_and_an_estimate(feats, capsys, caplog, monkeypatch):
    monkeypatch.setenv("ZSGM_PROGRESS_SECONDS", "0")  # every epoch (the default gap is 30 s)
    with caplog.at_level(logging.INFO, logger="zsgm"):
        gzsl(capsys, "--features", str(feats), *TINY)  # stderr is pytest's capture: not a terminal
    text = [r.getMessage() for r in caplog.records]
    for epoch in (1, 2, 3):
        line = next(m for m in text if f"cramer val: epoch {epoch}/3" in m)
        assert "generator" in line and "elapsed" in line
        assert ("ETA" in line) == (epoch < 3)
    # the evaluated epochs carry validation U / S / H
    assert all(" H " in m for m in text if "cramer val: epoch 2/3" in m or "cramer val: epoch 3/3" in m)
    assert not any(" H " in m for m in text if "cramer val: epoch 1/3" in m)
    assert any("cramer final: epoch" in m for m in text)
    # the classifier fits (minutes on a large FeatureSet) log their epochs too once the gap has passed
    assert any(m.startswith("prototype classifier epoch ") and "loss" in m for m in text)
    # the first log line states the budget; an estimate of the duration precedes training's end
    assert text[0].startswith(f"budget {'seed' if torch.cuda.is_available() else 'cpu'}")
    estimates = [i for i, m in enumerate(text) if m.startswith("estimated duration")]
    assert len(estimates) == 2 and estimates[0] < text.index(next(m for m in text if "val: epoch 3/3" in m))


def test_an_inner_loop_speaks_when_the_log_has_been_silent(caplog, monkeypatch):
    """A classifier fit inside an evaluation logs once the log has been silent for the gap, however
    young the fit: a redirected CUB-50 run had 65 s without a line (epochs, then a 46 s evaluation of
    four 11 s fits)."""
    import time

    clock = [1000.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    logger = logging.getLogger("zsgm.test")
    with caplog.at_level(logging.INFO, logger="zsgm.test"):
        outer = ProgressLog("epoch", 10, every=30.0, logger=logger)
        assert outer.step(1)
        clock[0] += 20
        inner = ProgressLog("classifier epoch", 5, every=30.0, logger=logger, first=False, last=False)
        assert not inner.step(1)          # 20 s of silence
        clock[0] += 11
        assert inner.step(2)              # 31 s since the outer line, though the fit is 11 s old
        clock[0] += 5
        assert not outer.step(2)          # the outer loop waits its turn
        assert not inner.step(5)          # nor does the fit's last step speak (last=False)
        clock[0] += 30
        assert outer.step(3)
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["epoch 1/10", "classifier epoch 2/5",
                                                                      "epoch 3/10"]


def test_progress_lines_are_throttled_but_evaluations_always_say_so(caplog):
    report = ProgressLog("work", 10, every=1000.0, logger=logging.getLogger("zsgm.test"))
    with caplog.at_level(logging.INFO, logger="zsgm.test"):
        said = [report.step(i, force=(i == 5)) for i in range(1, 11)]
    assert said == [True, False, False, False, True, False, False, False, False, True]
    assert "work 5/10" in caplog.records[1].getMessage() and "ETA" in caplog.records[1].getMessage()
    assert "ETA" not in caplog.records[-1].getMessage()
    assert not ProgressLog("quiet", 3, enabled=False).step(1)
    assert duration(5) == "5s" and duration(65) == "1m05s" and duration(3720) == "1h02m"


def test_history_csv_beside_history_json(feats, capsys, isolated_results):
    rec = gzsl(capsys, "--features", str(feats), *TINY)
    run = isolated_results / "runs" / rec["id"]  # runs/ inside the folder $ZSGM_RESULTS names
    for stem in ("history", "val_history"):
        hist = json.loads((run / f"{stem}.json").read_text())
        rows = list(csv.DictReader((run / f"{stem}.csv").open()))
        assert len(rows) == len(hist) and [int(r["epoch"]) for r in rows] == [h["epoch"] for h in hist]
        assert float(rows[-1]["loss_generator"]) == pytest.approx(hist[-1]["loss_generator"])
    rows = list(csv.DictReader((run / "val_history.csv").open()))
    assert rows[0]["eval_H"] == "" and float(rows[1]["eval_H"]) >= 0  # scored on epochs 2 and 3 only
    assert json.loads(rows[1]["eval_clf"])  # nested values as JSON


def test_tensorboard_logs_the_same_scalars(feats, capsys, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rec = gzsl(capsys, "--features", str(feats), *TINY, "--tensorboard", str(tmp_path / "tb"), "--name", "tiny")
    acc = EventAccumulator(str(tmp_path / "tb" / "tiny"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"val/loss_generator", "val/eval_H", "final/loss_critic", "test/H"} <= tags
    assert [e.step for e in acc.Scalars("val/eval_H")] == [2, 3]
    assert acc.Scalars("test/H")[-1].value == pytest.approx(rec["H"], abs=1e-4)


# ---------------------------------------------------------------- 2. budget, 4. settings as a file
def printed(capsys, *args) -> str:
    assert main(["gzsl", *args, "--print-config"]) == 0
    return capsys.readouterr().out


def test_budget_on_gzsl_and_print_config(feats, capsys):
    import yaml

    cpu = yaml.safe_load(printed(capsys, "--features", str(feats), "--budget", "cpu"))
    seed = yaml.safe_load(printed(capsys, "--features", str(feats), "--budget", "seed"))
    auto = yaml.safe_load(printed(capsys, "--features", str(feats)))
    assert cpu["budget"] == "cpu" and cpu["epochs"] == 20 and cpu["hp"]["hidden"] == 1024
    assert seed["budget"] == "seed" and seed["epochs"] is None and seed["hp"] == {}
    assert auto == (seed if torch.cuda.is_available() else cpu)
    # the run's own flags go over the budget's; the demo keeps its own layer
    mine = yaml.safe_load(printed(capsys, "--features", str(feats), "--budget", "cpu", "--epochs", "3",
                                  "--set", "hidden=64"))
    assert mine["epochs"] == 3 and mine["hp"]["hidden"] == 64 and mine["eval_every"] == 5
    # the demo keeps its own layer, but on a CPU its default model (cramer) runs the budget's model
    # entry, a run field (epochs) among its hp; other models and the seed budget keep the layer's
    demo = yaml.safe_load(printed(capsys, "--budget", "cpu"))
    assert demo["model"] == "cramer" and demo["epochs"] == 20 and demo["hp"] == {"critic_iters": 2}
    wgan = yaml.safe_load(printed(capsys, "--budget", "cpu", "--model", "wgan"))
    assert wgan["epochs"] is None and wgan["hp"] == {}
    assert yaml.safe_load(printed(capsys, "--budget", "seed"))["epochs"] is None
    # the command line still wins over the budget's model entry
    mine = yaml.safe_load(printed(capsys, "--budget", "cpu", "--epochs", "30", "--set", "critic_iters=5"))
    assert mine["epochs"] == 30 and mine["hp"] == {"critic_iters": 5}


def test_print_config_round_trip_gives_the_same_record_id(feats, capsys, tmp_path, isolated_results):
    text = printed(capsys, "--features", str(feats), *TINY)
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert printed(capsys, "--config", str(path)) == text  # a fixed point
    rec = gzsl(capsys, "--config", str(path), "--threads", "1")
    direct = gzsl(capsys, "--features", str(feats), *TINY)
    assert rec["id"] == direct["id"] and f"run id {rec['id']}" in text
    assert {k: rec[k] for k in ("U", "S", "H")} == {k: direct[k] for k in ("U", "S", "H")}
    # flags beside --config override its keys; a wrong key is refused with the file named
    assert "seed: 4" in printed(capsys, "--config", str(path), "--seed", "4")
    path.write_text(text + "epochz: 3\n")
    assert main(["gzsl", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "epochz" in err


# ---------------------------------------------------------------- 3. runs you can find, 4. provenance, 6. threads
def test_out_name_and_provenance(feats, capsys, tmp_path, isolated_results):
    from zsgm.extract.featureset import FeatureSet
    from zsgm.pipelines.gzsl import featureset_fingerprint

    rec = gzsl(capsys, "--features", str(feats), *TINY, "--out", str(tmp_path / "mine"), "--name", "first")
    run = tmp_path / "mine" / "first"
    assert (run / "record.json").is_file() and (run / "history.csv").is_file() and not list(run.glob("*.pt"))
    full = full_record(isolated_results, rec["id"])
    assert full == json.loads((run / "record.json").read_text())
    assert full["run_dir"] == str(run) and full["threads"] == 1 and full["budget"] == "cpu"
    assert full["device"]["type"] == "cpu" and full["device"]["name"] and full["device"]["threads"] == 1
    assert full["features_hash"] == featureset_fingerprint(FeatureSet.load(feats))
    assert full["versions"]["zsgm"] and full["layer"] == FeatureSet.load(feats).dataset
    if (PROJECT_ROOT / ".git").exists():
        assert len(full["commit"]) == 40 and isinstance(full["dirty"], bool)
    assert main(["gzsl", "--features", str(feats), "--name", "../up", "--print-config"]) == 2
    assert "--name" in capsys.readouterr().err


def test_python_entry_drops_checkpoints_unless_kept(feats, tmp_path):
    from zsgm.pipelines.config import RunConfig
    from zsgm.pipelines.gzsl import run_gzsl

    cfg = RunConfig(features=str(feats), epochs=2, hp={"hidden": 32, "n_synth": 10, "cls_pretrain_epochs": 1,
                                                       "steps_per_epoch": 2},
                    clf_hp={"epochs": 2, "min_steps": 0, "hidden": 16})
    rec = run_gzsl(cfg, store=tmp_path / "s.jsonl", runs_dir=tmp_path / "runs", progress=False)
    assert (tmp_path / "runs" / rec["id"] / "record.json").is_file()
    assert not list((tmp_path / "runs" / rec["id"]).glob("*.pt"))
    kept = run_gzsl(cfg, store=tmp_path / "s.jsonl", runs_dir=tmp_path / "kept", progress=False,
                    keep_checkpoints=True)
    assert list((tmp_path / "kept" / kept["id"]).glob("*.pt"))
    assert rec["budget"] == "seed"  # none named: the shared defaults with the dataset's layer


def test_thread_default_follows_the_free_cores(monkeypatch):
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 3.0, 0.0, 0.0))
    assert free_cores() == 1  # a busy machine: one thread, never zero
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert free_cores() == cores
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 0.0, 0.0))
    assert free_cores() == max(1, min(cores, round(cores - 1.2)))


def test_bad_threads_is_refused(capsys):
    assert main(["gzsl", "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err


# ---------------------------------------------------------------- 5. plots and tables
def test_tables_plots_follow_out_and_skip_empty_curves(tmp_path, capsys, caplog, isolated_results):
    pytest.importorskip("matplotlib")
    out = tmp_path / "oracle_tables"
    with caplog.at_level(logging.INFO, logger="zsgm"):
        assert main(["tables", "--exp", "demo", "--seeds", "1", "--cell", "model=ridge", "--cell",
                     "classifier=prototype", "--clf-set", "epochs=2", "--clf-set", "min_steps=0",
                     "--out", str(out)]) == 0
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert plots and not (isolated_results / "plots").exists()  # nothing overwritten elsewhere
    assert not any("_train_" in p for p in plots)  # a closed-form row has no curves: no empty frame
    said = [r.getMessage() for r in caplog.records if "no training-curve plot" in r.getMessage()]
    assert len(said) == 1 and "ridge" in said[0]
    assert any("[1/1]" in r.getMessage() and "elapsed" in r.getMessage() for r in caplog.records)


def test_long_titles_are_wrapped_and_histories_without_curves_refused(tmp_path):
    pytest.importorskip("matplotlib")
    from zsgm.core.errors import ZsgmError
    from zsgm.evaluate import plots

    title = "a very long plot title " * 12
    assert all(len(line) <= 50 for line in plots.wrap(title, 50).splitlines())
    assert not plots.has_curves([{"epoch": 1}]) and plots.has_curves([{"epoch": 1, "loss_generator": 0.5}])
    with pytest.raises(ZsgmError, match="no losses"):
        plots.training_curves([{"epoch": 1}], tmp_path / "empty.png")
    plots.training_curves([{"epoch": e, "loss_generator": 1.0 / e, "eval_H": 10.0 * e} for e in (1, 2, 3)],
                          tmp_path / "curves.png", title)
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_models_table_notes_the_coinciding_objectives():
    from zsgm.pipelines.grid import load_experiment

    note = load_experiment("models", seeds=1).tables[0].note
    assert "Jensen" in note and "non-saturating" in note and "formulation: paper" in note
