"""What every raw layout produces: image records aligned to the xlsa17 split indices.

A layout reads the dataset's own metadata and returns one ``Record`` per image it knows
of (the xlsa17 index, the file, the xlsa17 class, an optional crop box). The shared code
here then keeps the images present on disk, checks that the root is complete per class
and aligned with the split file, and gives the subset that extraction works on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zsgm.core.errors import ZsgmError
from zsgm.core.files import stable_hash
from zsgm.extract.specs import DatasetSpec
from zsgm.extract.xlsa17 import SplitFile, class_list_dir, validation_classes

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Record:
    index: int            # 0-based xlsa17 index (row of res101.mat, 1-based in the *_loc fields)
    path: Path
    cls: int              # 0-based xlsa17 class (column of att)
    box: Box | None = None  # crop (x1, y1, x2, y2) in pixels, for object datasets (APY)


@dataclass
class RawDataset:
    """The images of one benchmark root that are present, in xlsa17 index order."""
    spec: DatasetSpec
    folder: Path
    layout: str
    split: SplitFile
    records: list[Record]                 # present images only, sorted by index
    class_names: list[str]                # all C classes, xlsa17 order
    val_classes: np.ndarray | None = None  # xlsa17 class indices (of all classes)
    notes: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[int]:
        """The xlsa17 classes present, in xlsa17 order."""
        return sorted({r.cls for r in self.records})

    @property
    def is_partial(self) -> bool:
        return len(self.classes) < self.split.n_classes

    def split_of(self, index: int) -> str:
        return self._membership().get(index, "none")

    def _membership(self) -> dict[int, str]:
        if not hasattr(self, "_member"):
            self._member = {int(i): k for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc")
                            for i in self.split.locs[k]}
        return self._member

    def image_list_hash(self) -> str:
        root = self.folder
        return stable_hash([(r.index, _rel(r.path, root), r.cls, r.box) for r in self.records], 16)

    def image_files(self) -> list[str]:
        return [_rel(r.path, self.folder) for r in self.records]

    def describe(self) -> str:
        n_seen = len({r.cls for r in self.records if self.split_of(r.index) != "test_unseen_loc"})
        return (f"{self.spec.name} ({self.layout} layout, {self.folder}): {len(self.records)} images of "
                f"{len(self.classes)}/{self.split.n_classes} classes ({n_seen} seen)")


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- finding files
def first_existing(candidates: list[Path], what: str, hint: str) -> Path:
    for c in candidates:
        if c.exists():
            return c
    raise ZsgmError(f"{what} not found; looked for {', '.join(str(c) for c in candidates)}. {hint}")


def read_lines(path: Path) -> list[list[str]]:
    return [ln.split() for ln in path.read_text().splitlines() if ln.strip()]


# ---------------------------------------------------------------- the shared checks
def keep_present(known: list[Record], source: str) -> list[Record]:
    """Records whose file exists; a class is either fully present or absent (a partial root)."""
    exists = {r.index: r.path.is_file() for r in known}
    present_classes = {r.cls for r in known if exists[r.index]}
    missing = [r for r in known if r.cls in present_classes and not exists[r.index]]
    if missing:
        by_class = sorted({r.cls for r in missing})
        raise ZsgmError(f"{source}: {len(missing)} image(s) of class(es) present are missing, e.g. "
                        f"{missing[0].path}; a root holds each class complete or not at all "
                        f"(classes affected: {by_class[:5]}); restore the files or remove those class folders")
    out = sorted((r for r in known if exists[r.index]), key=lambda r: r.index)
    if not out:
        raise ZsgmError(f"{source}: no images found; check the layout (see data/README.md)")
    return out


def check_alignment(records: list[Record], split: SplitFile, source: str,
                    seen_classes: set[int] | None = None) -> None:
    """Every trainval/test_seen image of a seen class, every test_unseen image of an unseen one.

    ``seen_classes`` (from the xlsa17 class lists or a full label list) makes the check exact;
    without it the seen classes are those of the trainval images known here.
    """
    member = {int(i): k for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc") for i in split.locs[k]}
    n = sum(len(split.locs[k]) for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc"))
    seen = set(seen_classes) if seen_classes is not None else {r.cls for r in records
                                                                if member.get(r.index) == "trainval_loc"}
    bad = []
    for r in records:
        where = member.get(r.index)
        if where is None:
            raise ZsgmError(f"{source}: image {r.path} has xlsa17 index {r.index + 1} but {split.path} "
                            f"covers 1..{n}; is this root from the same dataset version?")
        if (where == "test_unseen_loc") == (r.cls in seen):
            bad.append((r, where))
    if bad:
        r, where = bad[0]
        raise ZsgmError(f"{source} is not aligned with {split.path}: {len(bad)} image(s) sit in a split of the "
                        f"wrong kind, e.g. {r.path} (class {r.cls + 1}, xlsa17 index {r.index + 1}) is in {where}. "
                        f"The image order or class mapping of this root differs from the one the split file "
                        f"was made for; use the dataset's official release (or put its res101.mat beside "
                        f"{split.path.name} so that its image_files fix the order)")


def seen_from_lists(split: SplitFile) -> set[int] | None:
    """Seen classes from xlsa17's trainvalclasses.txt where the class names allow matching."""
    lists = class_list_dir(split.path.parent)
    if lists is None or not split.class_names or not (lists / "trainvalclasses.txt").is_file():
        return None
    index = {n: i for i, n in enumerate(split.class_names)}
    names = [ln.strip() for ln in (lists / "trainvalclasses.txt").read_text().splitlines() if ln.strip()]
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ZsgmError(f"{lists / 'trainvalclasses.txt'}: classes {unknown[:3]} are not in allclasses_names "
                        f"of {split.path}")
    return {index[n] for n in names}


def full_labels(known: list[Record], n: int) -> np.ndarray:
    """A label per xlsa17 index (-1 where this root's metadata does not say)."""
    labels = np.full(n, -1, dtype=np.int64)
    for r in known:
        labels[r.index] = r.cls
    return labels


def val_classes_for(split: SplitFile, known: list[Record]) -> np.ndarray | None:
    n = sum(len(split.locs[k]) for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc"))
    val = validation_classes(split, full_labels(known, n))
    return None if val is None else val[val >= 0]
