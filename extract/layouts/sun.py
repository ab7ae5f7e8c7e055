"""SUN attributes: ``images/<first letter>/<class path>/<file>.jpg``; a class name is its path
below the letter folder with ``/`` as ``_`` (``images/a/airport/airport`` → ``airport_airport``).
See ``folders`` for the index order."""
from __future__ import annotations

from pathlib import Path

from zsgm.core.errors import ZsgmError
from zsgm.extract.layouts.base import Record, first_existing
from zsgm.extract.layouts.folders import images_in, scan_class_folders
from zsgm.extract.specs import DatasetSpec
from zsgm.extract.xlsa17 import SplitFile


def _class_dirs(image_dir: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for letter in sorted(d for d in image_dir.iterdir() if d.is_dir()):
        for d in sorted(p for p in letter.rglob("*") if p.is_dir()):
            if not images_in(d):
                continue
            name = "_".join(d.relative_to(letter).parts)
            if name in out:
                raise ZsgmError(f"{image_dir}: folders {out[name]} and {d} both map to class '{name}'")
            out[name] = d
    return out


def scan(spec: DatasetSpec, folder: Path, split: SplitFile) -> tuple[list[Record], set[int] | None, list[str]]:
    image_dir = first_existing([folder / "images", folder / "SUNAttributeDB_Images" / "images"],
                               "SUN image folder", "SUN needs images/<letter>/<class>/ from SUNAttributeDB_Images")
    return scan_class_folders(spec, split, image_dir, _class_dirs(image_dir), "images")
