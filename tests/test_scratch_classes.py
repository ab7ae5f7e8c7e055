"""``zsgm extract --scratch --scratch-classes train``: the from-scratch backbone never sees the
validation classes, its FeatureSet says which classes it saw, and the record's
``selection_saw_val_classes`` follows (true for the default ``trainval``, false for ``train``)."""
from __future__ import annotations

import json

import pytest
import torch

from zsgm.extract import images, scratch
from zsgm.core.errors import ZsgmError
from zsgm.extract.extractor import EngineConfig
from zsgm.extract.featureset import FeatureSet
from zsgm.extract.job import ExtractRequest, default_output, run
from zsgm.extract.layouts import open_root
from fixtures_images import make_cub, make_flo
from zsgm.pipelines.cli import main

CFG = dict(epochs=1, batch_size=4, img_size=32, workers=0, warmup_epochs=0)


def test_train_classes_leave_the_validation_classes_out(tmp_path):
    fx = make_cub(tmp_path / "root")  # present: 2 training, 2 validation, 2 unseen classes
    raw = open_root("cub", tmp_path / "root")
    val = fx.info["val"] & set(fx.present)
    assert val and set(int(c) for c in raw.val_classes) >= val
    cls = {p: raw.records[p].cls for p in range(len(raw.records))}
    every = scratch.training_positions(raw)
    train = scratch.training_positions(raw, "train")
    assert {cls[p] for p in every} & val == val  # default: the validation classes are trained on
    assert not {cls[p] for p in train} & val  # train: never
    assert set(train) == {p for p in every if cls[p] not in val}
    assert set(scratch.trained_classes(raw, "train")) == (fx.info["seen"] - val) & set(fx.present)
    with pytest.raises(ZsgmError, match="scratch-classes"):
        scratch.training_positions(raw, "val")


def test_train_classes_need_validation_classes(tmp_path):
    make_flo(tmp_path / "root", present_labels=(1, 2, 21, 22))  # the only seen classes are validation classes
    raw = open_root("flo", tmp_path / "root")
    assert scratch.training_positions(raw)
    with pytest.raises(ZsgmError, match="outside the validation classes"):
        scratch.training_positions(raw, "train")
    raw.val_classes = None
    with pytest.raises(ZsgmError, match="needs the validation classes"):
        scratch.training_positions(raw, "train")


def test_key_and_default_output_keep_the_default_unchanged():
    assert scratch.ScratchConfig().key() == scratch.ScratchConfig(classes="trainval").key()
    assert scratch.ScratchConfig(classes="train").key() != scratch.ScratchConfig().key()
    assert default_output("cub", "resnet10t", "scratch").name == "resnet10t_scratch.safetensors"
    assert default_output("cub", "resnet10t", "scratch", "train").name == "resnet10t_scratch_train.safetensors"


@pytest.mark.parametrize("which", ["trainval", "train"])
def test_metadata_and_record_flag_follow(tmp_path, monkeypatch, which):
    fx = make_cub(tmp_path / "root")
    val = fx.info["val"] & set(fx.present)
    opened: list[int] = []  # images opened by the backbone's training (not by the extraction after it)
    real_train = scratch.train

    def watched_train(*args, **kwargs):
        monkeypatch.setattr(images, "OPEN_HOOK", lambda r: opened.append(r.index))
        try:
            return real_train(*args, **kwargs)
        finally:
            monkeypatch.setattr(images, "OPEN_HOOK", None)

    monkeypatch.setattr(scratch, "train", watched_train)
    req = ExtractRequest(data="cub", backbone="resnet10t", data_root=str(tmp_path / "root"), scratch=True,
                         out=str(tmp_path / "f.safetensors"), img_size=32, device="cpu",
                         engine=EngineConfig(batch_size=8, workers=0, shard_size=64, progress=False),
                         train=scratch.ScratchConfig(classes=which, **CFG))
    fs = FeatureSet.load(run(req))
    assert opened and set(opened) <= set(fx.locs["trainval_loc"].tolist())
    trained_on = {int(fx.labels[i]) for i in opened}
    assert trained_on & val == (val if which == "trainval" else set())
    assert trained_on == set(scratch.trained_classes(open_root("cub", tmp_path / "root"), which))
    assert fs.meta["scratch_classes"] == which
    names = set(json.loads(fs.meta["scratch_trained_classes"]))
    assert names == {fx.names[c] for c in trained_on}
    assert json.loads(fs.meta["scratch_config"])["classes"] == which

    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    # a one-epoch backbone's features may give a degenerate result (exit 3, recorded as collapsed): the
    # record's flags are what this checks
    assert main(["gzsl", "--features", str(tmp_path / "f.safetensors"), "--model", "ridge", "--classifier",
                 "softmax", "--clf-set", "epochs=2", "--json", "--no-progress"]) in (0, 3)
    rec = json.loads((tmp_path / "results" / "runs.jsonl").read_text().strip().splitlines()[-1])
    assert rec["selection"] == "validation" and rec["pretrained"] == "scratch"
    assert rec["selection_saw_val_classes"] is (which == "trainval")


def test_scratch_classes_need_scratch(tmp_path):
    make_cub(tmp_path / "root")
    req = ExtractRequest(data="cub", backbone="resnet10t", data_root=str(tmp_path / "root"), device="cpu",
                         random_init=True, train=scratch.ScratchConfig(classes="train"))
    with pytest.raises(ZsgmError, match="add --scratch"):
        run(req)
