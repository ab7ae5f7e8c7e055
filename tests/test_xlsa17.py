"""The xlsa17 reader: real split files, exact round trips, and the intended errors."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
import torch

from zsgm.core.errors import ZsgmError
from zsgm.extract.featureset import FeatureSet, fit_normaliser
from zsgm.extract.specs import DATASETS
from zsgm.extract.xlsa17 import from_xlsa17, read_split_file, to_xlsa17


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_real_split_files_have_exact_counts(shared_root, name):
    spec = DATASETS[name]
    split = read_split_file(spec.split_path(shared_root), spec)  # checks counts, disjointness, cover
    assert split.att.shape == (spec.att_dim, spec.n_classes)
    assert len(split.locs["trainval_loc"]) == spec.n_trainval
    assert len(split.locs["test_seen_loc"]) == spec.n_test_seen
    assert len(split.locs["test_unseen_loc"]) == spec.n_test_unseen
    everything = np.concatenate([split.locs[k] for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc")])
    assert np.array_equal(np.sort(everything), np.arange(spec.n_images))  # 0-based, covering, disjoint
    if name != "flo":
        assert len(split.class_names) == spec.n_classes


def test_cub_class_order_is_xlsa17_order(shared_root):
    split = read_split_file(DATASETS["cub"].split_path(shared_root), DATASETS["cub"])
    assert split.class_names[0] == "002.Laysan_Albatross"


# ---------------------------------------------------------------- a fabricated release
def cells(strings):
    """A MATLAB cell column of strings, as the release stores names: object array [n, 1]."""
    out = np.empty((len(strings), 1), dtype=object)
    for i, text in enumerate(strings):
        out[i, 0] = np.array([text])
    return out


def fabricate(tmp_path, n_per_class=6, n_classes=10, n_unseen=3, dim=16, att_dim=5, seed=0, **overrides):
    """res101.mat + att_splits.mat in the exact xlsa17 layout (1-based, [D x N], cells of names)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(1, n_classes + 1), n_per_class)
    n = len(labels)
    feats = rng.random((dim, n))  # float64, as the release stores it
    seen = labels <= n_classes - n_unseen
    idx = np.arange(1, n + 1)
    test_seen = idx[seen][::3]
    trainval = np.setdiff1d(idx[seen], test_seen)
    test_unseen = idx[~seen]
    names = cells([f"{i:03d}.class" for i in range(1, n_classes + 1)])
    files = cells([f"/images/{i}.jpg" for i in range(n)])
    res = {"features": feats, "labels": labels.reshape(-1, 1).astype(np.float64), "image_files": files}
    att = rng.random((att_dim, n_classes))
    splits = {"att": att, "original_att": att * 100, "allclasses_names": names,
              "trainval_loc": trainval.reshape(-1, 1).astype(np.uint16),
              "test_seen_loc": test_seen.reshape(-1, 1).astype(np.uint16),
              "test_unseen_loc": test_unseen.reshape(-1, 1).astype(np.uint16),
              "train_loc": trainval[: len(trainval) // 2].reshape(-1, 1).astype(np.uint16),
              "val_loc": trainval[len(trainval) // 2:].reshape(-1, 1).astype(np.uint16)}
    for key, value in overrides.items():
        target = res if key in res or key.startswith("res:") else splits
        key = key.removeprefix("res:")
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    sio.savemat(tmp_path / "res101.mat", res)
    sio.savemat(tmp_path / "att_splits.mat", splits)
    return tmp_path / "res101.mat", tmp_path / "att_splits.mat", res, splits


def test_round_trip_is_exact(tmp_path):
    rp, sp, _, _ = fabricate(tmp_path)
    fs = from_xlsa17(rp, sp, dataset="fab")
    assert fs.features.dtype == torch.float64 and fs.features.shape == (60, 16)
    fs.save(tmp_path / "fs.safetensors")
    back = FeatureSet.load(tmp_path / "fs.safetensors")
    out = tmp_path / "out"
    to_xlsa17(back, out)
    for name in ("res101.mat", "att_splits.mat"):
        a, b = sio.loadmat(tmp_path / name), sio.loadmat(out / name)
        # The export adds only its provenance and validation classes (zsgm_*): the release's
        # fields come back bit-exact.
        assert sorted(k for k in a if not k.startswith("__")) == \
            sorted(k for k in b if not k.startswith(("__", "zsgm_")))
        for key in a:
            if key.startswith("__"):
                continue
            x, y = np.asarray(a[key]), np.asarray(b[key])
            assert x.shape == y.shape, key
            if x.dtype == object:
                assert [str(v.ravel()[0]) for v in x.ravel()] == [str(v.ravel()[0]) for v in y.ravel()], key
            else:
                assert x.dtype == y.dtype, key
                assert np.array_equal(x, y), key  # bit-exact, not approximately equal


def test_featureset_is_memory_mapped_and_keeps_metadata(tmp_path):
    rp, sp, _, _ = fabricate(tmp_path)
    fs = from_xlsa17(rp, sp, dataset="fab")
    fs.save(tmp_path / "fs.safetensors")
    back = FeatureSet.load(tmp_path / "fs.safetensors")
    assert back.class_names == fs.class_names and back.image_files[3] == "/images/3.jpg"
    assert back.meta["dataset"] == "fab" and "created" in back.meta
    assert torch.equal(back.val_classes, torch.tensor([3, 4, 5, 6]))  # classes of val_loc ∩ trainval
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temp file


def test_validation_classes_ignore_test_images(tmp_path):
    """val_loc of the public files overlaps test_seen; validation classes come from trainval only."""
    rp, sp, _, splits = fabricate(tmp_path)
    leaky = np.concatenate([splits["val_loc"].ravel(), splits["test_seen_loc"].ravel()[:1]])
    rp, sp, _, _ = fabricate(tmp_path, val_loc=leaky.reshape(-1, 1).astype(np.uint16))
    fs = from_xlsa17(rp, sp)
    assert torch.equal(fs.val_classes, torch.tensor([3, 4, 5, 6]))


@pytest.mark.parametrize("override, words", [
    ({"att": None}, ["att_splits.mat", "'att'", "missing"]),
    ({"trainval_loc": None}, ["'trainval_loc'", "missing"]),
    ({"res:labels": None}, ["res101.mat", "'labels'", "missing"]),
    ({"res:features": "transpose"}, ["res101.mat", "transposed"]),
    ({"test_seen_loc": "zero-based"}, ["'test_seen_loc'", "1-based"]),
    ({"test_seen_loc": "overlap"}, ["overlap", "trainval_loc", "test_seen_loc"]),
    ({"trainval_loc": "out-of-range"}, ["'trainval_loc'", "only 60 images"]),
    ({"res:features": "nan"}, ["res101.mat", "NaN"]),
    ({"att": "nan"}, ["'att'", "NaN"]),
    ({"test_unseen_loc": "seen-class"}, ["test_unseen_loc", "seen classes"]),
])
def test_malformed_files_give_the_intended_error(tmp_path, override, words):
    _, _, res, splits = fabricate(tmp_path)
    (key, how), = override.items()
    bare = key.removeprefix("res:")
    base = res if key.startswith("res:") else splits
    value = None if how is None else np.array(base[bare], copy=True)
    if how == "transpose":
        value = value.T
    elif how == "zero-based":
        value = value.astype(np.int64) - 1
    elif how == "overlap":
        value = np.concatenate([value, splits["trainval_loc"][:2]])
    elif how == "out-of-range":
        value = value.astype(np.int64)
        value[0] = 999
    elif how == "nan":
        value[0, 0] = np.nan
    elif how == "seen-class":
        # swap one unseen image for a trainval (seen) image, keeping the splits disjoint
        value = value.astype(np.int64)
        moved = int(splits["trainval_loc"][0, 0])
        value[0, 0] = moved
        splits_tv = splits["trainval_loc"][1:]
        rp, sp, _, _ = fabricate(tmp_path, trainval_loc=splits_tv, test_unseen_loc=value)
        with pytest.raises(ZsgmError) as err:
            from_xlsa17(rp, sp)
        assert all(w in str(err.value) for w in words), str(err.value)
        return
    rp, sp, _, _ = fabricate(tmp_path, **{key: value})
    with pytest.raises(ZsgmError) as err:
        from_xlsa17(rp, sp)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_counts_are_checked_against_the_spec(tmp_path, shared_root):
    rp, sp, _, _ = fabricate(tmp_path)
    with pytest.raises(ZsgmError, match=r"'att' has shape \(5, 10\), expected \[312 x 200\]"):
        read_split_file(sp, DATASETS["cub"])


def test_minmax_normaliser_is_fitted_on_training_data_only():
    train = torch.tensor([[0.0, 2.0], [1.0, 4.0]])
    test = torch.tensor([[2.0, 0.0]])
    norm = fit_normaliser(train, "minmax")
    assert torch.allclose(norm(train), torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    assert torch.allclose(norm(test), torch.tensor([[2.0, -1.0]]))  # not refitted on test
    assert torch.allclose(fit_normaliser(train, "l2")(test).norm(dim=1), torch.ones(1))
