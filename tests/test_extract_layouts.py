"""Raw layouts → records aligned to xlsa17, partial roots, and the errors for bad roots."""
from __future__ import annotations

import numpy as np
import pytest

from zsgm.extract import specs
from zsgm.core.errors import ZsgmError
from zsgm.extract.layouts import open_root
from fixtures_images import AWA_NAMES, make_apy, make_awa2, make_cub, make_flo, make_sun


def _check_records(ds, fx):
    """Records = exactly the images written, in xlsa17 index order, with their xlsa17 class."""
    assert [r.index for r in ds.records] == sorted(fx.paths)
    for r in ds.records:
        assert r.path == fx.paths[r.index]
        assert r.cls == fx.labels[r.index]
    assert ds.classes == fx.present


@pytest.mark.parametrize("shared_layout", [False, True])
def test_cub_partial_root(tmp_path, shared_layout):
    fx = make_cub(tmp_path, shared_layout=shared_layout)
    ds = open_root("cub", tmp_path)
    _check_records(ds, fx)
    assert ds.is_partial and len(ds.classes) == 6
    # xlsa17 order, not CUB id order: id 1 sits at position 1 and id 2 at position 0
    assert ds.class_names[0] == "002.Bird_2" and ds.records[0].cls == 1
    assert set(ds.val_classes.tolist()) == fx.info["val"]


def test_cub_metadata_mismatch_is_refused(tmp_path):
    make_cub(tmp_path)
    lab = tmp_path / "CUB" / "CUB_200_2011" / "image_class_labels.txt"
    lines = lab.read_text().splitlines()
    lines[0] = "1 2"  # image 1 lives in 001.* but the labels now say class 2
    lab.write_text("\n".join(lines) + "\n")
    with pytest.raises(ZsgmError, match="different releases"):
        open_root("cub", tmp_path)


def test_cub_missing_image_of_present_class(tmp_path):
    fx = make_cub(tmp_path)
    victim = fx.paths[2]
    victim.unlink()
    with pytest.raises(ZsgmError, match="missing") as e:
        open_root("cub", tmp_path)
    assert str(victim) in str(e.value)


def test_cub_misaligned_split_is_refused(tmp_path):
    fx = make_cub(tmp_path)
    # a class list that disagrees with the split file's seen classes
    lists = tmp_path / "CUB" / "xlsa17_classes" / "trainvalclasses.txt"
    names = lists.read_text().splitlines()
    unseen = (tmp_path / "CUB" / "xlsa17_classes" / "testclasses.txt").read_text().splitlines()
    lists.write_text("\n".join(names[1:] + unseen[:1]) + "\n")
    with pytest.raises(ZsgmError, match="misaligned"):
        open_root("cub", tmp_path)
    assert fx.present


@pytest.mark.parametrize("flat", [False, True])
def test_flo_partial_root(tmp_path, flat):
    fx = make_flo(tmp_path, flat=flat)
    ds = open_root("flo", tmp_path)
    _check_records(ds, fx)
    assert ds.class_names[0] == "001"  # no cat_to_name.json: label numbers
    # FLO's validation classes come from val_loc (labels 21..40)
    assert ds.val_classes.tolist() == list(range(20, 40))


def test_flo_wrong_index_order_is_refused(tmp_path):
    make_flo(tmp_path, swap_sets=True)  # setid.mat with trnid and tstid exchanged
    with pytest.raises(ZsgmError, match="not aligned"):
        open_root("flo", tmp_path)


def test_awa2_complete_root(tmp_path, monkeypatch):
    fx, spec = make_awa2(tmp_path)
    monkeypatch.setitem(specs.DATASETS, "awa2", spec)
    ds = open_root("awa2", tmp_path)
    _check_records(ds, fx)
    assert not ds.is_partial


def test_awa2_other_class_order_is_refused(tmp_path, monkeypatch):
    order = [AWA_NAMES[i] for i in (1, 0, 2, 3, 4)]  # split made for another order: seen/unseen mix up
    fx, spec = make_awa2(tmp_path, split_order=order)
    monkeypatch.setitem(specs.DATASETS, "awa2", spec)
    with pytest.raises(ZsgmError, match="not aligned|misaligned"):
        open_root("awa2", tmp_path)


def test_awa2_partial_without_res101_needs_it(tmp_path, monkeypatch):
    fx, spec = make_awa2(tmp_path)
    monkeypatch.setitem(specs.DATASETS, "awa2", spec)
    for p in (tmp_path / "AWA2" / "JPEGImages" / "beaver").iterdir():
        p.unlink()
    (tmp_path / "AWA2" / "JPEGImages" / "beaver").rmdir()
    with pytest.raises(ZsgmError, match="res101.mat"):
        open_root("awa2", tmp_path)


def test_awa2_partial_with_res101_order(tmp_path, monkeypatch):
    import scipy.io as sio

    fx, spec = make_awa2(tmp_path)
    monkeypatch.setitem(specs.DATASETS, "awa2", spec)
    files = [f"/BS/xian/Animals_with_Attributes2/JPEGImages/{p.parent.name}/{p.name}" for _, p in
             sorted(fx.paths.items())]
    sio.savemat(str(tmp_path / "AWA2" / "res101.mat"),
                {"image_files": np.array([[np.array([f])] for f in files], dtype=object).reshape(-1, 1),
                 "labels": (fx.labels + 1).reshape(-1, 1).astype(float)})
    drop = tmp_path / "AWA2" / "JPEGImages" / "beaver"
    for p in drop.iterdir():
        p.unlink()
    ds = open_root("awa2", tmp_path)
    assert ds.classes == [0, 1, 2, 4]
    assert [r.path for r in ds.records] == [p for i, p in sorted(fx.paths.items()) if fx.labels[i] != 3]


def test_sun_nested_class_folders(tmp_path, monkeypatch):
    fx, spec = make_sun(tmp_path)
    monkeypatch.setitem(specs.DATASETS, "sun", spec)
    ds = open_root("sun", tmp_path)
    _check_records(ds, fx)
    assert "airport" in str(ds.records[3].path.parent.parent)


def test_apy_objects_with_boxes(tmp_path, monkeypatch):
    fx, spec = make_apy(tmp_path)
    monkeypatch.setitem(specs.DATASETS, "apy", spec)
    ds = open_root("apy", tmp_path)
    _check_records(ds, fx)
    assert [r.box for r in ds.records] == fx.info["boxes"]
    assert ds.records[0].path == ds.records[1].path  # two objects of one photo


def test_missing_folder_and_split_file(tmp_path):
    with pytest.raises(ZsgmError, match="--data-root"):
        open_root("cub", tmp_path)
    (tmp_path / "CUB").mkdir()
    with pytest.raises(ZsgmError, match="att_splits.mat"):
        open_root("cub", tmp_path)


def test_classes_filter(tmp_path):
    make_cub(tmp_path)
    ds = open_root("cub", tmp_path, classes=["001", "002.Bird_2"])
    assert {r.path.parent.name for r in ds.records} == {"001.Bird_1", "002.Bird_2"}
    with pytest.raises(ZsgmError, match="matches no class"):
        open_root("cub", tmp_path, classes=["999"])
