"""What a benchmark root holds, per dataset, read from the files alone (nothing is trained or decoded).

``check("cub", root)`` reports the split file (readable, counts), ``res101.mat``, the xlsa17
class lists, the raw images present per split and per class (the layout's own scan, which
also checks that the image order is aligned with the split file, i.e. every split is
class-clean), the validation classes, and the feature caches already extracted.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from zsgm.core.errors import ZsgmError
from zsgm.core.logs import log
from zsgm.core.project import PROJECT_ROOT
from zsgm.extract.specs import DATASETS, get_spec

SPLITS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")


@dataclass
class DatasetCheck:
    dataset: str
    folder: str
    status: str = "absent"            # absent | no splits | splits only | partial | complete | broken
    files: dict[str, str] = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    order: str = ""
    features: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Usable: features can be read (res101.mat) or extracted (images)."""
        return self.status in ("partial", "complete") or (
            self.status == "splits only" and self.files.get("res101.mat", "").startswith("ok"))

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: what `zsgm datasets` shows."""
        if self.status == "absent":
            return f"absent ({self.folder} not found)"
        if self.status == "no splits":
            return f"no splits ({self.files.get(get_spec(self.dataset).split_file, '')})"
        if self.status == "broken":
            return f"broken: {self.problems[0]}"
        bits = [k for k, v in self.files.items() if v.startswith("ok")]
        img = self.images
        if img.get("present"):
            bits.append(f"{img['present']}/{img['expected']} images ({img['classes_present']}/{img['classes']} classes)")
        else:
            bits.append("no images")
        return f"{self.status}: " + ", ".join(bits)

    def lines(self) -> list[str]:
        out = [f"{self.dataset}: {self.status}  ({self.folder})"]
        for k, v in self.files.items():
            out.append(f"  {k:<16} {v}")
        img = self.images
        if img.get("present"):
            per = ", ".join(f"{k.replace('_loc', '')} {img[k]['present']}/{img[k]['expected']}" for k in SPLITS)
            out.append(f"  {'images':<16} {img['present']}/{img['expected']} ({img['classes_present']}/"
                       f"{img['classes']} classes: {img['seen_present']} seen, {img['unseen_present']} unseen; "
                       f"{per})")
            out.append(f"  {'class order':<16} {self.order}")
            if "val_classes" in img:
                out.append(f"  {'validation':<16} {img['val_classes']} validation classes among those present")
        elif img.get("note"):
            out.append(f"  {'images':<16} {img['note']}")
        out.append(f"  {'features':<16} " + (", ".join(self.features) if self.features else "none extracted"))
        out.extend(f"  problem: {p}" for p in self.problems)
        return out


def _features(name: str) -> list[str]:
    d = PROJECT_ROOT / "data" / "features" / name
    return sorted(str(p.relative_to(PROJECT_ROOT)) for p in d.glob("*.safetensors")) if d.is_dir() else []


def check(name: str, root: str | Path | None = None) -> DatasetCheck:
    from zsgm.extract.layouts import open_root
    from zsgm.extract.xlsa17 import class_list_dir, read_split_file

    spec = get_spec(name)
    folder = spec.folder_path(root)
    rep = DatasetCheck(spec.name, str(folder), features=_features(spec.name))
    if not folder.is_dir():
        return rep
    split = None
    try:
        split = read_split_file(spec.split_path(root), spec) if spec.split_path(root).is_file() else None
    except ZsgmError as exc:
        rep.problems.append(str(exc))
    if split is not None:
        n = {k: len(split.locs[k]) for k in SPLITS}
        rep.files[spec.split_file] = (f"ok ({split.n_classes} classes, {split.att.shape[0]}-d; trainval "
                                      f"{n['trainval_loc']}, test_seen {n['test_seen_loc']}, test_unseen "
                                      f"{n['test_unseen_loc']}" + ("; train_loc/val_loc" if "val_loc" in split.locs
                                                                   else "") + ")")
    elif not rep.problems:
        rep.files[spec.split_file] = "absent (`zsgm data fetch " + spec.name + "` gets it)"
    res = spec.features_path(root)
    rep.files["res101.mat"] = (f"ok ({res.stat().st_size / 2 ** 20:.0f} MiB, xlsa17 ResNet-101 features)"
                               if res.is_file() else "absent (optional: xlsa17 ResNet-101 features)")
    lists = class_list_dir(folder)
    rep.files["class lists"] = (f"ok ({lists.relative_to(folder) if lists != folder else '.'}/valclasses1.txt)"
                                if lists else "absent (validation classes then come from val_loc where present)")
    if split is None:
        rep.status = "broken" if rep.problems else "no splits"
        return rep
    quiet = log.level
    log.setLevel(max(quiet, logging.WARNING))  # the layout's own summary line: this report says more
    try:
        raw = open_root(spec.name, root)
    except ZsgmError as exc:
        text = str(exc)
        if "not found" in text:  # no image folder or metadata: a splits-only root (res101.mat features)
            rep.images = {"note": "none (" + text.split(";")[0] + ")"}
            rep.status = "splits only"
        else:
            rep.problems.append(text)
            rep.status = "broken"
        return rep
    finally:
        log.setLevel(quiet)
    member = raw._membership()
    counts = {k: {"present": 0, "expected": len(split.locs[k])} for k in SPLITS}
    for r in raw.records:
        if r.index in member:
            counts[member[r.index]]["present"] += 1
    unseen = {r.cls for r in raw.records if member.get(r.index) == "test_unseen_loc"}
    classes = raw.classes
    rep.images = {"present": len(raw.records), "expected": spec.n_images, "classes_present": len(classes),
                  "classes": split.n_classes, "seen_present": len(set(classes) - unseen),
                  "unseen_present": len(unseen), **counts}
    if raw.val_classes is not None:
        rep.images["val_classes"] = len(set(int(c) for c in raw.val_classes) & set(classes))
    rep.order = "aligned with " + spec.split_file + " (every split class-clean)" + (
        "; " + "; ".join(raw.notes) if raw.notes else "")
    rep.status = "complete" if len(raw.records) == spec.n_images else "partial"
    return rep


def check_all(names: list[str] | None, root: str | Path | None = None) -> list[DatasetCheck]:
    return [check(n, root) for n in (names or list(DATASETS))]
