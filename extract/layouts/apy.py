"""aPascal + aYahoo (APY): objects, not images. Each line of ``apascal_train.txt``,
``apascal_test.txt`` and ``ayahoo_test.txt`` (``attribute_data/``) is one object
``<image> <class> x1 y1 x2 y2 <64 attributes>``; its feature is taken from the crop.
The xlsa17 index order is those three files' lines in that order (15339 objects, as the
split file has), checked by split cleanliness."""
from __future__ import annotations

from pathlib import Path

from zsgm.core.errors import ZsgmError
from zsgm.extract.layouts.base import Record, first_existing, read_lines
from zsgm.extract.specs import DatasetSpec
from zsgm.extract.xlsa17 import SplitFile

HINT = "APY needs attribute_data/{apascal_train,apascal_test,ayahoo_test}.txt from the aPascal/aYahoo release"
FILES = ("apascal_train.txt", "apascal_test.txt", "ayahoo_test.txt")


def scan(spec: DatasetSpec, folder: Path, split: SplitFile) -> tuple[list[Record], set[int] | None, list[str]]:
    ann_dir = first_existing([folder / "attribute_data", folder], "APY annotation folder", HINT).resolve()
    pascal = first_existing([folder / "VOCdevkit" / "VOC2008" / "JPEGImages", folder / "JPEGImages"],
                            "aPascal image folder (VOCdevkit/VOC2008/JPEGImages)", HINT)
    yahoo = first_existing([folder / "ayahoo_test_images"], "aYahoo image folder (ayahoo_test_images)", HINT)
    col = {n: i for i, n in enumerate(split.class_names)}
    records = []
    for fname in FILES:
        path = first_existing([ann_dir / fname], fname, HINT)
        for lineno, row in enumerate(read_lines(path), 1):
            if len(row) < 6:
                raise ZsgmError(f"{path}:{lineno}: expected '<image> <class> x1 y1 x2 y2 ...'")
            if row[1] not in col:
                raise ZsgmError(f"{path}:{lineno}: class '{row[1]}' is not in allclasses_names of {split.path}")
            x1, y1, x2, y2 = (int(float(v)) for v in row[2:6])
            if x2 <= x1 or y2 <= y1:
                raise ZsgmError(f"{path}:{lineno}: empty box {x1} {y1} {x2} {y2}")
            base = yahoo if fname.startswith("ayahoo") else pascal
            records.append(Record(len(records), base / row[0], col[row[1]], (x1, y1, x2, y2)))
    if len(records) != spec.n_images:
        raise ZsgmError(f"{ann_dir}: {len(records)} objects in {', '.join(FILES)}, expected {spec.n_images}")
    return records, None, ["index order apascal_train ++ apascal_test ++ ayahoo_test lines", "object crops"]
