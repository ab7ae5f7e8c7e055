"""From-scratch training on seen classes: no test image is ever opened, checkpoints resume,
and a 2-process torchrun run (gloo, CPU) completes."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zsgm.extract import images, scratch
from zsgm.core.project import PROJECT_ROOT
from zsgm.extract.featureset import FeatureSet
from zsgm.extract.layouts import open_root
from fixtures_images import make_cub

CFG = dict(batch_size=4, img_size=32, workers=0, warmup_epochs=0, lr=1e-3)


class Stop(Exception):
    pass


def test_training_opens_only_trainval_images(tmp_path, monkeypatch):
    fx = make_cub(tmp_path / "root")
    raw = open_root("cub", tmp_path / "root")
    opened: list[int] = []
    monkeypatch.setattr(images, "OPEN_HOOK", lambda r: opened.append(r.index))
    out = scratch.train(raw, "resnet10t", scratch.ScratchConfig(epochs=2, **CFG), tmp_path / "work",
                        torch.device("cpu"), progress=False)
    trainval = set(fx.locs["trainval_loc"].tolist())
    assert opened and set(opened) <= trainval
    assert set(opened) == trainval & set(fx.paths)  # every training image, each epoch
    assert len(opened) == 2 * len(set(opened))  # two epochs
    assert out.is_file()


def test_guard_refuses_test_positions(tmp_path):
    make_cub(tmp_path / "root")
    raw = open_root("cub", tmp_path / "root")
    pos = scratch.training_positions(raw)
    ds = images.ImageList(raw.records, lambda im: torch.zeros(1), allowed=set(pos))
    test_pos = next(p for p in range(len(raw.records)) if p not in pos)
    with pytest.raises(RuntimeError, match="outside"):
        ds[test_pos]


def test_checkpoint_resume_continues_after_last_epoch(tmp_path, monkeypatch):
    make_cub(tmp_path / "root")
    raw = open_root("cub", tmp_path / "root")
    cfg = scratch.ScratchConfig(epochs=2, **CFG)
    epochs_run: list[int] = []
    real_save = scratch.atomic_torch_save

    def save_then_die(obj, path):  # the process "dies" right after epoch 1's checkpoint
        real_save(obj, path)
        epochs_run.append(obj["epoch"])
        if obj["epoch"] == 0 and len(epochs_run) == 1:
            raise Stop

    monkeypatch.setattr(scratch, "atomic_torch_save", save_then_die)
    with pytest.raises(Stop):
        scratch.train(raw, "resnet10t", cfg, tmp_path / "work", torch.device("cpu"), progress=False)
    scratch.train(raw, "resnet10t", cfg, tmp_path / "work", torch.device("cpu"), progress=False)
    assert epochs_run == [0, 1]  # the second run did epoch 2 only


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed beside this Python")
def test_torchrun_two_processes_scratch_then_extract(tmp_path):
    fx = make_cub(tmp_path / "root")
    out = tmp_path / "cub_scratch.safetensors"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000), "-m",
           "zsgm.pipelines.cli", "extract", "--backbone", "resnet10t", "--scratch", "--epochs", "1", "--img-size", "32",
           "--data", "cub", "--data-root", str(tmp_path / "root"), "--out", str(out), "--workers", "0",
           "--train-batch-size", "4", "--batch-size", "4", "--shard-size", "8", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    fs = FeatureSet.load(out)
    assert fs.features.shape[0] == len(fx.paths) and fs.meta["pretrained"] == "scratch"
    assert out.with_name(out.stem + ".weights.safetensors").is_file()
    # Only rank 0 logs under torchrun; its share of the training images shows the other rank trained
    # on the rest (a DistributedSampler gives each of 2 ranks at most half, rounded up).
    total = int(re.search(r"scratch training on (\d+) trainval images", r.stderr).group(1))
    on_rank0 = int(re.search(r"\((\d+) images on rank 0\)", r.stderr).group(1))
    assert 0 < on_rank0 <= (total + 1) // 2 < total and "on rank 1" not in r.stderr
