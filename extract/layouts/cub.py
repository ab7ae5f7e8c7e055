"""CUB-200-2011: ``images.txt`` + ``image_class_labels.txt`` + ``classes.txt``; xlsa17 index i is
CUB image id i. Also the partial layout of ``../shared/data``: images in ``CUB/images/<class>/``
and the partial list ``CUB/CUB_200_2011/images_classes001-050.txt``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from zsgm.core.errors import ZsgmError
from zsgm.extract.layouts.base import Record, first_existing, read_lines
from zsgm.extract.specs import DatasetSpec
from zsgm.extract.xlsa17 import SplitFile

HINT = ("CUB needs CUB_200_2011/{images.txt, image_class_labels.txt, classes.txt} and the images in "
        "CUB_200_2011/images/<class>/ (or CUB/images/<class>/) from the official CUB_200_2011.tgz")


def _image_list(meta_dirs: list[Path]) -> Path:
    cands = [d / "images.txt" for d in meta_dirs]
    cands += [p for d in meta_dirs if d.is_dir() for p in sorted(d.glob("images_classes*.txt"))]
    return first_existing(cands, "CUB image list (images.txt)", HINT)


def scan(spec: DatasetSpec, folder: Path, split: SplitFile) -> tuple[list[Record], set[int], list[str]]:
    meta_dirs = [folder / "CUB_200_2011", folder]
    listing = _image_list(meta_dirs)
    labels_file = first_existing([d / "image_class_labels.txt" for d in meta_dirs], "image_class_labels.txt", HINT)
    classes_file = first_existing([d / "classes.txt" for d in meta_dirs], "classes.txt", HINT)
    image_dir = first_existing([folder / "CUB_200_2011" / "images", folder / "images"], "CUB image folder", HINT)
    names = {int(row[0]): row[1] for row in read_lines(classes_file)}
    labels = {int(row[0]): int(row[1]) for row in read_lines(labels_file)}
    col = {n: i for i, n in enumerate(split.class_names)}
    if not col:
        raise ZsgmError(f"{split.path}: 'allclasses_names' is missing; CUB classes are matched by name")
    unknown = sorted(set(names.values()) - set(col))
    if unknown:
        raise ZsgmError(f"{classes_file}: classes {unknown[:3]} are not in allclasses_names of {split.path}")
    n = spec.n_images
    full = np.full(n, -1, dtype=np.int64)
    for img_id, c in labels.items():
        if not 1 <= img_id <= n:
            raise ZsgmError(f"{labels_file}: image id {img_id} outside 1..{n} (xlsa17 index = CUB image id)")
        full[img_id - 1] = col[names[c]]
    records = []
    for row in read_lines(listing):
        img_id, rel = int(row[0]), row[1]
        if img_id not in labels:
            raise ZsgmError(f"{listing}: image id {img_id} has no row in {labels_file}")
        cls_name = names[labels[img_id]]
        if rel.split("/", 1)[0] != cls_name:  # the two metadata files must agree before we trust either
            raise ZsgmError(f"{listing}: image id {img_id} is {rel} but {labels_file} says class {cls_name}; "
                            f"the metadata files are from different releases")
        records.append(Record(img_id - 1, image_dir / rel, col[cls_name]))
    listed = {names[labels[int(row[0])]] for row in read_lines(listing)}
    stray = sorted(d.name for d in image_dir.iterdir() if d.is_dir() and d.name not in listed)
    if stray:
        raise ZsgmError(f"{image_dir}: class folder(s) {stray[:3]} are not in the image list {listing}; "
                        f"use the full CUB_200_2011/images.txt")
    seen = {int(c) for c in np.unique(full[split.locs["trainval_loc"]]) if c >= 0}
    notes = [f"image list {listing.name}", "xlsa17 index = CUB image id"]
    return records, seen, notes
