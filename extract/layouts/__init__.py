"""Raw benchmark layouts, one module each, all aligned to the xlsa17 split indices.

``open_root("cub", root)`` reads the split file and the dataset's own metadata, keeps the
images present (a partial root holds some classes completely), checks alignment and
returns a ``RawDataset`` in xlsa17 index order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from zsgm.core.errors import ZsgmError
from zsgm.core.logs import log
from zsgm.extract.layouts import apy, awa, cub, flo, sun
from zsgm.extract.layouts.base import RawDataset, Record, check_alignment, keep_present, seen_from_lists, val_classes_for
from zsgm.extract.specs import get_spec
from zsgm.extract.xlsa17 import read_split_file

# folder (as the xlsa17 release names it) → scanner
LAYOUTS: dict[str, Callable] = {"CUB": cub.scan, "FLO": flo.scan, "AWA1": awa.scan, "AWA2": awa.scan,
                                "SUN": sun.scan, "APY": apy.scan}


def select_classes(names: list[str], wanted: list[str], source: str) -> set[int]:
    """xlsa17 class indices for ``wanted``: a full class name, or its number prefix (``004`` of
    ``004.Groove_billed_Ani``)."""
    out = set()
    for w in wanted:
        hits = [i for i, n in enumerate(names) if n == w or n.split(".", 1)[0] == w]
        if not hits:
            raise ZsgmError(f"--classes: '{w}' matches no class of {source} (e.g. {', '.join(names[:3])})")
        out.update(hits)
    return out


def open_root(name: str, root: str | Path | None = None, classes: list[str] | None = None) -> RawDataset:
    spec = get_spec(name)
    folder = spec.folder_path(root)
    if not folder.is_dir():
        raise ZsgmError(f"dataset folder {folder} not found; pass --data-root DIR (the folder holding "
                        f"{spec.folder}/) or set $ZSGM_DATA")
    if spec.folder not in LAYOUTS:
        raise ZsgmError(f"no raw-image layout for {spec.name}; known: {', '.join(LAYOUTS)}")
    split = read_split_file(spec.split_path(root), spec)
    known, seen, notes = LAYOUTS[spec.folder](spec, folder, split)
    listed = seen_from_lists(split)
    if seen is not None and listed is not None and seen != listed:
        raise ZsgmError(f"{folder}: the seen classes of trainval_loc under this root's image order differ from "
                        f"xlsa17_classes/trainvalclasses.txt ({len(seen ^ listed)} classes); the root is misaligned")
    check_alignment(known, split, str(folder), seen if seen is not None else listed)
    records = keep_present(known, str(folder))
    names = split.class_names or flo.class_names(folder, split.n_classes)
    if classes:  # a subset of the classes present, e.g. for a quick check
        keep = select_classes(names, classes, str(folder))
        records = [r for r in records if r.cls in keep]
        if not records:
            raise ZsgmError(f"--classes {','.join(classes)}: none of these classes has images under {folder}")
    ds = RawDataset(spec, folder, spec.folder.lower(), split, records, names,
                    val_classes_for(split, known), notes)
    log.info("%s", ds.describe())
    return ds


__all__ = ["open_root", "RawDataset", "Record", "LAYOUTS"]
