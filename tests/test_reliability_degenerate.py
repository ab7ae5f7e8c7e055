"""Issue 28: a degenerate result never passes as a success, every store and value is checked before
work, resume loses nothing (its kill -9 half is in tests/test_resume.py).

One row per reproduction of the issue, each through the real CLI (in-process ``main``): the exit code,
the key words of the one message (the flag / file / field and what to do) and that nothing was
trained (``no_work``: reading features or building a model fails the test) or, for a run that did
train, that nothing was recorded as a success.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from zsgm.evaluate.records import append_record, read_records
from zsgm.pipelines.cli import main
from test_bad_inputs import _planted, assert_clean_error, cli, write_root, xlsa17_content
from test_reliability import _variant, no_work  # noqa: F401  (a fixture)


@pytest.fixture
def no_bench(monkeypatch):
    """The benchmark and the quality suite must not start: the flags are checked first."""
    import zsgm.bench.suite
    import zsgm.pipelines.runner

    def boom(*a, **k):
        raise AssertionError("work started before the options were checked")

    monkeypatch.setattr(zsgm.bench.suite, "run_bench", boom)
    monkeypatch.setattr(zsgm.pipelines.runner, "run_plan", boom)


# ---------------------------------------------------------------- flags: ranges, upper bounds, empty paths
FLAG_ROWS = [
    # 4. rerun --tolerance
    ("rerun --tolerance nan", ["rerun", "abc", "--tolerance", "nan"],
     ["--tolerance must be a finite number >= 0 and <= 100", "nan"]),
    ("rerun --tolerance -1", ["rerun", "abc", "--tolerance", "-1"], ["--tolerance", ">= 0", "got -1"]),
    # 5. silent fallbacks
    ("gzsl --features ''", ["gzsl", "--features", ""], ["--features is empty", "give a path"]),
    ("gzsl --data-root ''", ["gzsl", "--data", "cub", "--data-root", ""], ["--data-root is empty"]),
    ("quality --seeds 0", ["quality", "--seeds", "0"], ["--seeds must be an integer >= 1 and <= 100", "got 0"]),
    ("quality --jobs 0", ["quality", "--jobs", "0"], ["--jobs must be an integer >= 1", "got 0"]),
    ("bench --threads 0", ["bench", "--threads", "0"], ["--threads must be an integer >= 1", "got 0"]),
    ("bench --epochs 0", ["bench", "--epochs", "0"], ["--epochs must be an integer >= 1", "got 0"]),
    ("results --last 0", ["results", "--last", "0"], ["--last must be an integer >= 1", "got 0"]),
    ("results --last -1", ["results", "--last", "-1"], ["--last must be an integer >= 1", "got -1"]),
    # 6. upper bounds
    ("--set hidden=1e12", ["gzsl", "--set", "hidden=1000000000000"], ["--set hidden=1000000000000", "<= 65536"]),
    ("--set n_synth=1e12", ["gzsl", "--set", "n_synth=1000000000000"], ["n_synth", "<= 100000"]),
    ("--epochs 2**63", ["gzsl", "--epochs", "9223372036854775808"],
     ["--epochs must be an integer >= 1 and <= 100000", "9223372036854775808"]),
    ("knn k=1e12", ["gzsl", "--classifier", "knn", "--clf-set", "k=1000000000000"], ["k must be", "<= 1000000"]),
    ("--clf-set epochs=1e9", ["gzsl", "--clf-set", "epochs=1000000000"], ["--clf-set epochs", "<= 100000"]),
    # 7. the input is at fault: exit 2, not 1
    ("bench --threads -1", ["bench", "--threads", "-1"], ["--threads", ">= 1", "got -1"]),
    ("bench --device foo", ["bench", "--device", "foo"], ["--device foo", "not a device"]),
    ("quality --device foo", ["quality", "--device", "foo"], ["--device foo", "not a device"]),
    ("extract --opt bogus", ["extract", "--backbone", "resnet10t", "--data", "cub", "--scratch", "--opt", "bogus"],
     ["--opt bogus", "unknown timm optimizer", "adamw"]),
    ("extract --sched bogus", ["extract", "--backbone", "resnet10t", "--data", "cub", "--scratch", "--sched", "bogus"],
     ["--sched bogus", "cosine"]),
    ("extract --out ''", ["extract", "--backbone", "resnet10t", "--data", "cub", "--out", ""], ["--out is empty"]),
    # 14. bench names checked before the benchmark starts
    ("bench --models nosuch", ["bench", "--models", "nosuch"], ["unknown generative model 'nosuch'", "known"]),
    ("bench --classifiers nosuch", ["bench", "--classifiers", "nosuch"], ["unknown classifier 'nosuch'"]),
    ("bench --clf-set nosuch=1", ["bench", "--clf-set", "nosuch=1"], ["--clf-set nosuch", "known"]),
    ("bench --sections nosuch", ["bench", "--sections", "nosuch"], ["--sections", "unknown nosuch"]),
]


@pytest.mark.parametrize("name, args, words", FLAG_ROWS, ids=[r[0] for r in FLAG_ROWS])
def test_bad_flag_refused_before_any_work(capsys, no_work, no_bench, name, args, words):
    assert_clean_error(*cli(capsys, [*args, "--no-progress"] if args[0] == "gzsl" else args), words)


def test_every_verb_flag_table_is_declared_in_params():
    """One declaration: every numeric flag of these verbs has a range in pipelines/params.py, and the
    unbounded ones that cost memory or time have an upper bound."""
    from zsgm.pipelines import params

    assert params.RERUN["tolerance"].hi is not None
    assert params.QUALITY["seeds"].hi and params.QUALITY["jobs"].hi
    assert params.BENCH["threads"].hi and params.BENCH["epochs"].hi and params.RESULTS["last"].lo == 1
    for key in ("epochs", "hidden", "n_synth", "batch_size", "critic_iters", "latent_dim"):
        assert params.HP[key].hi is not None, key
    for key in ("epochs", "hidden", "k", "batch_size", "min_steps"):
        assert params.CLF[key].hi is not None, key
    assert params.RUN["epochs"].hi is not None


# ---------------------------------------------------------------- FeatureSet tensors, required and optional
def _set(name: str, value):
    return lambda t, m: t.update({name: value})


def _scale(t, m):
    t["features"] = t["features"] * 1e37


def _zero_unseen_row(t, m):
    t["attributes"][-1] = 0.0


TENSOR_ROWS = [
    ("float labels", lambda t, m: t.update(labels=t["labels"].float()),
     ["x.safetensors", "labels must hold integers", "float32"]),
    ("bool labels", lambda t, m: t.update(labels=t["labels"] > 3), ["labels must hold integers", "bool"]),
    ("float trainval_loc", lambda t, m: t.update(trainval_loc=t["trainval_loc"].double()),
     ["trainval_loc must hold integers", "float64"]),
    ("float test_unseen_loc", lambda t, m: t.update(test_unseen_loc=t["test_unseen_loc"].float() + 0.5),
     ["test_unseen_loc must hold integers"]),
    ("val_classes out of range", _set("val_classes", torch.tensor([99, -5])),
     ["val_classes [99, -5]", "0..7", "rows of attributes"]),
    ("val_classes floats", _set("val_classes", torch.tensor([1.5, 2.0])),
     ["val_classes must hold integers", "float32"]),
    ("val_classes unseen", _set("val_classes", torch.tensor([7])), ["val_classes [7]", "not training (trainval)"]),
    ("val_classes empty", _set("val_classes", torch.zeros(0, dtype=torch.long)), ["val_classes", "empty"]),
    ("val_classes a matrix", _set("val_classes", torch.tensor([[1, 2]])), ["val_classes must be a vector"]),
    ("train_loc past the images", _set("train_loc", torch.tensor([0, 999])), ["train_loc", "999", "0-based"]),
    ("original_att of other rows", _set("original_att", torch.ones(3, 6)), ["original_att has 3 rows", "8 classes"]),
    ("original_att integers", _set("original_att", torch.ones(8, 6, dtype=torch.long)),
     ["original_att must hold floating-point"]),
    ("an unknown tensor", _set("bogus", torch.ones(2)), ["unknown tensor", "bogus", "optionally"]),
    ("attributes of integers", lambda t, m: t.update(attributes=(t["attributes"] * 10).long()),
     ["attributes must hold floating-point", "int64"]),
    # 2. degenerate inputs seen before training
    ("features scaled by 1e37", _scale, ["x.safetensors", "overflow float32", "rescale"]),
    ("an all-zero unseen attribute row", _zero_unseen_row, ["x.safetensors", "attributes rows [7]", "all zero"]),
]


@pytest.mark.parametrize("name, change, words", TENSOR_ROWS, ids=[r[0] for r in TENSOR_ROWS])
def test_featureset_tensor_refused_on_load(tmp_path, capsys, monkeypatch, name, change, words):
    import zsgm.generate.engine

    monkeypatch.setattr(zsgm.generate.engine.Engine, "__init__", lambda *a, **k: pytest.fail("a model was built"))
    path = _variant(tmp_path, "x.safetensors", change)
    assert_clean_error(*cli(capsys, ["gzsl", "--features", str(path), "--no-progress"]), words)
    assert read_records() == []


def test_int32_indices_are_read_as_int64(tmp_path):
    from zsgm.extract.featureset import FeatureSet

    path = _variant(tmp_path, "x.safetensors", lambda t, m: t.update(labels=t["labels"].int(),
                                                                       val_classes=t["val_classes"].int()))
    fs = FeatureSet.load(path)
    assert fs.labels.dtype == torch.int64 and fs.val_classes.dtype == torch.int64


def test_knn_k_larger_than_the_data_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import zsgm.generate.engine

    monkeypatch.setattr(zsgm.generate.engine.Engine, "__init__", lambda *a, **k: pytest.fail("a model was built"))
    p = _planted(tmp_path / "fs.safetensors")
    line = assert_clean_error(*cli(capsys, ["gzsl", "--features", str(p), "--classifier", "knn", "--clf-set",
                                            "k=500", "--set", "n_synth=5", "--no-progress"]),
                              ["--clf-set k=500", "vote among only", "use k <="])
    assert "validation training set" in line
    assert read_records() == []


def test_special_files_for_features(tmp_path, capsys):
    """Messages that named the wrong fault: /dev/zero is no FeatureSet but exists; a symlink loop."""
    assert_clean_error(*cli(capsys, ["gzsl", "--features", "/dev/zero"]), ["/dev/zero", "not a regular file"])
    loop = tmp_path / "loop.safetensors"
    loop.symlink_to(loop)
    assert_clean_error(*cli(capsys, ["gzsl", "--features", str(loop)]), ["loop.safetensors", "symbolic-link loop"])
    dangling = tmp_path / "dangling.safetensors"
    dangling.symlink_to(tmp_path / "gone.safetensors")
    assert_clean_error(*cli(capsys, ["gzsl", "--features", str(dangling)]), ["does not exist", "target is missing"])


# ---------------------------------------------------------------- 3. output locations, before any work
@contextlib.contextmanager
def immutable(path: Path):
    """``path`` under chattr +i (root cannot write there either) for the block, the flag removed after;
    the test is skipped where the file system has no such flag."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)])


def test_results_store_a_regular_file(tmp_path, capsys, monkeypatch, no_work):
    (tmp_path / "res").write_text("not a folder")
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "res"))
    assert_clean_error(*cli(capsys, ["gzsl", "--no-progress"]), [str(tmp_path / "res"), "is a file where a folder"])


def test_runs_jsonl_a_directory(tmp_path, capsys, monkeypatch, no_work):
    (tmp_path / "results" / "runs.jsonl").mkdir(parents=True)
    assert_clean_error(*cli(capsys, ["gzsl", "--no-progress"]),
                       [str(tmp_path / "results" / "runs.jsonl"), "is a directory", "ZSGM_RESULTS"])
    # ... and `zsgm results` does not read it as an empty store
    assert_clean_error(*cli(capsys, ["results"]), ["runs.jsonl", "is a directory"])


def test_immutable_results_folder(tmp_path, capsys, no_work):
    folder = tmp_path / "results"
    folder.mkdir()
    with immutable(folder):
        assert_clean_error(*cli(capsys, ["gzsl", "--no-progress"]), [str(folder), "cannot write", "permission"])


def test_immutable_store_file(tmp_path, capsys, no_work):
    store = append_record({"id": "a-s0", "U": 1.0, "S": 1.0, "H": 1.0, "zsl": 1.0}, tmp_path / "results" / "runs.jsonl")
    with immutable(store):
        assert_clean_error(*cli(capsys, ["gzsl", "--no-progress"]), [str(store), "cannot be appended"])


def test_unwritable_runs_folder(tmp_path, capsys, no_work):
    """A file where the runs folder belongs is refused before any work."""
    from zsgm.evaluate.records import default_runs_dir

    runs = default_runs_dir()
    runs.parent.mkdir(parents=True, exist_ok=True)
    runs.write_text("a file")
    assert_clean_error(*cli(capsys, ["gzsl", "--no-progress"]), ["runs folder", str(runs), "is a file where a folder"])


OUT_ROWS = [
    ("rerun --store DIR", lambda d: ["rerun", "abc", "--store", str(d)], ["is a directory", "records file"]),
    ("rerun --store ''", lambda d: ["rerun", "abc", "--store", ""], ["--store is empty"]),
    ("quality --out DIR", lambda d: ["quality", "--no-run", "--no-staged", "--out", str(d)],
     ["--out", "is a directory"]),
    ("quality --out under a file", lambda d: ["quality", "--no-run", "--no-staged", "--out",
                                              str(d / "f.txt" / "q.md")], ["--out", "is a file where a folder"]),
    ("results --out under a file", lambda d: ["results", "--out", str(d / "f.txt" / "r.csv")],
     ["--out", "is a file where a folder"]),
    ("bench --out under a file", lambda d: ["bench", "--out", str(d / "f.txt" / "b")], ["--out", "is a file"]),
]


@pytest.mark.parametrize("name, args, words", OUT_ROWS, ids=[r[0] for r in OUT_ROWS])
def test_output_location_proved_writable_first(tmp_path, capsys, no_work, no_bench, name, args, words):
    (tmp_path / "f.txt").write_text("a file")
    (tmp_path / "d").mkdir()
    assert_clean_error(*cli(capsys, args(tmp_path / "d") if "DIR" in name else args(tmp_path)), words)


def test_read_only_quality_out_names_the_report_not_a_temp_file(tmp_path, capsys, no_bench):
    folder = tmp_path / "ro"
    folder.mkdir()
    with immutable(folder):
        line = assert_clean_error(*cli(capsys, ["quality", "--no-run", "--no-staged", "--out", str(folder / "q.md")]),
                                  [str(folder / "q.md"), "cannot write"])
    assert ".tmp" not in line


# ---------------------------------------------------------------- 1, 2. degenerate results: exit 3, recorded so
TINY = ["--epochs", "1", "--set", "hidden=32", "--set", "n_synth=5", "--clf-set", "epochs=1", "--clf-set",
        "min_steps=1", "--no-progress", "--model", "cramer", "--classifier", "prototype"]


def _run_cli(capsys, args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(args)
    got = capsys.readouterr()
    return rc, got.out, got.err


def _status_listed(capsys, status: str) -> list[dict]:
    rc, out, err = _run_cli(capsys, ["results", "--status", status, "--format", "json", "--columns",
                                     "id,status,degenerate"])
    assert rc == 0, err
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def test_nan_scores_end_as_a_failed_run(tmp_path, capsys):
    p = _planted(tmp_path / "fs.safetensors")
    rc, out, err = _run_cli(capsys, ["gzsl", "--features", str(p), *TINY, "--clf-set", "lr=1e30", "--json"])
    assert rc == 3, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("zsgm gzsl: failed:") and "non-finite" in last and "exit 3" in last, last
    assert "[FAILED: the test scores hold non-finite values" in out.splitlines()[0]
    assert json.loads(out.strip().splitlines()[-1])["status"] == "failed"
    rec = read_records()[-1]
    assert rec["status"] == "failed" and rec["reseeds"] == 2 and "non-finite" in rec["error"]
    assert [r["id"] for r in _status_listed(capsys, "failed")] == [rec["id"]]
    assert _status_listed(capsys, "ok") == []


def test_all_reseeds_collapsed_ends_as_a_collapsed_run(tmp_path, capsys):
    """collapse_threshold 100: every seed's validation U counts as collapsed, so every re-seed collapses."""
    p = _planted(tmp_path / "fs.safetensors")
    rc, out, err = _run_cli(capsys, ["gzsl", "--features", str(p), *TINY, "--set", "collapse_threshold=100"])
    assert rc == 3, err
    assert err.strip().splitlines()[-1].startswith("zsgm gzsl: collapsed: every seed collapsed (3 tried: 0, 1000, 2000)")
    assert "[COLLAPSED: every seed collapsed" in out.strip().splitlines()[-1]
    rec = read_records()[-1]
    assert rec["status"] == "collapsed" and rec["collapsed"] is True and rec["reseeds"] == 2
    assert [r["status"] for r in _status_listed(capsys, "collapsed")] == ["collapsed"]
    assert _status_listed(capsys, "ok") == []


def test_a_sound_run_still_exits_0(tmp_path, capsys):
    p = _planted(tmp_path / "fs.safetensors")
    rc, out, err = _run_cli(capsys, ["gzsl", "--features", str(p), *TINY, "--model", "ridge", "--clf-set", "epochs=5",
                                     "--clf-set", "min_steps=50"])
    assert rc == 0, err
    assert read_records()[-1]["status"] == "ok" and "[" not in out.strip().splitlines()[-1]


def _attempt(seen, unseen, U, collapsed=False, gamma=0.0, S=50.0):
    from types import SimpleNamespace

    from zsgm.evaluate.metrics import GZSLResult
    from zsgm.evaluate.scoring import Scores

    mask = torch.tensor([True, True, False, False])
    prob = SimpleNamespace(classes=torch.arange(4), eval_seen=(None, torch.tensor([0, 1])),
                           eval_unseen=(None, torch.tensor([2, 3])))
    return SimpleNamespace(scores=Scores(seen, unseen, mask, 1.0), prob=prob, result=GZSLResult(U, S, 0.0, 0.0),
                           collapsed=collapsed, gamma=gamma, seed=0)


def test_judge_tells_degenerate_results_apart():
    from zsgm.pipelines.outcome import judge

    eye = torch.eye(4).log_softmax(1)
    good = _attempt(eye[:2], eye[2:], 100.0)
    assert judge(good, [good]) == ("ok", "")
    nan = _attempt(eye[:2], torch.full((2, 4), float("nan")), 0.0)
    assert judge(nan, [nan])[0] == "failed"
    one = torch.tensor([[0.0, -9, -9, -9]] * 2)
    assert judge(_attempt(one, one, 0.0), [None])[1].startswith("every test image is predicted as one class (0)")
    seen_only = _attempt(eye[:2], eye[:2], 0.0)  # the unseen images predicted as seen classes: U = 0
    status, reason = judge(seen_only, [seen_only])
    assert status == "collapsed" and reason.startswith("U = 0")
    outside = _attempt(eye[:2].clone(), eye[2:].clone(), 100.0)
    outside.prob.classes = torch.arange(3)  # class 3 outside the problem may hold -inf: still finite inside
    outside.scores.unseen[:, 3] = float("-inf")
    assert judge(outside, [outside])[0] == "ok"


# ---------------------------------------------------------------- 13. results --columns (issue 26 too)
def _store_two(tmp_path) -> None:
    for i, formulation in enumerate(("paper", "study")):
        append_record({"id": f"r{i}", "model": "fgan", "H": 10.0 + i, "U": 1.0, "S": 1.0, "zsl": 1.0,
                       "config": {"hp": {"formulation": formulation}}, "status": "ok"})


def test_results_columns_unknown_and_nested(tmp_path, capsys):
    _store_two(tmp_path)
    line = assert_clean_error(*cli(capsys, ["results", "--columns", "id,nosuchfield"]),
                              ["--columns", "unknown column", "'nosuchfield'", "known:", "config", "dotted"])
    assert "model" in line
    rc, out, err = _run_cli(capsys, ["results", "--columns", "id,config.hp.formulation", "--format", "csv"])
    assert rc == 0, err
    assert out.splitlines() == ["id,config.hp.formulation", "r0,paper", "r1,study"]
    rc, out, _ = _run_cli(capsys, ["results", "--filter", "config.hp.formulation=study", "--columns", "id",
                                   "--format", "csv"])
    assert out.splitlines() == ["id", "r1"]
    rc, out, _ = _run_cli(capsys, ["results", "--last", "1", "--columns", "id", "--format", "csv"])
    assert out.splitlines() == ["id", "r1"]


def test_old_ok_but_collapsed_records_count_as_collapsed(tmp_path, capsys):
    append_record({"id": "old", "U": 0.0, "S": 50.0, "H": 0.0, "zsl": 1.0, "status": "ok", "collapsed": True})
    append_record({"id": "new", "U": 30.0, "S": 50.0, "H": 37.5, "zsl": 31.0})
    assert [r["id"] for r in _status_listed(capsys, "collapsed")] == ["old"]
    assert [r["id"] for r in _status_listed(capsys, "ok")] == ["new"]


# ---------------------------------------------------------------- 12. data check (issue 26 too)
def test_data_check_refuses_a_missing_root(tmp_path, capsys):
    assert_clean_error(*cli(capsys, ["data", "check", "--data-root", str(tmp_path / "nonexistent")]),
                       [str(tmp_path / "nonexistent"), "does not exist", "--data-root"])
    (tmp_path / "file").write_text("x")
    assert_clean_error(*cli(capsys, ["data", "check", "--data-root", str(tmp_path / "file")]), ["not a folder"])


def test_data_check_flags_a_corrupted_byte(tmp_path, capsys, shared_root):
    src = shared_root / "AWA1" / "att_splits.mat"
    (tmp_path / "AWA1").mkdir()
    good = tmp_path / "AWA1" / "att_splits.mat"
    good.write_bytes(src.read_bytes())
    rc, out, err = _run_cli(capsys, ["data", "check", "awa1", "--data-root", str(tmp_path)])
    assert "1 file(s) by sha256" in out and "differs" not in out  # the control: the byte copy verifies
    raw = bytearray(src.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    good.write_bytes(bytes(raw))
    rc, out, err = _run_cli(capsys, ["data", "check", "awa1", "--data-root", str(tmp_path)])
    assert "AWA1/att_splits.mat" in err and ("differ" in err or "not usable" in err), err  # reported
    rc, out, err = _run_cli(capsys, ["data", "check", "awa1", "--data-root", str(tmp_path), "--strict"])
    assert rc == 2, err                                                                        # an error with --strict
    assert "AWA1/att_splits.mat" in err and ("differ" in err or "not usable" in err), err
    assert "att_splits.mat" in out and ("differs from the known xlsa17 copy" in out or "not a readable" in out), out


def test_data_check_lists_missing_classes_and_counts_featuresets(tmp_path, capsys, shared_root):
    (tmp_path / "FLO").symlink_to(shared_root / "FLO")
    (tmp_path / "features").mkdir()
    _planted(tmp_path / "features" / "p.safetensors", dataset="flo")
    rc, out, err = _run_cli(capsys, ["data", "check", "flo", "--data-root", str(tmp_path)])
    assert rc == 0, err
    assert "missing          82 classes (7149 images)" in out
    assert f"{tmp_path / 'features'}: 1 FeatureSet(s) (flo: 1)" in out
    assert str(tmp_path / "features" / "p.safetensors") in out


def test_refused_partial_root_suggests_features(tmp_path, capsys):
    """A root of fewer images than the cub release (here 48): refused by the counts, pointing at --features."""
    res, splits = xlsa17_content()
    root = write_root(tmp_path, res, splits)
    line = assert_clean_error(*cli(capsys, ["gzsl", "--data", "cub", "--data-root", str(root), "--no-progress"]),
                              ["res101.mat", "looks like a partial copy", "--features", "48 images"])
    assert str(root / "CUB" / "res101.mat") in line


# ---------------------------------------------------------------- items 10 and 11: messages name the command line
@pytest.mark.parametrize("args, words", [
    (["tables", "--seeds", "0"], ["--seeds", ">= 1"]),
    (["tables", "--device", "bogus"], ["--device bogus", "not a device"]),
    (["tables", "--exp", "demo", "--cell", "epochs=-1", "--dry-run"], ["command line", "epochs", "-1"]),
    (["tables", "--exp", "demo", "--set", "n_synth=-5", "--dry-run"], ["command line", "n_synth", "-5"]),
    (["gzsl", "--set", "lr"], ["--set 'lr'", "KEY=VALUE", "--set n_synth=100"]),
    (["gzsl", "--clf-set", "lr"], ["--clf-set 'lr'", "--clf-set epochs=20"]),
    (["gzsl", "--device", "bogus"], ["--device bogus", "not a device"]),
], ids=["seeds-0", "tables-device", "cell", "set", "set-message", "clf-set-message", "gzsl-device"])
def test_command_line_faults_are_named_as_the_command_line(capsys, no_work, args, words):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert "experiments/demo.yaml:" not in err  # never blamed on a file the user did not touch
