"""Bad input, clear errors: one row per bad input of issue 7, each run through the real CLI.

Every row asserts exit code 2, the key words of the one-line message (the file / field /
value and what to do), and that no traceback reaches stderr. The xlsa17 rows use a tiny
but complete root (8 classes, 48 images) registered as the ``cub`` spec, so that the
reader's spec checks run as they do on the real files; each row breaks one thing.

Extraction's truncated-image policy (``--on-bad-image fail|skip``) has its own CLI test in
tests/test_extract_engine.py (test_truncated_jpeg_cli_exit_2) and is not repeated here.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import scipy.io as sio
import torch
from safetensors.torch import save_file

from zsgm.extract import specs
from zsgm.core.project import PROJECT_ROOT
from zsgm.extract.specs import DatasetSpec
from zsgm.pipelines.cli import main

# ---------------------------------------------------------------- a tiny, valid xlsa17 root
N_CLS, N_SEEN, PER, A_DIM, F_DIM = 8, 5, 6, 7, 16
TINY = DatasetSpec("cub", "CUB", "att_splits.mat", N_CLS * PER, N_SEEN * 4, N_SEEN * 2, (N_CLS - N_SEEN) * PER,
                   N_SEEN, N_CLS - N_SEEN, A_DIM, "tiny CUB-shaped fixture")


def _cell(names: list[str]) -> np.ndarray:
    return np.array([[np.array([n])] for n in names], dtype=object).reshape(-1, 1)


def _col(idx) -> np.ndarray:  # 1-based float64 columns, as the real files store them
    return (np.asarray(idx, dtype=np.int64) + 1).astype(np.float64).reshape(-1, 1)


def xlsa17_content(seed: int = 0) -> tuple[dict, dict]:
    """(res101.mat, att_splits.mat) contents of a valid tiny benchmark."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(N_CLS), PER)
    tv, ts, tu = [], [], []
    for c in range(N_CLS):
        idx = np.nonzero(labels == c)[0]
        if c < N_SEEN:
            tv += idx[:4].tolist()
            ts += idx[4:].tolist()
        else:
            tu += idx.tolist()
    res = {"features": rng.random((F_DIM, len(labels))), "labels": (labels + 1).astype(np.float64).reshape(-1, 1),
           "image_files": _cell([f"img_{i:03d}.jpg" for i in range(len(labels))])}
    att = rng.random((A_DIM, N_CLS))
    splits = {"att": att, "original_att": att * 100, "trainval_loc": _col(tv), "test_seen_loc": _col(ts),
              "test_unseen_loc": _col(tu), "allclasses_names": _cell([f"{c + 1:03d}.class_{c}" for c in range(N_CLS)])}
    return res, splits


def write_root(root: Path, res: dict | None, splits: dict | None) -> Path:
    folder = root / "CUB"
    folder.mkdir(parents=True, exist_ok=True)
    if res is not None:
        sio.savemat(str(folder / "res101.mat"), res)
    if splits is not None:
        sio.savemat(str(folder / "att_splits.mat"), splits)
    return root


@pytest.fixture
def tiny_cub(monkeypatch):
    monkeypatch.setitem(specs.DATASETS, "cub", TINY)


def cli(capsys, args: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(args)
    err = capsys.readouterr().err
    return rc, err


def gzsl_args(root: Path, *extra: str) -> list[str]:
    return ["gzsl", "--data", "cub", "--data-root", str(root), "--epochs", "1", "--set", "hidden=64",
            "--no-progress", *extra]


def assert_clean_error(rc: int, err: str, words: list[str]) -> str:
    """Exit 2, every key word in the one message, no traceback; returns the message."""
    assert rc == 2, err
    assert "Traceback" not in err, err
    line = next((ln for ln in err.splitlines() if ": error: " in ln), None)
    assert line is not None, err
    for w in words:
        assert w.lower() in line.lower(), f"{w!r} not in: {line}"
    return line


def test_valid_tiny_root_loads(tmp_path, tiny_cub):
    """The control row: the unbroken root reads (so every failure below is the planted fault)."""
    from zsgm.extract.xlsa17 import load_benchmark

    res, splits = xlsa17_content()
    fs = load_benchmark("cub", write_root(tmp_path, res, splits))
    assert fs.features.shape == (N_CLS * PER, F_DIM) and fs.n_classes == N_CLS and len(fs.unseen_classes) == 3


# ---------------------------------------------------------------- the .mat rows
def _drop(d: dict, key: str) -> None:
    del d[key]


def _nan(a: np.ndarray, v: float = np.nan) -> np.ndarray:
    a = a.copy()
    a.flat[3] = v
    return a


MatFix = Callable[[dict, dict], None]
MAT_ROWS: list[tuple[str, MatFix, list[str]]] = [
    ("split field missing: att", lambda r, s: _drop(s, "att"), ["att_splits.mat", "'att' is missing", "present"]),
    ("split field missing: trainval_loc", lambda r, s: _drop(s, "trainval_loc"),
     ["att_splits.mat", "'trainval_loc' is missing"]),
    ("features field missing", lambda r, s: _drop(r, "features"), ["res101.mat", "'features' is missing"]),
    ("labels field missing", lambda r, s: _drop(r, "labels"), ["res101.mat", "'labels' is missing"]),
    ("features transposed", lambda r, s: r.update(features=r["features"].T),
     ["res101.mat", "transposed", "features.T"]),
    ("att transposed", lambda r, s: s.update(att=s["att"].T), ["att_splits.mat", "transposed", "att.T"]),
    ("att of another size than the spec", lambda r, s: s.update(att=np.vstack([s["att"], s["att"][:2]])),
     ["att_splits.mat", "'att' has shape (9, 8)", "expected [7 x 8]", "right dataset"]),
    ("att is a vector", lambda r, s: s.update(att=s["att"][0]), ["att_splits.mat", "'att'", "shape"]),
    ("wrong image count", lambda r, s: r.update(features=r["features"][:, :-1], labels=r["labels"][:-1]),
     ["res101.mat", "47 images", "expected 48"]),
    ("features / labels mismatch", lambda r, s: r.update(labels=r["labels"][:-2]),
     ["res101.mat", "columns", "labels"]),
    ("locs 0-based", lambda r, s: s.update(trainval_loc=s["trainval_loc"] - 1),
     ["att_splits.mat", "trainval_loc", "1-based", "add 1"]),
    ("loc index past the last image", lambda r, s: s["test_unseen_loc"].__setitem__((0, 0), 49),
     ["att_splits.mat", "test_unseen_loc", "49", "48 images"]),
    ("labels 0-based", lambda r, s: r.update(labels=r["labels"] - 1), ["res101.mat", "labels", "1-based"]),
    ("label beyond the classes", lambda r, s: r["labels"].__setitem__((0, 0), 9),
     ["res101.mat", "label 9", "8 classes", "same dataset"]),
    ("non-integer locs", lambda r, s: s.update(test_seen_loc=s["test_seen_loc"] + 0.5),
     ["att_splits.mat", "test_seen_loc", "non-integer"]),
    ("loc is a matrix", lambda r, s: s.update(trainval_loc=s["trainval_loc"].reshape(4, 5)),
     ["att_splits.mat", "trainval_loc", "column", "(4, 5)"]),
    ("overlapping splits", lambda r, s: s["test_seen_loc"].__setitem__((0, 0), s["trainval_loc"][0, 0]),
     ["att_splits.mat", "trainval_loc", "test_seen_loc", "overlap", "disjoint"]),
    ("non-covering splits", lambda r, s: s.update(test_unseen_loc=s["test_unseen_loc"][:-1]),
     ["att_splits.mat", "test_unseen_loc", "17 indices", "expected 18"]),
    ("index repeated within a split", lambda r, s: s["trainval_loc"].__setitem__((1, 0), s["trainval_loc"][0, 0]),
     ["trainval_loc", "repeats"]),
    ("unseen class among trainval", lambda r, s: _swap_unseen_into_trainval(s),
     ["test_unseen_loc", "seen classes", "trainval_loc"]),
    ("NaN features", lambda r, s: r.update(features=_nan(r["features"])), ["res101.mat", "NaN or inf", "1 images"]),
    ("inf features", lambda r, s: r.update(features=_nan(r["features"], np.inf)), ["res101.mat", "NaN or inf"]),
    ("NaN attributes", lambda r, s: s.update(att=_nan(s["att"])), ["att_splits.mat", "'att'", "NaN or inf"]),
    ("inf attributes", lambda r, s: s.update(att=_nan(s["att"], -np.inf)), ["att_splits.mat", "NaN or inf"]),
    ("class names of another count", lambda r, s: s.update(allclasses_names=s["allclasses_names"][:-1]),
     ["att_splits.mat", "7 allclasses_names", "8 columns"]),
]


def _swap_unseen_into_trainval(s: dict) -> None:
    """Swap one trainval image with one test_unseen image: counts and coverage stay right."""
    tv, tu = s["trainval_loc"], s["test_unseen_loc"]
    tv[0, 0], tu[0, 0] = tu[0, 0], tv[0, 0]


@pytest.mark.parametrize("name, fix, words", MAT_ROWS, ids=[r[0] for r in MAT_ROWS])
def test_bad_xlsa17_files(tmp_path, capsys, tiny_cub, name: str, fix: MatFix, words: list[str]) -> None:
    res, splits = xlsa17_content()
    fix(res, splits)
    root = write_root(tmp_path, res, splits)
    assert_clean_error(*cli(capsys, gzsl_args(root)), words)


def test_garbage_mat_file(tmp_path, capsys, tiny_cub):
    res, splits = xlsa17_content()
    root = write_root(tmp_path, res, splits)
    (root / "CUB" / "att_splits.mat").write_bytes(b"MATLAB 5.0 MAT-file, but then nothing useful" * 3)
    assert_clean_error(*cli(capsys, gzsl_args(root)), ["att_splits.mat", "not a readable MATLAB file",
                                                       "download it again"])


def test_truncated_mat_file(tmp_path, capsys, tiny_cub):
    res, splits = xlsa17_content()
    root = write_root(tmp_path, res, splits)
    p = root / "CUB" / "res101.mat"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    assert_clean_error(*cli(capsys, gzsl_args(root)), ["res101.mat", "not a readable MATLAB file"])


# ---------------------------------------------------------------- missing roots and files
def test_missing_data_root(tmp_path, capsys, tiny_cub):
    line = assert_clean_error(*cli(capsys, gzsl_args(tmp_path / "nowhere")),
                              ["not found", "xlsa17", "--data-root", "ZSGM_DATA"])
    assert str(tmp_path / "nowhere" / "CUB") in line


def test_missing_features_file(tmp_path, capsys, tiny_cub):
    _, splits = xlsa17_content()
    root = write_root(tmp_path, None, splits)
    assert_clean_error(*cli(capsys, gzsl_args(root)), ["res101.mat", "not found", "xlsa17.zip"])


def test_missing_featureset_file(tmp_path, capsys):
    assert_clean_error(*cli(capsys, ["gzsl", "--features", str(tmp_path / "none.safetensors")]),
                       ["none.safetensors", "does not exist", "zsgm extract"])


def test_missing_backbone_cache(tmp_path, capsys):
    assert_clean_error(*cli(capsys, ["gzsl", "--data", "cub", "--backbone", "no_such_net_cached"]),
                       ["no cached features", "no_such_net_cached.safetensors", "make extract"])


def test_extract_missing_dataset_folder(tmp_path, capsys):
    rc, err = cli(capsys, ["extract", "--backbone", "resnet10t", "--random-init", "--data", "cub",
                           "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o.safetensors")])
    assert_clean_error(rc, err, ["not found", "--data-root", "ZSGM_DATA"])


# ---------------------------------------------------------------- FeatureSets
def _planted(path: Path, **meta) -> Path:
    from zsgm.testing import planted_featureset

    fs = planted_featureset(attributes=torch.rand(20, 6, generator=torch.Generator().manual_seed(0)), n_classes=8,
                            n_unseen=2, n_val=2, n_per_class=5, feature_dim=8)
    fs.meta.update(meta)
    return fs.save(path)


def test_featureset_of_another_dataset(tmp_path, capsys):
    p = _planted(tmp_path / "fs.safetensors", dataset="flo")
    assert_clean_error(*cli(capsys, ["gzsl", "--features", str(p), "--data", "cub"]),
                       ["fs.safetensors", "dataset 'flo'", "not 'cub'"])


def test_featureset_of_another_backbone(tmp_path, capsys):
    p = _planted(tmp_path / "fs.safetensors", backbone="resnet101")
    assert_clean_error(*cli(capsys, ["gzsl", "--features", str(p), "--backbone", "vit_large_patch16_224"]),
                       ["fs.safetensors", "backbone 'resnet101'", "not 'vit_large_patch16_224'"])


def test_truncated_featureset(tmp_path, capsys):
    p = _planted(tmp_path / "fs.safetensors")
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    assert_clean_error(*cli(capsys, ["gzsl", "--features", str(p)]),
                       ["fs.safetensors", "not a readable safetensors file", "extract again"])


def test_featureset_with_nan_features(tmp_path, capsys):
    from zsgm.extract.featureset import FeatureSet

    fs = FeatureSet.load(_planted(tmp_path / "ok.safetensors"), mmap_features=False)
    t = fs.tensors()
    t["features"] = t["features"].clone()
    t["features"][2, 1] = float("nan")
    save_file(t, str(tmp_path / "nan.safetensors"), metadata={"dataset": "planted"})  # bypasses validate()
    assert_clean_error(*cli(capsys, ["gzsl", "--features", str(tmp_path / "nan.safetensors")]),
                       ["nan.safetensors", "NaN or inf", "1 rows"])


def test_featureset_missing_tensor(tmp_path, capsys):
    save_file({"features": torch.zeros(3, 2)}, str(tmp_path / "part.safetensors"))
    assert_clean_error(*cli(capsys, ["gzsl", "--features", str(tmp_path / "part.safetensors")]),
                       ["part.safetensors", "lacks tensor", "labels", "extract it again"])


# ---------------------------------------------------------------- names and options
NAME_ROWS = [
    ("unknown model", ["gzsl", "--model", "cramr"], ["unknown generative model 'cramr'", "did you mean 'cramer'",
                                                     "known:", "wgan"]),
    ("unknown classifier", ["gzsl", "--classifier", "sofmax"], ["unknown classifier 'sofmax'",
                                                                "did you mean 'softmax'", "prototype"]),
    ("unknown dataset", ["gzsl", "--data", "cubb"], ["unknown dataset 'cubb'", "did you mean 'cub'", "awa2", "demo"]),
    ("unknown dataset (extract)", ["extract", "--backbone", "resnet10t", "--data", "flowers"],
     ["unknown dataset 'flowers'", "known:", "flo"]),
    ("unknown backbone", ["extract", "--backbone", "resnet10", "--data", "cub"],
     ["unknown backbone", "'resnet10'", "did you mean 'resnet10t'", "closest known"]),
    ("unknown hyper-parameter", ["gzsl", "--set", "hiden=64"], ["unknown hyper-parameter", "hiden", "hidden"]),
    ("--set without =", ["gzsl", "--set", "hidden"], ["--set", "KEY=VALUE"]),
    ("epochs < 1", ["gzsl", "--epochs", "0"], ["--epochs must be an integer >= 1", "got 0"]),
    ("unknown experiment", ["tables", "--exp", "dem", "--dry-run"], ["dem", "did you mean 'demo'"]),
]


@pytest.mark.parametrize("name, args, words", NAME_ROWS, ids=[r[0] for r in NAME_ROWS])
def test_unknown_names(capsys, tmp_path, monkeypatch, name, args, words):
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("ZSGM_DATA", str(tmp_path / "data"))
    assert_clean_error(*cli(capsys, args), words)


# ---------------------------------------------------------------- YAML configs
YAML_ROWS = [
    ("invalid YAML", "grid: {model: [cramer\nseeds: 1\n", ["bad.yaml", "invalid YAML at line 2", "fix the file"]),
    ("not a mapping", "- cramer\n- wgan\n", ["bad.yaml", "mapping"]),
    ("unknown top-level key", "grid: {model: [cramer]}\nseed: 3\n", ["bad.yaml", "unknown key", "seed", "known"]),
    ("unknown run key", "base: {data: demo, epocs: 3}\ngrid: {model: [cramer]}\n", ["unknown key", "epocs"]),
]


@pytest.mark.parametrize("name, text, words", YAML_ROWS, ids=[r[0] for r in YAML_ROWS])
def test_bad_yaml_configs(tmp_path, capsys, monkeypatch, name, text, words):
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    (tmp_path / "bad.yaml").write_text(text)
    assert_clean_error(*cli(capsys, ["tables", "--exp", str(tmp_path / "bad.yaml"), "--dry-run"]), words)


# ---------------------------------------------------------------- weights
def test_weights_of_another_architecture(tmp_path, capsys):
    """--weights with mismatched keys and shapes: the message names them."""
    from fixtures_images import make_cub

    from zsgm.extract import backbones

    make_cub(tmp_path / "root", present_ids=(1,), per_small=2)
    wrong = backbones.create("resnet14t", num_classes=10).state_dict()
    wrong = {k: v for k, v in wrong.items() if not k.startswith("layer4")}  # some keys missing, some shapes off
    save_file({k: v.contiguous() for k, v in wrong.items()}, str(tmp_path / "w.safetensors"))
    rc, err = cli(capsys, ["extract", "--backbone", "resnet10t", "--weights", str(tmp_path / "w.safetensors"),
                           "--data", "cub", "--data-root", str(tmp_path / "root"), "--img-size", "32",
                           "--out", str(tmp_path / "o.safetensors"), "--workers", "0", "--no-progress"])
    line = assert_clean_error(rc, err, ["w.safetensors", "does not fit", "missing", "another shape"])
    assert "layer4" in line  # a missing key is named
    assert not (tmp_path / "o.safetensors").exists()


def test_unreadable_weights_file(tmp_path, capsys):
    from fixtures_images import make_cub

    make_cub(tmp_path / "root", present_ids=(1,), per_small=2)
    (tmp_path / "w.pth").write_bytes(b"not a checkpoint")
    rc, err = cli(capsys, ["extract", "--backbone", "resnet10t", "--weights", str(tmp_path / "w.pth"),
                           "--data", "cub", "--data-root", str(tmp_path / "root"), "--img-size", "32",
                           "--out", str(tmp_path / "o.safetensors"), "--workers", "0", "--no-progress"])
    assert_clean_error(rc, err, ["w.pth", "not a readable checkpoint"])


# ---------------------------------------------------------------- the real console script
def test_subprocess_exit_code_and_debug_traceback(tmp_path):
    """Through a real process: exit 2 and one line; --debug shows the traceback instead."""
    cmd = [sys.executable, "-m", "zsgm.pipelines.cli", "gzsl", "--model", "cramr"]
    r = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("zsgm gzsl: error: unknown generative model 'cramr'")
    r = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], cwd=PROJECT_ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "Traceback" in r.stderr and "ZsgmError" in r.stderr
