"""Reader and writer for the xlsa17 release files (Xian et al., "Zero-Shot Learning —
A Comprehensive Evaluation of the Good, the Bad and the Ugly"): ``res101.mat`` (features,
labels, image_files) and ``att_splits.mat`` / ``sent_splits.mat`` (class semantics and
1-based split indices). Every check names the file and what is wrong.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io as sio
import torch

from extract.common import ZsgmError, data_root
from extract.featureset import FeatureSet, check_splits
from extract.specs import DatasetSpec, get_spec

LOCS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")
OPTIONAL_LOCS = ("train_loc", "val_loc")


def _loadmat(path: Path) -> dict:
    if not path.is_file():
        raise ZsgmError(f"{path} not found. The xlsa17 files come from the 'Zero-Shot Learning - the Good, "
                        f"the Bad and the Ugly' release (xlsa17.zip, data/<DATASET>/); put them in "
                        f"{path.parent} or point --data-root / $ZSGM_DATA at the folder holding {path.parent.name}/")
    try:
        return sio.loadmat(str(path))
    except Exception as exc:
        raise ZsgmError(f"{path} is not a readable MATLAB file ({exc}); download it again") from exc


def _names(arr) -> list[str]:
    return [str(np.asarray(x).ravel()[0]) if np.asarray(x).size else "" for x in np.asarray(arr).ravel()]


def _field(m: dict, key: str, path: Path):
    if key not in m:
        have = sorted(k for k in m if not k.startswith("__"))
        raise ZsgmError(f"{path}: field '{key}' is missing (fields present: {', '.join(have)})")
    return m[key]


def _numeric(m: dict, key: str, path: Path, kinds: str = "iufb") -> np.ndarray:
    """The field as an array of real numbers (not text, cells, structs or complex values)."""
    arr = np.asarray(_field(m, key, path))
    if arr.dtype.kind not in kinds:
        raise ZsgmError(f"{path}: '{key}' holds values of type {arr.dtype} (shape {arr.shape}); expected "
                        f"{'integer indices' if 'b' not in kinds else 'real numbers'}")
    return arr


def _integral(a: np.ndarray) -> bool:
    """Every value a whole number (NaN and inf are not), without NumPy's warning on NaN."""
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.equal(np.mod(a, 1), 0)))


def _loc(m: dict, key: str, path: Path, n: int | None) -> np.ndarray:
    raw = _numeric(m, key, path, "iuf")
    if raw.ndim != 2 or 1 not in raw.shape:
        raise ZsgmError(f"{path}: '{key}' must be a column of 1-based indices, got shape {raw.shape}")
    if raw.size == 0:
        raise ZsgmError(f"{path}: '{key}' is empty")
    if not _integral(raw):
        raise ZsgmError(f"{path}: '{key}' holds non-integer indices")
    loc = raw.ravel().astype(np.int64)
    if loc.min() < 1:
        raise ZsgmError(f"{path}: '{key}' holds index {loc.min()}, but xlsa17 indices are 1-based "
                        f"(smallest 1); was it saved 0-based? add 1 to every index")
    if n is not None and loc.max() > n:
        raise ZsgmError(f"{path}: '{key}' holds index {loc.max()} but there are only {n} images")
    return loc


@dataclass
class SplitFile:
    """The content of att_splits.mat / sent_splits.mat, indices 0-based."""
    path: Path
    att: np.ndarray                 # [A, C] as stored
    locs: dict[str, np.ndarray]     # 0-based
    class_names: list[str]
    original_att: np.ndarray | None
    loc_dtypes: dict[str, str]

    @property
    def n_classes(self) -> int:
        return self.att.shape[1]


def read_split_file(path: str | Path, spec: DatasetSpec | None = None, n_images: int | None = None) -> SplitFile:
    path = Path(path)
    m = _loadmat(path)
    att = _numeric(m, "att", path)
    if att.ndim != 2:
        raise ZsgmError(f"{path}: 'att' must be a matrix [attributes x classes], got shape {att.shape}")
    if spec is not None:
        if att.shape == (spec.n_classes, spec.att_dim) and att.shape[0] != att.shape[1]:
            raise ZsgmError(f"{path}: 'att' is transposed: shape {att.shape}, expected "
                            f"[{spec.att_dim} attributes x {spec.n_classes} classes]; save att.T instead")
        if att.shape != (spec.att_dim, spec.n_classes):
            raise ZsgmError(f"{path}: 'att' has shape {att.shape}, expected [{spec.att_dim} x {spec.n_classes}] "
                            f"for {spec.name}; is this the right dataset's file?")
    if not np.isfinite(att).all():
        raise ZsgmError(f"{path}: 'att' contains NaN or inf values")
    n = n_images if n_images is not None else (spec.n_images if spec else None)
    locs = {k: _loc(m, k, path, n) - 1 for k in LOCS}
    locs.update({k: _loc(m, k, path, n) - 1 for k in OPTIONAL_LOCS if k in m})
    if spec is not None:
        want = {"trainval_loc": spec.n_trainval, "test_seen_loc": spec.n_test_seen,
                "test_unseen_loc": spec.n_test_unseen}
        for k, v in want.items():
            if len(locs[k]) != v:
                raise ZsgmError(f"{path}: '{k}' has {len(locs[k])} indices, expected {v} for {spec.name}")
    for i, a in enumerate(LOCS):
        for b in LOCS[i + 1:]:
            both = np.intersect1d(locs[a], locs[b])
            if len(both):
                raise ZsgmError(f"{path}: '{a}' and '{b}' overlap in {len(both)} images "
                                f"(e.g. index {int(both[0]) + 1}); the splits must be disjoint")
    if spec is not None:
        covered = sum(len(locs[k]) for k in LOCS)
        if covered != spec.n_images:
            raise ZsgmError(f"{path}: the three splits cover {covered} images, expected all {spec.n_images}")
    names = _names(m["allclasses_names"]) if "allclasses_names" in m else []
    if names and len(names) != att.shape[1]:
        raise ZsgmError(f"{path}: {len(names)} allclasses_names for {att.shape[1]} columns of 'att'")
    orig = _numeric(m, "original_att", path) if "original_att" in m else None
    if orig is not None and orig.shape != att.shape:
        raise ZsgmError(f"{path}: 'original_att' has shape {orig.shape} but 'att' has {att.shape}; they must match")
    dtypes = {k: str(np.asarray(m[k]).dtype) for k in LOCS + OPTIONAL_LOCS if k in m}
    return SplitFile(path, att, locs, names, orig, dtypes)


def class_list_dir(folder: Path) -> Path | None:
    """Where the xlsa17 class lists (trainclasses1.txt ...) sit: beside the split file or in xlsa17_classes/."""
    for d in (folder, folder / "xlsa17_classes"):
        if (d / "valclasses1.txt").is_file():
            return d
    return None


def validation_classes(split: SplitFile, labels: np.ndarray | None) -> np.ndarray | None:
    """Validation classes carved out of the seen classes, as the files define them.

    ``val_loc`` (where present) gives them through the labels of its trainval images
    (never through test images); otherwise the xlsa17 list ``valclasses1.txt`` matched
    to ``allclasses_names``.
    """
    if "val_loc" in split.locs and labels is not None:
        inside = np.intersect1d(split.locs["val_loc"], split.locs["trainval_loc"])
        if len(inside):
            return np.unique(labels[inside])
    lists = class_list_dir(split.path.parent)
    if lists is not None and split.class_names:
        wanted = [ln.strip() for ln in (lists / "valclasses1.txt").read_text().splitlines() if ln.strip()]
        index = {n: i for i, n in enumerate(split.class_names)}
        missing = [w for w in wanted if w not in index]
        if missing:
            raise ZsgmError(f"{lists / 'valclasses1.txt'}: classes {missing[:3]} are not in allclasses_names "
                            f"of {split.path}")
        return np.array(sorted(index[w] for w in wanted), dtype=np.int64)
    return None


def read_features_file(path: str | Path, spec: DatasetSpec | None = None):
    """res101.mat → (features [N, D] as stored, 0-based labels, image_files, raw dtypes)."""
    path = Path(path)
    m = _loadmat(path)
    feats = _numeric(m, "features", path)
    labels = _numeric(m, "labels", path, "iuf")
    if feats.ndim != 2:
        raise ZsgmError(f"{path}: 'features' must be [D x N], got shape {feats.shape}")
    n = labels.size
    if feats.shape[1] != n:
        if feats.shape[0] == n:
            raise ZsgmError(f"{path}: 'features' is transposed: shape {feats.shape}; xlsa17 stores "
                            f"[feature dim x images] ({n} labels); save features.T instead")
        raise ZsgmError(f"{path}: 'features' has {feats.shape[1]} columns but there are {n} labels")
    if spec is not None and n != spec.n_images:
        raise ZsgmError(f"{path}: {n} images, expected {spec.n_images} for {spec.name}")
    if not np.isfinite(feats).all():
        bad = int((~np.isfinite(feats)).any(0).sum())
        raise ZsgmError(f"{path}: 'features' contain NaN or inf values in {bad} images")
    lab = labels.ravel()
    if lab.size == 0:
        raise ZsgmError(f"{path}: 'labels' is empty: the file holds no images")
    if not _integral(lab):
        raise ZsgmError(f"{path}: 'labels' holds non-integer (or NaN/inf) values; expected 1-based class numbers")
    if lab.min() < 1:
        raise ZsgmError(f"{path}: 'labels' hold {lab.min()}, but xlsa17 labels are 1-based class numbers; "
                        f"was it saved 0-based? add 1 to every label")
    files = _names(m["image_files"]) if "image_files" in m else []
    dtypes = {"features": str(feats.dtype), "labels": str(labels.dtype)}
    return feats.T, lab.astype(np.int64) - 1, files, dtypes


def from_xlsa17(features_path: str | Path, split_path: str | Path, spec: DatasetSpec | None = None,
                dataset: str | None = None) -> FeatureSet:
    """Build a FeatureSet from res101.mat + att_splits.mat, keeping dtypes so that
    ``to_xlsa17`` gives back the same arrays."""
    feats, labels, files, fdt = read_features_file(features_path, spec)
    split = read_split_file(split_path, spec, n_images=len(labels))
    if labels.max() >= split.n_classes:
        raise ZsgmError(f"{features_path}: label {labels.max() + 1} but {split_path} has only "
                        f"{split.n_classes} classes; are the two files from the same dataset?")
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    labels_t = t(labels)
    extra = {k: t(split.locs[k]) for k in OPTIONAL_LOCS if k in split.locs}
    if split.original_att is not None:
        extra["original_att"] = t(split.original_att.T)
    val = validation_classes(split, labels)
    if val is not None:
        extra["val_classes"] = t(val.astype(np.int64))
    name = dataset or (spec.name if spec else Path(split_path).parent.name.lower())
    meta = {
        "dataset": name, "backbone": "resnet101", "pretrained": "imagenet", "weights": "xlsa17 res101.mat",
        "source": f"{Path(features_path).name} + {Path(split_path).name}",
        "xlsa17_dtypes": json.dumps({**fdt, **split.loc_dtypes, "att": str(split.att.dtype)}),
    }
    from extract.common import versions
    meta["code_version"] = versions()["zsgm"]
    fs = FeatureSet(features=t(feats), labels=labels_t, attributes=t(split.att.T),
                    trainval_loc=t(split.locs["trainval_loc"]), test_seen_loc=t(split.locs["test_seen_loc"]),
                    test_unseen_loc=t(split.locs["test_unseen_loc"]), extra=extra,
                    class_names=split.class_names, image_files=files, meta=meta)
    fs.validate(f"{features_path} + {split_path}")
    return fs


def load_benchmark(name: str, root: str | Path | None = None) -> FeatureSet:
    """A benchmark by name from its xlsa17 files under the data root."""
    spec = get_spec(name)
    return from_xlsa17(spec.features_path(root), spec.split_path(root), spec)


def to_xlsa17(fs: FeatureSet, out_dir: str | Path, split_name: str = "att_splits.mat") -> tuple[Path, Path]:
    """Export a FeatureSet as res101.mat + att_splits.mat that other GZSL codebases read."""
    from extract.common import atomic_path

    out_dir = Path(out_dir)
    dt = json.loads(fs.meta.get("xlsa17_dtypes", "{}"))
    def cell(strings):  # a MATLAB cell column [n, 1] of strings
        out = np.empty((len(strings), 1), dtype=object)
        for i, text in enumerate(strings):
            out[i, 0] = np.array([text])
        return out

    col = lambda v, key: (v.numpy().astype(np.int64) + 1).astype(dt.get(key, "float64")).reshape(-1, 1)  # noqa
    feats = fs.features.numpy()
    res = {"features": feats.T.astype(dt.get("features", feats.dtype)),
           "labels": col(fs.labels, "labels")}
    if fs.image_files:
        res["image_files"] = cell(fs.image_files)
    att = fs.attributes.numpy().T.astype(dt.get("att", fs.attributes.numpy().dtype))
    splits = {"att": att}
    for k in LOCS:
        splits[k] = col(getattr(fs, k), k)
    for k in OPTIONAL_LOCS:
        if k in fs.extra:
            splits[k] = col(fs.extra[k], k)
    if "original_att" in fs.extra:
        splits["original_att"] = fs.extra["original_att"].numpy().T
    if fs.class_names:
        splits["allclasses_names"] = cell(fs.class_names)
    paths = (out_dir / "res101.mat", out_dir / split_name)
    for path, content in zip(paths, (res, splits)):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                sio.savemat(fh, content)
    return paths


def default_root_has(spec: DatasetSpec, root: str | Path | None = None) -> bool:
    return spec.split_path(root).is_file()


__all__ = ["read_split_file", "read_features_file", "from_xlsa17", "to_xlsa17", "load_benchmark",
           "validation_classes", "SplitFile", "data_root"]
