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

from zsgm.core.errors import ZsgmError
from zsgm.core.logs import log
from zsgm.core.project import data_root
from zsgm.extract.featureset import READERS, FeatureSet, check_splits
from zsgm.extract.specs import DatasetSpec, get_spec

LOCS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")
OPTIONAL_LOCS = ("train_loc", "val_loc")
# What an export adds so that reading it back loses nothing: the FeatureSet's provenance
# (JSON) and its validation classes (1-based), beside the xlsa17 fields every loader reads.
PROVENANCE_KEY = "zsgm_provenance"
VAL_CLASSES_KEY = "zsgm_val_classes"


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
    provenance: dict = None           # set by read_split_file: what a zsgm export stored
    val_classes: np.ndarray | None = None   # 0-based, where an export stored them

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
    locs.update({k: _loc(m, k, path, n) - 1 for k in OPTIONAL_LOCS if k in m and np.asarray(m[k]).size})
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
    split = SplitFile(path, att, locs, names, orig, dtypes)
    split.provenance = _provenance(m, path)
    if VAL_CLASSES_KEY in m:
        val = _numeric(m, VAL_CLASSES_KEY, path, "iuf").ravel()
        if val.size and (not _integral(val) or val.min() < 1 or val.max() > att.shape[1]):
            raise ZsgmError(f"{path}: '{VAL_CLASSES_KEY}' must hold 1-based class numbers 1..{att.shape[1]}")
        split.val_classes = np.unique(val.astype(np.int64) - 1)
    return split


def _provenance(m: dict, path: Path) -> dict:
    """The FeatureSet metadata an export stored (``zsgm_provenance``, JSON), or {}."""
    if PROVENANCE_KEY not in m:
        return {}
    raw = np.asarray(m[PROVENANCE_KEY]).ravel()
    try:
        meta = json.loads(str(raw[0])) if raw.size else {}
    except ValueError as exc:
        raise ZsgmError(f"{path}: '{PROVENANCE_KEY}' is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ZsgmError(f"{path}: '{PROVENANCE_KEY}' must be a JSON object")
    return {str(k): str(v) for k, v in meta.items()}


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
    to ``allclasses_names``. A zsgm export stores them as they were (``zsgm_val_classes``).
    """
    if split.val_classes is not None:
        return split.val_classes
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
    prov = dict(split.provenance or {})
    name = dataset or (spec.name if spec else prov.get("dataset") or Path(split_path).parent.name.lower())
    source = f"{Path(features_path).name} + {Path(split_path).name}"
    if prov:  # a zsgm export: its own provenance, not the xlsa17 release's
        meta = {**prov, "dataset": name, "source": f"{source} (zsgm export of {prov.get('source', '?')})"}
    else:
        meta = {"dataset": name, "backbone": "resnet101", "pretrained": "imagenet",
                "weights": "xlsa17 res101.mat", "source": source}
    meta["xlsa17_dtypes"] = json.dumps({**fdt, **split.loc_dtypes, "att": str(split.att.dtype)})
    from zsgm.core.project import versions
    meta.setdefault("code_version", versions()["zsgm"])
    fs = FeatureSet(features=t(feats), labels=labels_t, attributes=t(split.att.T),
                    trainval_loc=t(split.locs["trainval_loc"]), test_seen_loc=t(split.locs["test_seen_loc"]),
                    test_unseen_loc=t(split.locs["test_unseen_loc"]), extra=extra,
                    class_names=split.class_names, image_files=files, meta=meta)
    fs.validate(f"{features_path} + {split_path}")
    return fs


def load_benchmark(name: str, root: str | Path | None = None) -> FeatureSet:
    """A benchmark by name from its xlsa17 files under the data root. A partial root (a zsgm export of
    some classes, or a release cut down) is refused by the release's counts: the message says to read
    it with ``--features`` instead, which takes the classes it holds."""
    spec = get_spec(name)
    try:
        return from_xlsa17(spec.features_path(root), spec.split_path(root), spec)
    except ZsgmError as exc:
        hint = partial_root_hint(spec, root)
        if hint:
            raise ZsgmError(f"{exc}. {hint}") from exc
        raise


def partial_root_hint(spec: DatasetSpec, root: str | Path | None = None) -> str:
    """'' unless the dataset's folder holds xlsa17 files of fewer images or classes than the release
    (read from the files' headers only); else how to read them anyway."""
    feats, split = spec.features_path(root), spec.split_path(root)
    if not (feats.is_file() and split.is_file()):
        return ""
    try:
        heads = {name: shape for name, shape, _ in sio.whosmat(str(split))}
        fheads = {name: shape for name, shape, _ in sio.whosmat(str(feats))}
    except Exception:  # noqa: BLE001  (an unreadable file: the error itself says so)
        return ""
    n_classes = max(heads.get("att", (0, 0))) if "att" in heads else 0
    att = heads.get("att")
    if att is not None and spec.att_dim in att:
        n_classes = att[1] if att[0] == spec.att_dim else att[0]
    n_images = max(fheads.get("labels", (0, 0))) if "labels" in fheads else 0
    export = PROVENANCE_KEY in heads
    if not export and (n_classes in (0, spec.n_classes)) and (n_images in (0, spec.n_images)):
        return ""
    what = "a zsgm export" if export else "a partial copy"
    return (f"{feats.parent} looks like {what} ({n_images or '?'} images, {n_classes or '?'} classes; the "
            f"{spec.name} release has {spec.n_images} and {spec.n_classes}): read it with --features {feats} "
            f"(and no --data), which takes the classes it holds")


def _cell(strings) -> np.ndarray:
    """A MATLAB cell column [n, 1] of strings, as the release stores names and files."""
    out = np.empty((len(strings), 1), dtype=object)
    for i, text in enumerate(strings):
        out[i, 0] = np.array([text])
    return out


def _index_dtype(recorded: str | None, largest: int) -> np.dtype:
    """Integer dtype for 1-based indices: the one the source file used when it was an integer
    type that holds them (uint16 in the release), else uint16 / uint32 by size. Never float:
    the field's loaders index NumPy arrays with these columns."""
    if recorded:
        dt = np.dtype(recorded)
        if dt.kind in "iu" and np.iinfo(dt).max >= largest:
            return dt
    return np.dtype(np.uint16) if largest <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


def export_locations(fs: FeatureSet) -> dict[str, np.ndarray]:
    """Every location array the field's loaders read, 0-based: the FeatureSet's own, plus
    ``train_loc`` / ``val_loc`` derived where it lacks them (tfvaegan and CE-GZSL read both
    unconditionally): ``val_loc`` = the trainval images of the validation classes, ``train_loc``
    = the other trainval images. Without validation classes, ``train_loc`` = trainval and
    ``val_loc`` is empty."""
    locs = {k: getattr(fs, k).numpy().astype(np.int64) for k in LOCS}
    have = {k: fs.extra[k].numpy().astype(np.int64) for k in OPTIONAL_LOCS if k in fs.extra}
    if len(have) < len(OPTIONAL_LOCS):
        trainval = locs["trainval_loc"]
        val = fs.val_classes
        in_val = np.isin(fs.labels.numpy()[trainval], val.numpy()) if val is not None \
            else np.zeros(len(trainval), dtype=bool)
        derived = {"train_loc": trainval[~in_val], "val_loc": trainval[in_val]}
        have = {**derived, **have}
    return {**locs, **have}


def provenance(fs: FeatureSet) -> dict[str, str]:
    """The metadata an export carries along (xlsa17_dtypes is re-derived on import)."""
    return {k: str(v) for k, v in fs.meta.items() if k != "xlsa17_dtypes"}


def to_xlsa17(fs: FeatureSet, out_dir: str | Path, split_name: str = "att_splits.mat") -> tuple[Path, Path]:
    """Export a FeatureSet as ``res101.mat`` + ``att_splits.mat`` that the field's loaders read
    unchanged (tfvaegan, CE-GZSL, f-CLSWGAN ...): ``features`` [D x N], ``labels`` [N x 1]
    1-based, ``image_files``; ``att`` and ``original_att`` [A x C], ``allclasses_names``, and
    every location key (``train_loc``, ``val_loc``, ``trainval_loc``, ``test_seen_loc``,
    ``test_unseen_loc``) as 1-based integer columns. Dtypes read from an xlsa17 file are kept,
    so ``.mat`` → FeatureSet → ``.mat`` is bit-exact for every field present; float16
    features are written as float32 (MATLAB has no half type). The FeatureSet's provenance
    and validation classes ride along (``zsgm_provenance``, ``zsgm_val_classes``) so that
    reading the export back loses neither.
    """
    from zsgm.core.files import atomic_path

    out_dir = Path(out_dir)
    dt = json.loads(fs.meta.get("xlsa17_dtypes", "{}"))
    n = int(fs.features.shape[0])

    def col(idx0: np.ndarray, key: str) -> np.ndarray:
        one = np.asarray(idx0, dtype=np.int64) + 1
        return one.astype(_index_dtype(dt.get(key), max(n, fs.n_classes))).reshape(-1, 1)

    feats = fs.features.numpy()
    fdtype = np.dtype(dt.get("features", feats.dtype))
    if fdtype == np.float16:
        fdtype = np.dtype(np.float32)
    label_dt = np.dtype(dt["labels"]) if "labels" in dt else _index_dtype(None, fs.n_classes)
    res = {"features": np.ascontiguousarray(feats.T.astype(fdtype)),
           "labels": (fs.labels.numpy().astype(np.int64) + 1).astype(label_dt).reshape(-1, 1)}
    if fs.image_files:
        res["image_files"] = _cell(fs.image_files)
    else:
        log.warning("%s has no image_files: res101.mat is written without them", fs.dataset)
    att_np = fs.attributes.numpy()
    att = att_np.T.astype(dt.get("att", att_np.dtype))
    splits: dict = {"att": att}
    for k, v in export_locations(fs).items():
        splits[k] = col(v, k)
    splits["original_att"] = fs.extra["original_att"].numpy().T if "original_att" in fs.extra else att.copy()
    if fs.class_names:
        splits["allclasses_names"] = _cell(fs.class_names)
    if fs.val_classes is not None:
        splits[VAL_CLASSES_KEY] = (fs.val_classes.numpy().astype(np.int64) + 1).astype(
            _index_dtype(None, fs.n_classes)).reshape(-1, 1)
    prov = json.dumps(provenance(fs), sort_keys=True)
    splits[PROVENANCE_KEY] = prov
    res[PROVENANCE_KEY] = prov
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / "res101.mat", out_dir / split_name)
    for path, content in zip(paths, (res, splits)):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                sio.savemat(fh, content)
    return paths


SPLIT_NAMES = ("att_splits.mat", "sent_splits.mat")


def split_beside(features_path: str | Path) -> Path:
    """The split file beside a ``res101.mat``: ``att_splits.mat``, else ``sent_splits.mat``."""
    folder = Path(features_path).parent
    for name in SPLIT_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise ZsgmError(f"{features_path} is an xlsa17 features file, but neither {' nor '.join(SPLIT_NAMES)} "
                    f"is beside it in {folder}; put the dataset's split file there (the xlsa17 release "
                    f"keeps both in data/<DATASET>/)")


def load_mat(features_path: str | Path, split_path: str | Path | None = None) -> FeatureSet:
    """``--features some/res101.mat``: an xlsa17 ``res101.mat`` (ours or the release's) with the
    split file beside it, as a FeatureSet. The dataset is the export's, else the folder's name
    (``AWA2/`` → ``awa2``); counts are checked against the benchmark only where they match it
    (a subset exported by zsgm is not the whole benchmark)."""
    features_path = Path(features_path)
    split = Path(split_path) if split_path else split_beside(features_path)
    return from_xlsa17(features_path, split)


READERS[".mat"] = load_mat  # FeatureSet.load("…/res101.mat") reads the xlsa17 pair


def default_root_has(spec: DatasetSpec, root: str | Path | None = None) -> bool:
    return spec.split_path(root).is_file()


__all__ = ["read_split_file", "read_features_file", "from_xlsa17", "to_xlsa17", "load_benchmark", "load_mat",
           "validation_classes", "SplitFile", "data_root"]
