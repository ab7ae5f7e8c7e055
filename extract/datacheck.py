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

# sha256 of the known copies of the xlsa17 release's files (folder/file), computed from the copies staged in
# ../shared/data (byte copies of public re-hosts, see its PROVENANCE.md). CUB's and APY's att_splits.mat
# there are re-saves without train_loc/val_loc: a copy straight from xlsa17.zip can differ in bytes; its
# shapes and counts are checked all the same. Files not listed here (res101.mat) are checked by shapes
# and counts only.
KNOWN_SHA256: dict[str, str] = {
    "APY/att_splits.mat": "1fb6c3c031342e1a2bd964e1633ba01b546bac9bc027d7a69d1d01562de27611",
    "AWA1/att_splits.mat": "752e0fad7b01b0ad966d7f5d5650817e85fb3008848d5c603b437b4d9219d664",
    "AWA2/att_splits.mat": "dfe0e4f26ef5debaa77eff823a9316ac110e9b809b70d19c72dd11404f7be357",
    "CUB/att_splits.mat": "4562b1f6306e21dca05071b9b070ce2b15ec659826c8cb87e5ea796b3770df21",
    "CUB/sent_splits.mat": "53f542c27e45f3ace55f4465ba2743a1c3400a329c61be7aa116e7ccb77c4087",
    "FLO/att_splits.mat": "f7c2841a236b54c7100f378667ff9a5d1ef7c934a0d3720018c6fffd02ef9a49",
    "SUN/att_splits.mat": "90dcb2a60704ce1117ba1897523ba78dc6b625e606008918c4eade9cd8a5bf43",
}
# The class lists (xlsa17_classes/*.txt or beside the split file): the same for AWA1 and AWA2.
_AWA_LISTS = {
    "testclasses.txt": "43b7e83fce80663a12a838ae367b7d12616aa713365dec5d874eb0cb82c5b275",
    "trainclasses1.txt": "3a38ed404fa6e04fbf3a9f959e630303a32584235c112c54eab0e7e9cc39a496",
    "trainclasses2.txt": "b6de5018c8dd19031e0e50b5fdbb18654b14d1367682a4a95719e2a1f6dfadf2",
    "trainclasses3.txt": "fc48f984fb979deead44b23c14277f253bf241451eb4582673e8e8fe9db1468a",
    "trainvalclasses.txt": "ab51d5cec9ae4510999ed99759aaf35e0daeafad46e231156418f144eb1ea73f",
    "valclasses1.txt": "92ef4eaefb8a93ddb6611299c7de37221a0c70ecbd6ddd2190cce68b89b10baf",
    "valclasses2.txt": "09b4df2ae0dff9753536617bf4cf4460b089a93a77b037858f29c02f347b544a",
    "valclasses3.txt": "328573256646446b8ec54fbad75bf124645b92dad1ea31d52d5a31db391fe8bb",
}
KNOWN_LISTS: dict[str, dict[str, str]] = {
    "APY": {
        "testclasses.txt": "6fda670b851b50e0b7e3f5af5aaa87c0468a58be5557de522f8744af330c8b80",
        "trainclasses1.txt": "b3510038337bd399cc454ef8005f9fec18e5c95b612ae34dd2eae72ed95431a2",
        "trainclasses2.txt": "08f33aa54cccca088a007b6c695765d14d7235dc349f61473fafdf9c024961df",
        "trainclasses3.txt": "4287e3dee857231447b887117bba0ac6ec6e2fc43636aecda04a0348d4b9d060",
        "trainvalclasses.txt": "d8f6e29214adbaba48834ad61ac240bff22153ce9e8fc839ce613863e08a3acd",
        "valclasses1.txt": "c204f0ae0f8f7808315017d6ad7c2e54828d07e52ac4a94175d21acd714dfec0",
        "valclasses2.txt": "80dc3c024ec3ca203ed243c4aca9eb6dd7d2f22e81eeaa2b66f0b78894949bc6",
        "valclasses3.txt": "b783b1bbd89ec6d8621ac32a7e11e7c2de456b568c878c227f16616f1d84c310",
    },
    "AWA1": _AWA_LISTS,
    "AWA2": _AWA_LISTS,
    "CUB": {
        "allclasses.txt": "40a395d6a48b458f730fb10658fbf32be8da0fd0f849f159009fd49a6f6c1640",
        "testclasses.txt": "2adcf5ae19ee338ef46ae938c13c4a94d36c30dfc75981edf4fc6dd7f856ef3c",
        "trainclasses1.txt": "96c67047dec6dae6c53aa133208dbdc71878f5c0cc0b8e2d68d62f18da007100",
        "trainclasses2.txt": "b229e843940cc23f1e1aa75a3c4c4753866d5e77f8775e0e45ee30fa67bef193",
        "trainclasses3.txt": "72a2e3214b8989e457a13f477aadf3fd15ffac8e271590a6e950dbc50ba7de07",
        "trainvalclasses.txt": "54fc017c4c0cd2ad40fa13143f70e19b51fa18c61cd64b7783af1b9d1b74baa3",
        "valclasses1.txt": "bdc962ffe489355946602ad8deceb48485c4d25ab3c8f349be64281532b559b9",
        "valclasses2.txt": "55995af119cda67993f3953b0f0b731b7472627ebcba07bcf424bbe4d7540c86",
        "valclasses3.txt": "cb0b3c14fccff17ce521d614d0adaf6207dba7962a68a1adaaf5e8c59cea3c08",
    },
    "SUN": {
        "testclasses.txt": "a55eddcafae80ab8b1e0a5a03d10dd4297fdfb73ea0e848743f60a06782bda35",
        "trainclasses1.txt": "b8582aac72c787ac65243a187651d682a41c0f53c73707af4844e2ada9a015a3",
        "trainclasses2.txt": "9dfacfd07c145c18fe3730960fb5c804c2b631b98dd99607632ced3eb2b77c14",
        "trainclasses3.txt": "f7dec44ad2b003b627cc65e91b7de6b6a5ad9c3730bfbbb101ef269394598e23",
        "trainvalclasses.txt": "d03a50e077cdc83bb2b6f6212fb2a88802aa6cca7be9856f01fc20a05a7497e5",
        "valclasses1.txt": "ede1b7a7460e666d13d0449ce5b8a41e56805d99c7bd10a0372a979fa1639e76",
        "valclasses2.txt": "657dcfee8d1ddeb3a0eca17f84d0c2becfaf4382052568381589d3546437237c",
        "valclasses3.txt": "4953d9e1882697304fa2a9dfa3127b04127b1db64695ef3e404cd249e11fa751",
    },
}
FEATURE_DIM = 2048  # res101.mat: ResNet-101 features [2048 x N]


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
    verified: dict[str, str] = field(default_factory=dict)   # file -> how it was checked (sha256 / shapes)
    changed: list[str] = field(default_factory=list)         # files whose bytes differ from every known copy
    differs: list[str] = field(default_factory=list)         # what is said of each (not a problem by itself)
    missing: dict = field(default_factory=dict)              # classes and images the root lacks

    @property
    def intact(self) -> bool:
        """No file differs from the known release and nothing is broken."""
        return not self.changed and self.status != "broken"

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
        note = f"; {', '.join(self.changed)} differ(s) from the known xlsa17 release (zsgm data check)" \
            if self.changed else ""
        return f"{self.status}: " + ", ".join(bits) + note

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
        miss = self.missing
        if miss.get("classes"):
            names = miss["class_names"]
            out.append(f"  {'missing':<16} {miss['classes']} classes ({miss['images']} images): "
                       f"{', '.join(names[:8])}{' ...' if len(names) > 8 else ''}")
        by_sum = [k for k, v in self.verified.items() if v.startswith("sha256")]
        if by_sum:
            out.append(f"  {'verified':<16} {len(by_sum)} file(s) by sha256: the known xlsa17 copies ("
                       f"{', '.join(Path(k).name for k in by_sum[:3])}{' ...' if len(by_sum) > 3 else ''})")
        for name, how in self.verified.items():
            if name not in by_sum:
                out.append(f"  {'verified':<16} {name} by {how}")
        out.append(f"  {'features':<16} " + (", ".join(self.features) if self.features else "none extracted"))
        out.extend(f"  problem: {p}" for p in self.problems)
        out.extend(f"  differs: {d}" for d in self.differs)
        return out


def _features(name: str, root: str | Path | None = None) -> list[str]:
    """The project's caches (data/features/<name>/) and the FeatureSets of ``<root>/features/`` of this
    dataset (read from their headers)."""
    d = PROJECT_ROOT / "data" / "features" / name
    out = sorted(str(p.relative_to(PROJECT_ROOT)) for p in d.glob("*.safetensors")) if d.is_dir() else []
    for path, dataset in root_featuresets(root).items():
        if dataset == name:
            out.append(path)
    return out


def root_featuresets(root: str | Path | None = None) -> dict[str, str]:
    """``<root>/features/*.safetensors`` (and one level below) -> the dataset each holds (from its header;
    'unreadable' for a file that is not a FeatureSet)."""
    from zsgm.core.project import data_root
    from zsgm.extract.featureset import FeatureSet

    folder = data_root(root) / "features"
    if not folder.is_dir():
        return {}
    out = {}
    for p in sorted([*folder.glob("*.safetensors"), *folder.glob("*/*.safetensors")]):
        try:
            out[str(p)] = FeatureSet.dataset_of(p)
        except ZsgmError:
            out[str(p)] = "unreadable"
    return out


def verify_file(rep: DatasetCheck, path: Path, key: str, known: str | None) -> None:
    """sha256 of ``path`` against the known copy of the release (``known``); a mismatch is listed in
    ``rep.changed`` and said in ``rep.differs``, naming the file and both sums. It is no problem by itself:
    a re-saved or self-made copy differs and may be fine (``zsgm data check --strict`` makes it an error)."""
    from zsgm.core.files import sha256_file

    if known is None or not path.is_file():
        return
    got = sha256_file(path)
    if got == known:
        rep.verified[key] = f"sha256 {got[:12]}... = the known xlsa17 copy"
        return
    rep.changed.append(key)
    rep.differs.append(f"{path}: sha256 {got[:16]}... differs from the known xlsa17 copy ({known[:16]}...): the "
                        f"file is corrupted or another copy; fetch it again (`zsgm data fetch {rep.dataset} "
                        f"--force`) unless you know its origin")


def check_features_file(rep: DatasetCheck, path: Path, spec) -> None:
    """res101.mat by its header alone (no sha256 is known): features [2048 x N] and labels [N x 1] with N the
    release's image count."""
    import scipy.io as sio

    try:
        heads = {name: tuple(shape) for name, shape, _ in sio.whosmat(str(path))}
    except Exception as exc:  # noqa: BLE001
        rep.problems.append(f"{path}: not a readable MATLAB file ({exc}); download it again")
        return
    feats, labels = heads.get("features"), heads.get("labels")
    if feats is None or labels is None:
        lacks = [k for k in ("features", "labels") if k not in heads]
        rep.problems.append(f"{path}: lacks {', '.join(lacks)} (has {', '.join(sorted(heads))}); not an xlsa17 "
                            f"res101.mat")
        return
    n = max(labels)
    if feats != (FEATURE_DIM, spec.n_images) or n != spec.n_images:
        rep.problems.append(f"{path}: features {feats}, labels {labels}; the {spec.name} release has "
                            f"[{FEATURE_DIM} x {spec.n_images}] and {spec.n_images} labels (a partial copy? read it "
                            f"with --features {path})")
        return
    rep.verified["res101.mat"] = f"shapes: features {FEATURE_DIM} x {spec.n_images}, {spec.n_images} labels"


def check(name: str, root: str | Path | None = None) -> DatasetCheck:
    from zsgm.extract.layouts import open_root
    from zsgm.extract.xlsa17 import class_list_dir, read_split_file

    spec = get_spec(name)
    folder = spec.folder_path(root)
    rep = DatasetCheck(spec.name, str(folder), features=_features(spec.name, root))
    if not folder.is_dir():
        return rep
    verify_file(rep, spec.split_path(root), f"{spec.folder}/{spec.split_file}",
                KNOWN_SHA256.get(f"{spec.folder}/{spec.split_file}"))
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
    if res.is_file():
        check_features_file(rep, res, spec)
    lists = class_list_dir(folder)
    rep.files["class lists"] = (f"ok ({lists.relative_to(folder) if lists != folder else '.'}/valclasses1.txt)"
                                if lists else "absent (validation classes then come from val_loc where present)")
    if lists:
        for fname, known in KNOWN_LISTS.get(spec.folder, {}).items():
            rel = lists.relative_to(folder) / fname
            verify_file(rep, lists / fname, f"{spec.folder}/{rel}", known)
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
    absent = [c for c in range(split.n_classes) if c not in set(classes)]
    if absent:
        names = raw.class_names or [str(c) for c in range(split.n_classes)]
        rep.missing = {"classes": len(absent), "images": spec.n_images - len(raw.records),
                       "class_names": [names[c] for c in absent]}
    rep.status = "complete" if len(raw.records) == spec.n_images else "partial"
    return rep


def check_root(root: str | Path | None = None) -> Path:
    """The data root, refused (ZsgmError) when it does not exist or is not a folder."""
    from zsgm.core.project import data_root

    path = data_root(root)
    if str(root or "").strip() == "" and root is not None:
        raise ZsgmError("--data-root is empty: give the folder that holds the dataset folders (CUB/, AWA2/ ...)")
    if not path.exists():
        raise ZsgmError(f"data root {path} does not exist; pass --data-root DIR (the folder holding CUB/, AWA2/ "
                        f"...) or set $ZSGM_DATA; `zsgm data fetch DATASET --data-root DIR` creates one")
    if not path.is_dir():
        raise ZsgmError(f"data root {path} is not a folder; pass the folder that holds the dataset folders "
                        f"(CUB/, AWA2/ ...)")
    return path


def check_all(names: list[str] | None, root: str | Path | None = None) -> list[DatasetCheck]:
    check_root(root)
    return [check(n, root) for n in (names or list(DATASETS))]
