"""Shared logic of the class-folder layouts (AwA, SUN): ``<image dir>/<class folder>/<file>``.

The xlsa17 order is taken from ``res101.mat``'s ``image_files`` when that file sits beside
the split file (exact, and partial roots work). Without it the order is the convention the
xlsa17 files were built in: classes in ``allclasses_names`` order, files sorted by name
within a class; that needs every class folder, and the split check then refuses a root
whose order differs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io as sio

from zsgm.core.errors import ZsgmError
from zsgm.extract.layouts.base import Record
from zsgm.extract.specs import DatasetSpec
from zsgm.extract.xlsa17 import SplitFile

IMAGE_EXT = (".jpg", ".jpeg", ".png")


def res101_order(folder: Path) -> tuple[list[str], np.ndarray] | None:
    """(image_files, 0-based labels) from res101.mat, reading only those two fields."""
    path = folder / "res101.mat"
    if not path.is_file():
        return None
    try:
        m = sio.loadmat(str(path), variable_names=["image_files", "labels"])
    except Exception as exc:
        raise ZsgmError(f"{path}: not a readable MATLAB file ({exc})") from exc
    if "image_files" not in m:
        return None
    files = [str(np.asarray(x).ravel()[0]) for x in np.asarray(m["image_files"]).ravel()]
    return files, np.asarray(m["labels"]).ravel().astype(np.int64) - 1


def images_in(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXT)


def scan_class_folders(spec: DatasetSpec, split: SplitFile, image_dir: Path, class_dirs: dict[str, Path],
                       anchor: str) -> tuple[list[Record], set[int] | None, list[str]]:
    """Records for a root whose class ``name`` lives in ``class_dirs[name]``.

    ``anchor`` is the folder name in res101.mat's image_files after which the relative path starts
    (``JPEGImages`` for AwA, ``images`` for SUN).
    """
    col = {n: i for i, n in enumerate(split.class_names)}
    stray = sorted(set(class_dirs) - set(col))
    if stray:
        raise ZsgmError(f"{image_dir}: folder(s) {stray[:3]} match no class in allclasses_names of {split.path}")
    listed = res101_order(split.path.parent)
    if listed is not None:
        files, labels = listed
        records = []
        for index, (f, lab) in enumerate(zip(files, labels)):
            parts = Path(f.replace("\\", "/")).parts
            if anchor not in parts:
                raise ZsgmError(f"{split.path.parent / 'res101.mat'}: image_files entry {f} has no '{anchor}/' part")
            rel = Path(*parts[len(parts) - parts[::-1].index(anchor):])
            records.append(Record(index, image_dir / rel, int(lab)))
        seen = {int(labels[i]) for i in split.locs["trainval_loc"]}
        return records, seen, ["index order from res101.mat image_files"]
    absent = [n for n in split.class_names if n not in class_dirs]
    if absent:
        raise ZsgmError(f"{image_dir}: {len(absent)} class folder(s) absent (e.g. {absent[0]}); without "
                        f"res101.mat beside {split.path.name} the xlsa17 index of an image is known only from "
                        f"the complete image set: add the missing folders or the xlsa17 res101.mat "
                        f"(its image_files give the order)")
    records, index = [], 0
    for name in split.class_names:
        for p in images_in(class_dirs[name]):
            records.append(Record(index, p, col[name]))
            index += 1
    if index != spec.n_images:
        raise ZsgmError(f"{image_dir}: {index} images, expected {spec.n_images} for {spec.name}; "
                        f"an incomplete or extended copy cannot be aligned to the xlsa17 splits")
    return records, None, ["index order: allclasses_names order, files sorted (checked by split cleanliness)"]
