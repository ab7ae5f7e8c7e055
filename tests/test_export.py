"""``zsgm export`` and ``--features some/res101.mat``: the .mat files as the field's codebases
read them, and a round trip that keeps validation classes and provenance."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io as sio
import torch

from zsgm.core.errors import ZsgmError
from zsgm.extract.featureset import FeatureSet
from zsgm.testing import planted_featureset
from zsgm.extract.xlsa17 import from_xlsa17, load_mat, to_xlsa17
from zsgm.pipelines.cli import main

LOC_KEYS = ("train_loc", "val_loc", "trainval_loc", "test_seen_loc", "test_unseen_loc")


def peer_loader(folder, embedding: str = "res101", class_embedding: str = "att") -> dict:
    """The xlsa17 loader as tfvaegan's and CE-GZSL's util.DATA_LOADER write it: no checks,
    1-based columns turned into NumPy indices by ``squeeze() - 1``, features transposed."""
    matcontent = sio.loadmat(f"{folder}/{embedding}.mat")
    feature = matcontent["features"].T
    label = matcontent["labels"].astype(int).squeeze() - 1
    matcontent = sio.loadmat(f"{folder}/{class_embedding}_splits.mat")
    trainval_loc = matcontent["trainval_loc"].squeeze() - 1
    train_loc = matcontent["train_loc"].squeeze() - 1
    val_unseen_loc = matcontent["val_loc"].squeeze() - 1
    test_seen_loc = matcontent["test_seen_loc"].squeeze() - 1
    test_unseen_loc = matcontent["test_unseen_loc"].squeeze() - 1
    attribute = torch.from_numpy(matcontent["att"].T).float()
    original_att = matcontent["original_att"].T
    train_feature = torch.from_numpy(feature[trainval_loc]).float()
    train_label = torch.from_numpy(label[trainval_loc]).long()
    return {
        "attribute": attribute, "original_att": original_att,
        "train_feature": train_feature, "train_label": train_label,
        "train_only_feature": torch.from_numpy(feature[train_loc]).float(),
        "val_unseen_label": torch.from_numpy(label[val_unseen_loc]).long(),
        "test_seen_feature": torch.from_numpy(feature[test_seen_loc]).float(),
        "test_seen_label": torch.from_numpy(label[test_seen_loc]).long(),
        "test_unseen_feature": torch.from_numpy(feature[test_unseen_loc]).float(),
        "test_unseen_label": torch.from_numpy(label[test_unseen_loc]).long(),
        "seenclasses": torch.from_numpy(np.unique(train_label.numpy())),
        "unseenclasses": torch.from_numpy(np.unique(label[test_unseen_loc])),
        "image_files": [str(x[0][0]) for x in sio.loadmat(f"{folder}/{embedding}.mat").get("image_files", [])],
        "names": [str(x[0][0]) for x in matcontent["allclasses_names"]],
    }


@pytest.fixture
def extracted() -> FeatureSet:
    """A FeatureSet as our extraction writes it: float16 features, no train_loc/val_loc, validation
    classes, class names, image files and the backbone's provenance."""
    fs = planted_featureset(n_classes=12, n_unseen=3, n_val=2, n_per_class=6, feature_dim=8, seed=1)
    fs.features = fs.features.to(torch.float16)
    fs.image_files = [f"CUB_200_2011/images/{i:04d}.jpg" for i in range(fs.features.shape[0])]
    fs.meta = {"dataset": "cub", "backbone": "vit_base_patch16_224.augreg_in1k", "pretrained": "pretrained",
               "weights": "weights/vit_base_patch16_224.augreg_in1k.safetensors sha256:abc", "code_version": "0.1"}
    fs.validate()
    return fs


def test_field_loader_reads_the_export(extracted, tmp_path):
    to_xlsa17(extracted, tmp_path)
    raw = sio.loadmat(tmp_path / "att_splits.mat")
    for key in LOC_KEYS:  # every key, integer typed: a float column cannot index an array
        assert raw[key].dtype.kind in "iu" and raw[key].shape[1] == 1 and raw[key].min() >= 1, key
    assert sio.loadmat(tmp_path / "res101.mat")["labels"].min() == 1  # labels 1-based
    d = peer_loader(tmp_path)
    fs = extracted
    assert torch.equal(d["train_feature"], fs.features[fs.trainval_loc].float())
    assert torch.equal(d["train_label"], fs.labels[fs.trainval_loc])
    assert torch.equal(d["test_unseen_label"], fs.labels[fs.test_unseen_loc])
    assert torch.equal(d["test_seen_feature"], fs.features[fs.test_seen_loc].float())
    assert torch.equal(d["attribute"], fs.attributes.float())
    assert np.array_equal(d["original_att"], fs.attributes.numpy())   # no original_att: att stands in
    assert torch.equal(d["seenclasses"], fs.seen_classes)
    assert torch.equal(d["unseenclasses"], fs.unseen_classes)
    # val_loc: the trainval images of the validation classes; train_loc: the rest of trainval.
    assert set(d["val_unseen_label"].tolist()) == set(fs.val_classes.tolist())
    assert len(d["train_only_feature"]) + len(d["val_unseen_label"]) == len(fs.trainval_loc)
    assert d["image_files"] == fs.image_files and d["names"] == fs.class_names


def test_round_trip_keeps_validation_classes_and_provenance(extracted, tmp_path):
    to_xlsa17(extracted, tmp_path)
    back = load_mat(tmp_path / "res101.mat")
    assert torch.equal(back.val_classes, extracted.val_classes)
    assert back.meta["backbone"] == "vit_base_patch16_224.augreg_in1k"   # not 'resnet101'
    assert back.meta["weights"] == extracted.meta["weights"] and back.meta["dataset"] == "cub"
    assert back.features.dtype == torch.float32  # float16 is written as float32 (MATLAB has no half)
    assert torch.equal(back.features, extracted.features.float())
    for k in ("labels", "attributes", "trainval_loc", "test_seen_loc", "test_unseen_loc"):
        assert torch.equal(getattr(back, k), getattr(extracted, k).to(getattr(back, k).dtype)), k
    assert back.class_names == extracted.class_names and back.image_files == extracted.image_files
    # Exported again, the files are identical (what the round trip adds stays put).
    again = tmp_path / "again"
    to_xlsa17(back, again)
    for name in ("res101.mat", "att_splits.mat"):
        a, b = sio.loadmat(tmp_path / name), sio.loadmat(again / name)
        for key in (k for k in a if not k.startswith("__")):
            if key == "zsgm_provenance":
                pa, pb = json.loads(str(a[key][0])), json.loads(str(b[key][0]))
                assert pa["backbone"] == pb["backbone"] and pa["weights"] == pb["weights"]
            elif a[key].dtype == object:
                assert [str(v.ravel()[0]) for v in a[key].ravel()] == [str(v.ravel()[0]) for v in b[key].ravel()]
            else:
                assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), (name, key)


def test_without_validation_classes_val_loc_is_empty_and_train_loc_is_trainval(tmp_path):
    fs = planted_featureset(n_classes=8, n_unseen=2, n_val=0, n_per_class=5, feature_dim=4, seed=0)
    fs.image_files = [f"{i}.jpg" for i in range(fs.features.shape[0])]
    to_xlsa17(fs, tmp_path)
    d = peer_loader(tmp_path)
    assert len(d["val_unseen_label"]) == 0 and len(d["train_only_feature"]) == len(fs.trainval_loc)
    back = load_mat(tmp_path / "res101.mat")
    assert back.val_classes is None and "val_loc" not in back.extra


def test_cli_export_then_gzsl_reads_the_mat(extracted, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    src = extracted.save(tmp_path / "fs.safetensors")
    out = tmp_path / "CUB"
    assert main(["export", "--features", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "res101.mat" in printed and "val_loc" in printed and "2 validation classes" in printed
    assert main(["export", "--features", str(src), "--out", str(out)]) == 2   # no silent overwrite
    assert "--force" in capsys.readouterr().err
    # --features accepts the res101.mat (att_splits.mat beside it) like any FeatureSet.
    fs = FeatureSet.load(out / "res101.mat")
    assert fs.meta["backbone"] == extracted.meta["backbone"]
    rc = main(["gzsl", "--features", str(out / "res101.mat"), "--model", "ridge", "--classifier", "knn",
               "--no-progress", "--json"])
    # the tiny extraction's features may well give a degenerate result (exit 3, recorded as collapsed):
    # what this checks is that the .mat was read and run, not its accuracy
    assert rc in (0, 3), capsys.readouterr().err
    record = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert record["dataset"] == "cub" and record["backbone"] == "vit_base_patch16_224.augreg_in1k"


def test_mat_without_a_split_file_beside_it(extracted, tmp_path):
    to_xlsa17(extracted, tmp_path)
    (tmp_path / "att_splits.mat").unlink()
    with pytest.raises(ZsgmError, match="att_splits.mat nor sent_splits.mat"):
        FeatureSet.load(tmp_path / "res101.mat")


def test_release_files_keep_their_dtypes_and_gain_train_val_locs(tmp_path):
    """A release-style CUB (no train_loc/val_loc; validation classes from the class lists)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1, 7), 4)
    idx = np.arange(1, 25)
    seen = labels <= 4
    test_seen, trainval = idx[seen][::4], np.setdiff1d(idx[seen], idx[seen][::4])
    col = lambda a: a.reshape(-1, 1).astype(np.uint16)  # noqa: E731
    names = np.empty((6, 1), dtype=object)
    for i in range(6):
        names[i, 0] = np.array([f"{i + 1:03d}.bird"])
    src = tmp_path / "CUB"
    src.mkdir()
    sio.savemat(src / "res101.mat", {"features": rng.random((5, 24)), "labels": labels.reshape(-1, 1).astype(float)})
    sio.savemat(src / "att_splits.mat", {"att": rng.random((3, 6)), "original_att": rng.random((3, 6)),
                                         "allclasses_names": names, "trainval_loc": col(trainval),
                                         "test_seen_loc": col(test_seen), "test_unseen_loc": col(idx[~seen])})
    (src / "valclasses1.txt").write_text("003.bird\n")
    fs = from_xlsa17(src / "res101.mat", src / "att_splits.mat")
    assert fs.meta["backbone"] == "resnet101" and fs.dataset == "cub" and fs.val_classes.tolist() == [2]
    to_xlsa17(fs, tmp_path / "out")
    raw = sio.loadmat(tmp_path / "out" / "att_splits.mat")
    assert all(raw[k].dtype == np.uint16 for k in LOC_KEYS)
    d = peer_loader(tmp_path / "out")
    assert set(d["val_unseen_label"].tolist()) == {2}
    back = load_mat(tmp_path / "out" / "res101.mat")
    assert back.val_classes.tolist() == [2] and back.meta["backbone"] == "resnet101"
    assert torch.equal(back.features, fs.features) and back.features.dtype == torch.float64
