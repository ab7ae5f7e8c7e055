"""Reliability (issue 15), in tests/test_bad_inputs.py's style: every bad value is refused with
exit 2 and one message that names the flag, the value and what is allowed, *before* any data
are read or a model built; FeatureSets a run cannot use are refused on load naming the file and
field; no NaN/inf reaches a record; OS errors name the path and the cause; --debug keeps the
exit code.
"""
from __future__ import annotations

import errno
import json
import math
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from zsgm.core.errors import ZsgmError
from zsgm.core.project import PROJECT_ROOT
from zsgm.pipelines import params
from zsgm.pipelines.cli import main, os_failure
from test_bad_inputs import _planted, assert_clean_error, cli


@pytest.fixture
def no_work(monkeypatch):
    """Any data read or model built fails the test loudly (as an internal error, exit 1)."""
    import zsgm.extract.job
    import zsgm.generate.engine
    import zsgm.pipelines.gzsl

    def boom(*a, **k):
        raise AssertionError("work started before the options were checked")

    monkeypatch.setattr(zsgm.pipelines.gzsl, "load_featureset", boom)
    monkeypatch.setattr(zsgm.generate.engine.Engine, "__init__", boom)
    monkeypatch.setattr(zsgm.extract.job, "run", boom)


# ---------------------------------------------------------------- options, before any work
OPTION_ROWS = [
    ("--set hidden=abc", ["gzsl", "--set", "hidden=abc"], ["--set hidden=abc", "integer >= 1", "'abc'"]),
    ("--set epochs=5", ["gzsl", "--set", "epochs=5"], ["--set epochs", "use --epochs", "one way in"]),
    ("--set eval_every=2", ["gzsl", "--set", "eval_every=2"], ["--set eval_every", "use --eval-every"]),
    ("--epochs 0", ["gzsl", "--epochs", "0"], ["--epochs", "integer >= 1", "got 0"]),
    ("--set n_synth=-5", ["gzsl", "--set", "n_synth=-5"], ["--set n_synth=-5", "integer >= 1", "got -5"]),
    ("--set batch_size=0", ["gzsl", "--set", "batch_size=0"], ["--set batch_size=0", "batch_size must be"]),
    ("--set lr=-1", ["gzsl", "--set", "lr=-1"], ["--set lr=-1", "> 0"]),
    ("--set lr=nan", ["gzsl", "--set", "lr=.nan"], ["lr must be a finite number > 0", "nan"]),
    ("--set noise_fraction=2", ["gzsl", "--set", "noise_fraction=2"], ["noise_fraction", "<= 1", "got 2"]),
    ("--set amp=fp8", ["gzsl", "--set", "amp=fp8"], ["--set amp=fp8", "one of off, bf16"]),
    ("--set noise_relative=maybe", ["gzsl", "--set", "noise_relative=maybe"], ["true or false", "'maybe'"]),
    ("--set unknown key", ["gzsl", "--set", "hiden=64"], ["unknown hyper-parameter", "hiden", "known:", "hidden"]),
    ("--clf-set nosuch=1", ["gzsl", "--clf-set", "nosuch=1"],
     ["--clf-set", "unknown option", "nosuch", "classifier 'prototype'", "known:", "lr_step"]),
    ("--clf-set epochs=0", ["gzsl", "--clf-set", "epochs=0"], ["--clf-set epochs=0", "integer >= 1"]),
    ("--clf-set lr=abc", ["gzsl", "--clf-set", "lr=abc"], ["--clf-set lr=abc", "finite number > 0"]),
    ("knn --clf-set k=2.5", ["gzsl", "--classifier", "knn", "--clf-set", "k=2.5"], ["k must be an integer", "2.5"]),
    ("knn takes no lr", ["gzsl", "--classifier", "knn", "--clf-set", "lr=0.1"], ["unknown option", "'knn'"]),
    ("--seed huge", ["gzsl", "--seed", "99999999999999999999999"],
     ["--seed must be an integer >= 0 and <= 4294967295", "99999999999999999999999"]),
    ("--seed -1", ["gzsl", "--seed", "-1"], ["--seed", ">= 0", "got -1"]),
    ("--device bogus", ["gzsl", "--device", "bogus"], ["--device bogus", "not a device", "cpu", "cuda:N"]),
    ("--eval-every 0", ["gzsl", "--eval-every", "0"], ["--eval-every must be an integer >= 1", "got 0"]),
    ("--epochs 0", ["gzsl", "--epochs", "0"], ["--epochs must be an integer >= 1", "got 0"]),
    ("extract --batch-size 0", ["extract", "--backbone", "resnet10t", "--data", "cub", "--batch-size", "0"],
     ["--batch-size must be an integer >= 1", "got 0"]),
    ("extract --shard-size 0", ["extract", "--backbone", "resnet10t", "--data", "cub", "--shard-size", "0"],
     ["--shard-size must be an integer >= 1", "got 0"]),
    ("extract --workers -3", ["extract", "--backbone", "resnet10t", "--data", "cub", "--workers", "-3"],
     ["--workers", ">= -1"]),
    ("extract --img-size 0", ["extract", "--backbone", "resnet10t", "--data", "cub", "--img-size", "0"],
     ["--img-size", ">= 8"]),
    ("extract --device bogus", ["extract", "--backbone", "resnet10t", "--data", "cub", "--device", "bogus"],
     ["--device bogus", "not a device"]),
    ("extract --lr 0", ["extract", "--backbone", "resnet10t", "--data", "cub", "--scratch", "--lr", "0"],
     ["--lr must be a finite number > 0", "got 0.0"]),
]
if not torch.cuda.is_available():
    OPTION_ROWS.append(("--device cuda without CUDA", ["gzsl", "--device", "cuda"], ["--device cuda", "no CUDA"]))


@pytest.mark.parametrize("name, args, words", OPTION_ROWS, ids=[r[0] for r in OPTION_ROWS])
def test_bad_option_refused_before_any_work(capsys, no_work, name, args, words):
    assert_clean_error(*cli(capsys, [*args, "--no-progress"] if args[0] == "gzsl" else args), words)


def test_debug_keeps_exit_2_and_shows_the_traceback(capsys, no_work):
    rc, err = cli(capsys, ["gzsl", "--debug", "--set", "hidden=abc"])
    assert rc == 2 and "Traceback" in err and "ZsgmError" in err
    assert err.strip().splitlines()[-1].startswith("zsgm gzsl: error: --set hidden=abc")


def test_bad_value_in_a_yaml_layer_names_the_file(tmp_path, capsys, monkeypatch, no_work):
    """A YAML default out of range is refused too, naming the file and key."""
    from zsgm.pipelines import config

    models = tmp_path / "models"
    models.mkdir()
    shared = (config.CONFIG_DIR / "models" / "_shared.yaml").read_text()
    (models / "_shared.yaml").write_text(shared.replace("n_synth: 400", "n_synth: 0"))
    (tmp_path / "datasets").mkdir()
    monkeypatch.setattr(config, "CONFIG_DIR", tmp_path)
    assert_clean_error(*cli(capsys, ["gzsl", "--data", "cub", "--no-progress"]),
                       ["_shared.yaml", "hp.n_synth must be an integer >= 1", "got 0"])


def test_grid_cells_are_checked_too():
    from zsgm.pipelines.config import RunConfig

    with pytest.raises(ZsgmError, match=r"cell x: hp.hidden must be an integer >= 1 and <= 65536, got 0"):
        RunConfig.from_dict({"hp": {"hidden": 0}}, "cell x")


# ---------------------------------------------------------------- the declarations themselves
def _yaml_hp_keys() -> dict[str, list]:
    from zsgm.pipelines.config import CONFIG_DIR, load_yaml

    out: dict[str, list] = {}
    for path in sorted((CONFIG_DIR / "models").glob("*.yaml")) + sorted((CONFIG_DIR / "datasets").glob("*.yaml")):
        for k, v in (load_yaml(path).get("hp") or {}).items():
            out.setdefault(k, []).append((path.name, v))
    return out


def test_every_hyper_parameter_is_typed_and_its_defaults_fit():
    """A key added to a YAML config is declared in pipelines/params.py, or its default gives it a type;
    every shipped value satisfies its declaration (a range declared too tight fails here)."""
    for key, uses in _yaml_hp_keys().items():
        declared = params.HP.get(key)
        for file, value in uses:
            assert declared or value is not None, f"{file}: hp.{key} is null: declare its type in pipelines/params.py"
            p = declared or params.inferred(value)
            assert p.ok(value), f"{file}: hp.{key}={value!r} violates its declaration ({p.allowed()})"


def test_every_classifier_option_has_a_typed_yaml_default():
    """Each classifier's Options fields are exactly its YAML options:, each default within its declaration."""
    import dataclasses

    from zsgm.evaluate.classifiers import CLASSIFIERS
    from zsgm.pipelines.config import classifier_layer

    for name, entry in CLASSIFIERS.items():
        options = params.classifier_options(name)
        shipped = classifier_layer(name)["options"]
        assert set(shipped) == {f.name for f in dataclasses.fields(entry.cls.Options)} == set(options), name
        for key, value in shipped.items():
            assert options[key].ok(value), f"{name}.{key}={value!r}: {options[key].allowed()}"


def test_every_shipped_model_and_classifier_config_passes():
    from zsgm.evaluate.classifiers import CLASSIFIERS
    from zsgm.generate.registry import MODELS
    from zsgm.pipelines.config import RunConfig

    for model in MODELS:
        for clf in CLASSIFIERS:
            RunConfig(model=model, classifier=clf).check()
    RunConfig(data="awa2").check()


def test_param_bounds():
    assert params.Int(1).ok(3) and params.Int(1).ok(3.0) and not params.Int(1).ok(0)
    assert not params.Int(1).ok(True) and not params.Int(1).ok("3") and not params.Int(1).ok(2.5)
    assert params.Float(0, lo_open=True).ok(1e-9) and not params.Float(0, lo_open=True).ok(0.0)
    assert not params.Float().ok(float("inf")) and not params.Float().ok(float("nan"))
    assert params.Float(0, 1).ok(1) and not params.Float(0, 1, hi_open=True).ok(1)
    assert params.SWITCH.ok("auto") and params.SWITCH.ok(False) and params.SWITCH.ok("OFF")
    assert not params.SWITCH.ok("sometimes")
    assert params.Int(1, nullable=True).ok(None) and not params.Int(1).ok(None)


# ---------------------------------------------------------------- FeatureSets a run cannot use
def _variant(tmp_path: Path, name: str, change) -> Path:
    """The planted FeatureSet with one change, written as raw safetensors (bypassing validate())."""
    from zsgm.extract.featureset import FeatureSet

    fs = FeatureSet.load(_planted(tmp_path / "ok.safetensors"), mmap_features=False)
    tensors = {k: v.clone() for k, v in fs.tensors().items()}
    meta = {**fs.meta, "class_names": json.dumps(fs.class_names), "image_files": json.dumps(fs.image_files)}
    change(tensors, meta)
    save_file(tensors, str(tmp_path / name), metadata=meta)
    return tmp_path / name


FS_ROWS = [
    ("no unseen test images", lambda t, m: t.update(test_unseen_loc=torch.zeros(0, dtype=torch.long)),
     ["x.safetensors", "not a GZSL problem", "test_unseen_loc is empty", "--classes"]),
    ("no seen test images", lambda t, m: t.update(test_seen_loc=torch.zeros(0, dtype=torch.long)),
     ["x.safetensors", "test_seen_loc is empty"]),
    ("zero-width attributes", lambda t, m: t.update(attributes=torch.zeros(t["attributes"].shape[0], 0)),
     ["x.safetensors", "attributes has shape (8, 0)", "at least 1 attribute"]),
    ("class_names not JSON", lambda t, m: m.update(class_names="['a', 'b'"),
     ["x.safetensors", "metadata field 'class_names'", "not valid JSON"]),
    ("class_names not a list", lambda t, m: m.update(class_names='{"a": 1}'),
     ["x.safetensors", "'class_names' must be a JSON list of strings", "dict"]),
    ("image_files of numbers", lambda t, m: m.update(image_files="[1, 2]"),
     ["x.safetensors", "'image_files' must be a JSON list of strings"]),
]


@pytest.mark.parametrize("name, change, words", FS_ROWS, ids=[r[0] for r in FS_ROWS])
def test_unusable_featureset_refused(tmp_path, capsys, monkeypatch, name, change, words):
    import zsgm.generate.engine

    monkeypatch.setattr(zsgm.generate.engine.Engine, "__init__", lambda *a, **k: pytest.fail("a model was built"))
    path = _variant(tmp_path, "x.safetensors", change)
    assert_clean_error(*cli(capsys, ["gzsl", "--features", str(path), "--no-progress"]), words)


def test_huge_header_refused_with_a_reason(tmp_path, capsys):
    p = _planted(tmp_path / "h.safetensors")
    raw = p.read_bytes()
    p.write_bytes(struct.pack("<Q", 2**62) + raw[8:])
    line = assert_clean_error(*cli(capsys, ["gzsl", "--features", str(p)]),
                              ["h.safetensors", f"header claims {2**62} bytes", "truncated or not a safetensors"])
    assert "()" not in line


def test_directory_for_featureset(tmp_path, capsys):
    (tmp_path / "d.safetensors").mkdir()
    assert_clean_error(*cli(capsys, ["gzsl", "--features", str(tmp_path / "d.safetensors")]),
                       ["d.safetensors", "is a directory, not a file"])


def test_unreadable_featureset_names_the_cause(tmp_path, capsys, monkeypatch):
    import zsgm.extract.featureset

    p = _planted(tmp_path / "p.safetensors")

    def denied(path, *a):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(zsgm.extract.featureset, "_read_safetensors", denied)
    line = assert_clean_error(*cli(capsys, ["gzsl", "--features", str(p)]),
                              ["p.safetensors", "cannot be read: Permission denied", "permissions"])
    assert "delete it" not in line  # the file may be fine: never advise deleting it


# ---------------------------------------------------------------- records: no NaN, strict JSON
def test_records_never_hold_nan(tmp_path):
    from zsgm.evaluate.records import NonFiniteMetric, append_record, finite_record, read_records

    good = {"id": "a-s0", "U": 10.0, "S": 20.0, "H": 13.33, "zsl": 11.0, "val": {"eval_zsl": float("nan")},
            "hp": {"x": float("inf")}}
    store = append_record(good, tmp_path / "runs.jsonl")
    line = store.read_text().strip()
    json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in the store"))
    rec = read_records(store)[0]
    assert rec["val"]["eval_zsl"] is None and rec["nulls"] == {"val.eval_zsl": "nan", "hp.x": "inf"}
    for metric in ("U", "H", "zsl"):
        with pytest.raises(NonFiniteMetric, match=f"{metric}=nan"):
            append_record({**good, "id": "b-s0", metric: float("nan")}, store)
    assert len(read_records(store)) == 1  # nothing appended for the NaN runs
    assert math.isfinite(finite_record(good)["U"])


def test_torn_last_line_is_reported(tmp_path, caplog):
    from zsgm.evaluate.records import append_record, read_records

    store = append_record({"id": "a-s0", "U": 1.0, "S": 2.0, "H": 1.33, "zsl": 1.0}, tmp_path / "runs.jsonl")
    with open(store, "a") as fh:
        fh.write('{"id": "b-s0", "U": 1')
    with caplog.at_level("WARNING", logger="zsgm"):
        assert len(read_records(store)) == 1
    assert any("skipping its last line" in r.getMessage() and "runs.jsonl" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- OS errors
def _raise_in_writer(exc: BaseException):
    def append_record(record, store):  # noqa: ARG001  (a writer: its ``store`` is the path to name)
        path = store
        raise exc

    return append_record


@pytest.mark.parametrize("exc, code, words", [
    (OSError(errno.ENOSPC, "No space left on device"), 2, ["/x/runs.jsonl", "No space left", "free some space"]),
    (PermissionError(errno.EACCES, "Permission denied", "/x/runs.jsonl"), 2,
     ["/x/runs.jsonl", "Permission denied", "permissions"]),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/x/runs.jsonl"), 2, ["/x/runs.jsonl", "directory"]),
    (OSError(errno.EROFS, "Read-only file system"), 2, ["/x/runs.jsonl", "Read-only", "elsewhere"]),
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 13568 vs 13462"), 2,
     ["could not write /x/runs.jsonl", "RuntimeError", "disk is full", "ulimit -f"]),
    (RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })"), 2,
     ["/x/runs.jsonl", "No space left on device"]),
    (OSError(errno.EIO, "Input/output error", "/x/f"), 1, ["/x/f", "Input/output error", "EIO"]),
])
def test_os_failure_names_path_and_cause(exc, code, words):
    with pytest.raises(BaseException) as info:
        _raise_in_writer(exc)({}, "/x/runs.jsonl")
    got = os_failure(info.value)
    assert got is not None and got[0] == code, got
    for w in words:
        assert w.lower() in got[1].lower(), (w, got[1])


def test_not_an_os_failure():
    try:
        raise KeyError("epoch")
    except KeyError as exc:
        assert os_failure(exc) is None


GZSL_TINY = ["gzsl", "--epochs", "1", "--set", "hidden=32", "--clf-set", "epochs=1", "--clf-set", "min_steps=1",
             "--no-progress", "--data", "demo"]


def test_results_store_is_a_directory(tmp_path, capsys, monkeypatch):
    """A real run whose store path is a directory: exit 2 naming it (was: internal error)."""
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    (tmp_path / "results" / "runs.jsonl").mkdir(parents=True)
    p = _planted(tmp_path / "fs.safetensors")
    rc, err = cli(capsys, [*GZSL_TINY, "--features", str(p)])
    assert_clean_error(rc, err, [str(tmp_path / "results" / "runs.jsonl"), "Is a directory", "move it away"])


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE as a stand-in for a full disk")
def test_full_disk_names_the_file(tmp_path):
    """A file-size limit makes the first large write (a checkpoint) fail as a full disk would."""
    p = _planted(tmp_path / "fs.safetensors")
    env = {**os.environ, "ZSGM_RESULTS": str(tmp_path / "results"), "OMP_NUM_THREADS": "1"}

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))

    r = subprocess.run([sys.executable, "-m", "zsgm.pipelines.cli", *GZSL_TINY, "--features", str(p)], cwd=PROJECT_ROOT,
                       env=env, capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "Traceback" not in r.stderr and str(tmp_path / "results" / "runs") in last, last
    assert "could not write" in last or "File too large" in last, last


# ---------------------------------------------------------------- extraction says it resumed
def test_resumed_extraction_says_so(tmp_path, caplog):
    from zsgm.extract.extractor import EngineConfig, Interrupted
    from zsgm.extract.job import run
    from fixtures_images import make_cub
    from test_extract_engine import request

    make_cub(tmp_path / "root")
    eng = EngineConfig(batch_size=4, workers=0, shard_size=8, progress=False, stop_after_shards=1)
    with pytest.raises(Interrupted):
        run(request(tmp_path / "root", tmp_path / "b.safetensors", engine=eng))
    with caplog.at_level("INFO", logger="zsgm"):
        run(request(tmp_path / "root", tmp_path / "b.safetensors"))
    assert any("resuming the extraction" in r.getMessage() and "1 of" in r.getMessage() for r in caplog.records)
