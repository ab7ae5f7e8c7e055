"""Animals with Attributes (AWA1, AWA2): ``JPEGImages/<class>/<file>.jpg``, class folders named
as in ``allclasses_names`` (``grizzly+bear``). See ``folders`` for the index order."""
from __future__ import annotations

from pathlib import Path

from zsgm.extract.layouts.base import Record, first_existing
from zsgm.extract.layouts.folders import scan_class_folders
from zsgm.extract.specs import DatasetSpec
from zsgm.extract.xlsa17 import SplitFile


def scan(spec: DatasetSpec, folder: Path, split: SplitFile) -> tuple[list[Record], set[int] | None, list[str]]:
    cands = [folder / "JPEGImages"] + [folder / d / "JPEGImages" for d in
                                       ("Animals_with_Attributes2", "Animals_with_Attributes")]
    image_dir = first_existing(cands, f"{spec.name.upper()} image folder",
                               "AwA needs JPEGImages/<class>/ from the official release")
    class_dirs = {d.name: d for d in image_dir.iterdir() if d.is_dir()}
    return scan_class_folders(spec, split, image_dir, class_dirs, "JPEGImages")
