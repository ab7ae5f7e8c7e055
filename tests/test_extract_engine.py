"""Extraction end to end on generated roots: FeatureSet content, resume, bad images, provenance."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from zsgm.extract import specs
from zsgm.core.errors import ZsgmError
from zsgm.core.project import PROJECT_ROOT
from zsgm.extract.extractor import EngineConfig, Interrupted
from zsgm.extract.featureset import FeatureSet
from zsgm.extract.job import ExtractRequest, run, work_dir
from fixtures_images import make_apy, make_cub, make_flo

TINY = dict(backbone="resnet10t", random_init=True, img_size=32)


def request(root: Path, out: Path, data: str = "cub", **kw) -> ExtractRequest:
    eng = kw.pop("engine", None) or EngineConfig(batch_size=4, workers=0, shard_size=8, progress=False)
    return ExtractRequest(data=data, data_root=str(root), out=str(out), engine=eng, **{**TINY, **kw})


def check_featureset(fs: FeatureSet, fx, n_total_classes: int) -> None:
    """Subset rows in xlsa17 order, labels 0..k-1, split membership kept, attributes of the classes present."""
    idx = fs.extra["xlsa17_index"].numpy()
    assert idx.tolist() == sorted(fx.paths)
    assert fs.features.shape[0] == len(fx.paths) and fs.features.dtype == torch.float16
    assert torch.isfinite(fs.features.float()).all()
    present = fx.present
    assert fs.labels.tolist() == [present.index(int(fx.labels[i])) for i in idx]
    for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc"):
        want = [p for p, i in enumerate(idx) if fx.split_of(int(i)) == k]
        assert getattr(fs, k).tolist() == want, k
    assert fs.attributes.shape[0] == len(present)
    assert fs.meta["n_classes_total"] == str(n_total_classes)


def test_cub_partial_root_to_featureset(tmp_path):
    fx = make_cub(tmp_path / "root", shared_layout=True)
    out = run(request(tmp_path / "root", tmp_path / "cub.safetensors"))
    fs = FeatureSet.load(out)
    check_featureset(fs, fx, 200)
    import scipy.io as sio

    att = sio.loadmat(str(tmp_path / "root" / "CUB" / "att_splits.mat"))["att"]
    assert np.allclose(fs.attributes.numpy(), att.T[fx.present], atol=1e-6)
    assert fs.class_names == [fx.names[c] for c in fx.present]
    # validation classes among those present, as positions of the subset
    assert fs.val_classes.tolist() == sorted(fx.present.index(c) for c in fx.info["val"] if c in fx.present)
    for key in ("dataset", "backbone", "weights", "pretrained", "transform", "image_list_hash", "code_version",
                "created", "provenance_key"):
        assert fs.meta[key], key
    assert fs.meta["pretrained"] == "random" and not work_dir(out).exists()


def test_flo_train_val_locs_kept(tmp_path):
    fx = make_flo(tmp_path / "root")
    fs = FeatureSet.load(run(request(tmp_path / "root", tmp_path / "flo.safetensors", data="flo")))
    check_featureset(fs, fx, 102)
    idx = fs.extra["xlsa17_index"].numpy()
    assert fs.extra["train_loc"].tolist() == [p for p, i in enumerate(idx) if fx.labels[i] >= 40]
    assert "val_classes" not in fs.extra and "val_loc" not in fs.extra  # labels 21-40 are not present


def test_apy_crops_differ_within_one_photo(tmp_path, monkeypatch):
    fx, spec = make_apy(tmp_path / "root")
    monkeypatch.setitem(specs.DATASETS, "apy", spec)
    fs = FeatureSet.load(run(request(tmp_path / "root", tmp_path / "apy.safetensors", data="apy")))
    check_featureset(fs, fx, 5)
    assert not torch.equal(fs.features[0], fs.features[1])  # two boxes of the same photo


def test_interrupted_run_resumes_bit_identical(tmp_path):
    make_cub(tmp_path / "root")
    full = FeatureSet.load(run(request(tmp_path / "root", tmp_path / "a.safetensors")))
    eng = EngineConfig(batch_size=4, workers=0, shard_size=8, progress=False, stop_after_shards=2)
    with pytest.raises(Interrupted):
        run(request(tmp_path / "root", tmp_path / "b.safetensors", engine=eng))
    shards = sorted(work_dir(tmp_path / "b.safetensors").glob("shard_*"))
    assert len(shards) == 2 and not (tmp_path / "b.safetensors").exists()
    eng = EngineConfig(batch_size=4, workers=0, shard_size=8, progress=False)
    fs = FeatureSet.load(run(request(tmp_path / "root", tmp_path / "b.safetensors", engine=eng)))
    assert torch.equal(fs.features, full.features)
    assert fs.meta["images_per_s"] and fs.meta["provenance_key"] == full.meta["provenance_key"]


def test_sigkilled_cli_run_resumes(tmp_path):
    """A real SIGKILL after the first shard; the re-run finishes and equals an uninterrupted run."""
    make_cub(tmp_path / "root")
    out = tmp_path / "k.safetensors"
    cmd = [sys.executable, "-m", "zsgm.pipelines.cli", "extract", "--backbone", "resnet10t", "--random-init",
           "--img-size", "32", "--data", "cub", "--data-root", str(tmp_path / "root"), "--out", str(out),
           "--workers", "0", "--batch-size", "4", "--shard-size", "8", "--no-progress"]
    env = {**os.environ, "ZSGM_TEST_KILL_AFTER_SHARDS": "1"}
    first = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == -9, first.stderr
    assert len(list(work_dir(out).glob("shard_*"))) == 1 and not out.exists()
    second = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    ref = run(request(tmp_path / "root", tmp_path / "ref.safetensors"))
    assert torch.equal(FeatureSet.load(out).features, FeatureSet.load(ref).features)


def test_truncated_jpeg_fails_by_path_or_is_skipped(tmp_path):
    fx = make_cub(tmp_path / "root")
    bad = fx.paths[3]
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ZsgmError) as e:
        run(request(tmp_path / "root", tmp_path / "x.safetensors"))
    assert str(bad) in str(e.value) and "--on-bad-image skip" in str(e.value)
    eng = EngineConfig(batch_size=4, workers=0, shard_size=8, progress=False, on_bad_image="skip")
    fs = FeatureSet.load(run(request(tmp_path / "root", tmp_path / "x.safetensors", engine=eng)))
    assert 3 not in fs.extra["xlsa17_index"].tolist()
    assert fs.features.shape[0] == len(fx.paths) - 1
    assert bad.name in fs.meta["skipped_images"]


def test_truncated_jpeg_cli_exit_2(tmp_path):
    fx = make_cub(tmp_path / "root")
    bad = fx.paths[0]
    bad.write_bytes(bad.read_bytes()[:200])
    r = subprocess.run([sys.executable, "-m", "zsgm.pipelines.cli", "extract", "--backbone", "resnet10t",
                        "--random-init", "--img-size", "32", "--data", "cub", "--data-root", str(tmp_path / "root"),
                        "--out", str(tmp_path / "o.safetensors"), "--workers", "1", "--no-progress"],
                       cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and str(bad) in r.stderr and "Traceback" not in r.stderr


def test_provenance_reuse_and_rebuild(tmp_path, caplog):
    make_cub(tmp_path / "root")
    out = tmp_path / "p.safetensors"
    run(request(tmp_path / "root", out))
    first = FeatureSet.load(out).meta["created"]
    mtime = out.stat().st_mtime_ns
    run(request(tmp_path / "root", out))
    assert out.stat().st_mtime_ns == mtime  # same inputs: reused
    run(request(tmp_path / "root", out, img_size=48))  # another transform: rebuilt
    fs = FeatureSet.load(out)
    assert "48" in fs.meta["transform"] and fs.meta["provenance_key"] and fs.meta["created"] >= first
    assert out.stat().st_mtime_ns != mtime


def test_missing_weights_fail_before_work(tmp_path, monkeypatch):
    make_cub(tmp_path / "root")
    monkeypatch.setenv("ZSGM_WEIGHTS", str(tmp_path / "weights"))
    with pytest.raises(ZsgmError) as e:
        run(request(tmp_path / "root", tmp_path / "w.safetensors", backbone="convnext_tiny", random_init=False))
    msg = str(e.value)
    assert "weights/convnext_tiny.safetensors" in msg and "--weights" in msg and not work_dir(tmp_path / "w.safetensors").exists()
