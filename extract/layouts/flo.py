"""Oxford-102 Flowers (FLO): ``jpg/image_NNNNN.jpg`` + ``imagelabels.mat`` + ``setid.mat``.

The xlsa17 index order is ``trnid ++ valid ++ tstid`` from setid.mat and the class of an
image is its Oxford label 1..102 (the column of ``att``). No file states this order, so it is
checked: every split must be class-clean (see ``base.check_alignment``). The staged layout
``FLO/images/<label, 3 digits>/image_NNNNN.jpg`` + ``FLO/oxford102/*.mat`` works too.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.io as sio

from zsgm.core.errors import ZsgmError
from zsgm.extract.layouts.base import Record, first_existing
from zsgm.extract.specs import DatasetSpec
from zsgm.extract.xlsa17 import SplitFile

HINT = ("FLO needs imagelabels.mat and setid.mat (from the Oxford-102 release) in FLO/ or FLO/oxford102/, "
        "and the images in FLO/jpg/ (or FLO/images/<label>/)")


def _mat(path: Path, key: str) -> np.ndarray:
    try:
        return np.asarray(sio.loadmat(str(path))[key]).ravel().astype(np.int64)
    except KeyError:
        raise ZsgmError(f"{path}: field '{key}' is missing; is this the Oxford-102 file?") from None
    except Exception as exc:
        raise ZsgmError(f"{path}: not a readable MATLAB file ({exc})") from exc


def class_names(folder: Path, n_classes: int) -> list[str]:
    """``001.pink_primrose`` ... from cat_to_name.json when present, else ``001`` ..."""
    for p in (folder / "cat_to_name.json", folder / "oxford102" / "cat_to_name.json"):
        if p.is_file():
            names = json.loads(p.read_text())
            return [f"{k:03d}." + names.get(str(k), "").replace(" ", "_") for k in range(1, n_classes + 1)]
    return [f"{k:03d}" for k in range(1, n_classes + 1)]


def scan(spec: DatasetSpec, folder: Path, split: SplitFile) -> tuple[list[Record], set[int], list[str]]:
    mat_dirs = [folder, folder / "oxford102"]
    labels = _mat(first_existing([d / "imagelabels.mat" for d in mat_dirs], "imagelabels.mat", HINT), "labels")
    setid = first_existing([d / "setid.mat" for d in mat_dirs], "setid.mat", HINT)
    order = np.concatenate([_mat(setid, k) for k in ("trnid", "valid", "tstid")])
    if len(order) != spec.n_images or len(labels) != spec.n_images:
        raise ZsgmError(f"{setid}: trnid+valid+tstid list {len(order)} images and imagelabels.mat "
                        f"{len(labels)}, expected {spec.n_images} for FLO")
    if labels.min() < 1 or labels.max() > split.n_classes:
        raise ZsgmError(f"imagelabels.mat: labels {labels.min()}..{labels.max()}, expected 1..{split.n_classes}")
    flat = folder / "jpg"
    by_label = first_existing([flat, folder / "images"], "FLO image folder", HINT)
    records = []
    for index, number in enumerate(order):
        label = int(labels[number - 1])
        name = f"image_{number:05d}.jpg"
        path = flat / name if by_label == flat else by_label / f"{label:03d}" / name
        records.append(Record(index, path, label - 1))
    seen = {int(labels[order[i] - 1] - 1) for i in split.locs["trainval_loc"]}
    return records, seen, ["index order trnid++valid++tstid (setid.mat)", "class = Oxford label"]
