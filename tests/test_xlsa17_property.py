"""Property-based: the xlsa17 reader and the split checks on random malformed inputs.

Random shapes, dtypes, index ranges, overlaps and missing fields are written with
scipy.io.savemat and read back (with and without a dataset spec); whatever the input, the
reader either returns a FeatureSet that passes ``validate`` or raises ZsgmError — never any
other exception.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zsgm.core.errors import ZsgmError
from zsgm.extract.featureset import check_splits
from zsgm.extract.specs import DatasetSpec
from zsgm.extract.xlsa17 import from_xlsa17, read_features_file, read_split_file

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)
DTYPES = [np.float64, np.float32, np.int64, np.int32, np.uint8, np.int16, np.bool_, np.complex64]
LOC_KEYS = ("trainval_loc", "test_seen_loc", "test_unseen_loc", "train_loc", "val_loc")


def _array(draw, shape, lo, hi, dtype):
    """A random array of ``shape`` with values in [lo, hi], sometimes NaN/inf, cast to ``dtype``."""
    n = int(np.prod(shape)) if shape else 1
    vals = np.asarray(draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), dtype=np.float64)
    if draw(st.booleans()) and n:
        vals[draw(st.integers(0, n - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.5, -1.0]))
    arr = vals.reshape(shape)
    with np.errstate(invalid="ignore", over="ignore"):
        return arr.astype(dtype) if dtype is not np.bool_ else arr > 0


@st.composite
def benchmark_files(draw):
    """(res101 dict, att_splits dict, spec or None): a valid benchmark, then random damage."""
    n_cls = draw(st.integers(2, 6))
    per = draw(st.integers(1, 4))
    n = n_cls * per
    d = draw(st.integers(1, 5))
    a = draw(st.integers(1, 5))
    labels = np.repeat(np.arange(n_cls), per)
    n_seen = draw(st.integers(1, n_cls - 1))
    perm = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(n)
    seen_idx = [i for i in perm if labels[i] < n_seen]
    k = draw(st.integers(1, max(1, len(seen_idx) - 1)))  # at least one image in each seen split when possible
    locs = {"trainval_loc": seen_idx[k:] or seen_idx[:1], "test_seen_loc": seen_idx[:k] if seen_idx[k:] else [],
            "test_unseen_loc": [i for i in perm if labels[i] >= n_seen]}
    res = {"features": np.random.default_rng(0).random((d, n)), "labels": (labels + 1.0).reshape(-1, 1)}
    splits = {"att": np.random.default_rng(1).random((a, n_cls))}
    splits.update({key: (np.asarray(v, dtype=np.float64) + 1).reshape(-1, 1) for key, v in locs.items()})
    if draw(st.booleans()):
        res["image_files"] = np.array([[np.array([f"im{i}.jpg"])] for i in range(n)], dtype=object)
    if draw(st.booleans()):
        splits["original_att"] = splits["att"] * 100
        splits["val_loc"] = (np.asarray(locs["trainval_loc"][:1], dtype=np.float64) + 1).reshape(-1, 1)
    if draw(st.booleans()):
        splits["allclasses_names"] = np.array([[np.array([f"c{i}"])] for i in range(n_cls)], dtype=object)
    spec = None
    if draw(st.booleans()):
        spec = DatasetSpec("prop", "PROP", "att_splits.mat", n, len(locs["trainval_loc"]),
                           len(locs["test_seen_loc"]), len(locs["test_unseen_loc"]), n_seen, n_cls - n_seen, a, "")

    # ---- damage: a few random edits
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(["res", "splits"]))
        m = res if target == "res" else splits
        keys = sorted(set(m) | (set(LOC_KEYS) if target == "splits" else {"features", "labels"}))
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["drop", "reshape", "transpose", "values", "dtype", "shift", "overlap",
                                       "empty", "scalar", "string"]))
        cur = m.get(key)
        if action == "drop":
            m.pop(key, None)
        elif action == "reshape":
            shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
            m[key] = _array(draw, shape, -3, n + 3, draw(st.sampled_from(DTYPES)))
        elif action == "transpose" and isinstance(cur, np.ndarray) and cur.dtype != object:
            m[key] = cur.T
        elif action == "values" and isinstance(cur, np.ndarray) and cur.dtype != object and cur.size:
            m[key] = _array(draw, cur.shape, -2, n + 2, np.float64)
        elif action == "dtype" and isinstance(cur, np.ndarray) and cur.dtype != object:
            with np.errstate(invalid="ignore", over="ignore"):
                m[key] = cur.astype(draw(st.sampled_from(DTYPES)))
        elif action == "shift" and isinstance(cur, np.ndarray) and cur.dtype != object:
            m[key] = cur + draw(st.sampled_from([-1, 1, n]))
        elif action == "overlap" and target == "splits":
            a_key, b_key = draw(st.sampled_from(LOC_KEYS[:3])), draw(st.sampled_from(LOC_KEYS[:3]))
            if a_key in m and b_key in m and np.asarray(m[a_key]).size:
                m[b_key] = np.vstack([np.asarray(m[b_key]).reshape(-1, 1), np.asarray(m[a_key]).reshape(-1, 1)[:1]])
        elif action == "empty":
            m[key] = np.zeros((0, 1))
        elif action == "scalar":
            m[key] = np.float64(draw(st.integers(-2, n + 2)))
        elif action == "string":
            m[key] = "not numbers"
    return res, splits, spec


def _write(folder: Path, res: dict, splits: dict) -> tuple[Path, Path]:
    rp, sp = folder / "res101.mat", folder / "att_splits.mat"
    sio.savemat(str(rp), res)
    sio.savemat(str(sp), splits)
    return rp, sp


@SETTINGS
@given(benchmark_files())
def test_reader_raises_only_zsgm_errors(case):
    res, splits, spec = case
    with tempfile.TemporaryDirectory() as tmp:
        rp, sp = _write(Path(tmp), res, splits)
        try:
            fs = from_xlsa17(rp, sp, spec)
        except ZsgmError as exc:
            assert str(exc)  # a message, naming something
            assert str(rp) in str(exc) or str(sp) in str(exc), str(exc)
            return
        fs.validate("again")  # what the reader returns is a valid FeatureSet
        assert fs.features.shape[0] == fs.labels.shape[0]


@SETTINGS
@given(benchmark_files())
def test_split_and_features_files_alone(case):
    """Each file read alone (as the layouts and the demo builder do) fails only with ZsgmError."""
    res, splits, spec = case
    with tempfile.TemporaryDirectory() as tmp:
        rp, sp = _write(Path(tmp), res, splits)
        for fn in (lambda: read_split_file(sp, spec), lambda: read_split_file(sp, None, n_images=5),
                   lambda: read_features_file(rp, spec)):
            try:
                fn()
            except ZsgmError:
                pass


@st.composite
def raw_splits(draw):
    n = draw(st.integers(0, 12))
    labels = torch.tensor(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), dtype=torch.long)
    loc = lambda: torch.tensor(draw(st.lists(st.integers(-2, n + 2), max_size=8)), dtype=torch.long)  # noqa: E731
    shape = draw(st.sampled_from([None, (2, -1)]))
    tv = loc()
    if shape and len(tv) % 2 == 0 and len(tv):
        tv = tv.reshape(2, -1)
    return labels, tv, loc(), loc(), n


@settings(max_examples=200, deadline=None)
@given(raw_splits())
def test_check_splits_raises_only_zsgm_errors(case):
    labels, tv, ts, tu, n = case
    try:
        check_splits(labels, tv, ts, tu, n, "prop")
    except ZsgmError:
        return
    # Accepted: then the invariants hold.
    for loc in (tv, ts, tu):
        assert loc.ndim == 1 and (len(loc) == 0 or (0 <= int(loc.min()) and int(loc.max()) < n))
    assert not set(tv.tolist()) & set(ts.tolist()) and not set(tv.tolist()) & set(tu.tolist())
    assert not set(labels[tu].tolist()) & set(labels[tv].tolist())


def test_garbage_bytes_are_a_zsgm_error(tmp_path):
    for content in (b"", b"\x00" * 200, b"MATLAB 5.0 MAT-file" + b"\xff" * 300):
        p = tmp_path / "att_splits.mat"
        p.write_bytes(content)
        with pytest.raises(ZsgmError, match="att_splits.mat"):
            read_split_file(p)
