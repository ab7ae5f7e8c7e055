"""The FeatureSet: one safetensors file holding a benchmark's features, labels, class
semantics, splits and provenance. Both the xlsa17 reader and our own extraction write it;
every later stage reads it.

Tensors: ``features [N, D]`` (dtype as read or extracted), ``labels [N]`` (int64, 0-based
class index = row of ``attributes``), ``attributes [C, A]``, ``trainval_loc``,
``test_seen_loc``, ``test_unseen_loc`` (0-based int64) and optionally ``train_loc``,
``val_loc``, ``original_att``, ``val_classes``. String metadata carries provenance;
``class_names`` and ``image_files`` are JSON lists in the metadata.
"""
from __future__ import annotations

import json
import mmap
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import save_file

from zsgm.core.errors import ZsgmError
from zsgm.core.files import atomic_path
from zsgm.core.logs import log

REQUIRED = ("features", "labels", "attributes", "trainval_loc", "test_seen_loc", "test_unseen_loc")
OPTIONAL = ("train_loc", "val_loc", "original_att", "val_classes", "xlsa17_index")
# What every tensor holds: "float" (any floating dtype) or "int" (any integer dtype, read as int64), and its
# number of dimensions. A tensor of another kind or shape is refused on load, naming it.
KINDS = {"features": ("float", 2), "labels": ("int", 1), "attributes": ("float", 2), "trainval_loc": ("int", 1),
         "test_seen_loc": ("int", 1), "test_unseen_loc": ("int", 1), "train_loc": ("int", 1),
         "val_loc": ("int", 1), "original_att": ("float", 2), "val_classes": ("int", 1),
         "xlsa17_index": ("int", 1)}
# Features whose largest |value| times sqrt(width) passes this have squared L2 norms past float32's range
# (3.4e38): L2 normalisation would turn them into zeros, min-max scaling into inf.
FEATURE_LIMIT = 1e18
LIST_META = ("class_names", "image_files")
FORMAT_VERSION = "1"
# Readers of other formats by file suffix, registered by the modules that know them (xlsa17.py: ".mat"),
# so that the cache format does not import its converters.
READERS: dict[str, Callable[[Path], "FeatureSet"]] = {}

_ST_DTYPES = {
    "F16": np.float16, "F32": np.float32, "F64": np.float64, "BF16": None,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "U16": np.uint16, "BOOL": np.bool_,
}


@dataclass
class FeatureSet:
    features: torch.Tensor
    labels: torch.Tensor
    attributes: torch.Tensor
    trainval_loc: torch.Tensor
    test_seen_loc: torch.Tensor
    test_unseen_loc: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    image_files: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------ views
    @property
    def n_classes(self) -> int:
        return int(self.attributes.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def dataset(self) -> str:
        return self.meta.get("dataset", "unknown")

    @property
    def seen_classes(self) -> torch.Tensor:
        return torch.unique(self.labels[self.trainval_loc])

    @property
    def unseen_classes(self) -> torch.Tensor:
        """Classes not among the training labels: the ones GZSL must synthesise.

        Read from ``attributes`` minus the trainval classes, so that the test split
        is not touched to learn which classes are unseen.
        """
        seen = set(self.seen_classes.tolist())
        return torch.tensor([c for c in range(self.n_classes) if c not in seen], dtype=torch.long)

    @property
    def val_classes(self) -> torch.Tensor | None:
        return self.extra.get("val_classes")

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (as float32) and labels of the images ``idx``: the one door to image data,
        so that tests can watch which indices a stage reads."""
        idx = torch.as_tensor(idx, dtype=torch.long)
        return self.features[idx].float(), self.labels[idx]

    def summary(self) -> str:
        return (f"{self.dataset}: {self.features.shape[0]} images x {self.feature_dim} d, "
                f"{self.n_classes} classes ({len(self.seen_classes)} seen), "
                f"trainval {len(self.trainval_loc)}, test seen {len(self.test_seen_loc)}, "
                f"test unseen {len(self.test_unseen_loc)}, backbone {self.meta.get('backbone', '?')}")

    # ------------------------------------------------------------ checks
    def validate(self, source: str = "FeatureSet") -> None:
        """Dtypes, shapes, value ranges (of every tensor, the optional ones too) and the GZSL split
        invariants; raises ZsgmError naming the tensor and the problem. Integer tensors of any integer
        dtype are kept as int64."""
        self._check_kinds(source)
        n = self.features.shape[0]
        if self.features.ndim != 2:
            raise ZsgmError(f"{source}: features must be [N, D], got shape {tuple(self.features.shape)}")
        if self.labels.shape != (n,):
            raise ZsgmError(f"{source}: labels must be [N]={n}, got {tuple(self.labels.shape)}")
        if self.attributes.ndim != 2:
            raise ZsgmError(f"{source}: attributes must be [C, A], got {tuple(self.attributes.shape)}")
        if self.attributes.shape[1] < 1 or self.attributes.shape[0] < 1:
            raise ZsgmError(f"{source}: attributes has shape {tuple(self.attributes.shape)}; every class needs a "
                            f"row of at least 1 attribute (class semantics) to be synthesised from")
        if self.features.shape[1] < 1:
            raise ZsgmError(f"{source}: features has shape {tuple(self.features.shape)}; they must be at least "
                            f"1 wide")
        if n and (int(self.labels.min()) < 0 or int(self.labels.max()) >= self.n_classes):
            raise ZsgmError(f"{source}: labels must lie in 0..{self.n_classes - 1} (one per attribute row), "
                            f"got {int(self.labels.min())}..{int(self.labels.max())}")
        if not torch.isfinite(self.attributes.float()).all():
            raise ZsgmError(f"{source}: attributes contain NaN or inf values")
        if n and not torch.isfinite(self.features.float()).all():
            bad = int((~torch.isfinite(self.features.float())).any(1).sum())
            raise ZsgmError(f"{source}: features contain NaN or inf values in {bad} rows")
        if n and self.features.numel():
            top = float(self.features.abs().max())
            if top * self.feature_dim ** 0.5 > FEATURE_LIMIT:
                raise ZsgmError(f"{source}: features reach |x| = {top:.3g}: their squared L2 norms overflow "
                                f"float32 (max 3.4e38), so normalisation would turn them into zeros; rescale the "
                                f"features (e.g. divide by their largest value) and save them again")
        check_splits(self.labels, self.trainval_loc, self.test_seen_loc, self.test_unseen_loc, n, source)
        self._check_optional(source)
        if self.class_names and len(self.class_names) != self.n_classes:
            raise ZsgmError(f"{source}: {len(self.class_names)} class_names for {self.n_classes} attribute rows")
        if self.image_files and len(self.image_files) != n:
            raise ZsgmError(f"{source}: {len(self.image_files)} image_files for {n} features")

    def _tensor_items(self):
        yield from ((k, getattr(self, k)) for k in REQUIRED)
        yield from self.extra.items()

    def _check_kinds(self, source: str) -> None:
        """Every tensor known (``REQUIRED`` / ``OPTIONAL``), of its kind (float / integer) and dimensions;
        integer ones become int64 (indices and labels index tensors)."""
        unknown = sorted(k for k in self.extra if k not in KINDS)
        if unknown:
            raise ZsgmError(f"{source}: unknown tensor(s) {unknown}; a FeatureSet holds {', '.join(REQUIRED)} and "
                            f"optionally {', '.join(OPTIONAL)}: remove them or extract again")
        for name, t in list(self._tensor_items()):
            kind, ndim = KINDS[name]
            if not isinstance(t, torch.Tensor):
                raise ZsgmError(f"{source}: {name} is not a tensor ({type(t).__name__})")
            if kind == "int":
                if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
                    raise ZsgmError(f"{source}: {name} must hold integers (int64 indices), got {t.dtype}"
                                    f"{_sample(t)}; write it as int64 (0-based) or extract again")
                if t.dtype != torch.int64:
                    t = t.to(torch.int64)
                    if name in REQUIRED:
                        setattr(self, name, t)
                    else:
                        self.extra[name] = t
            elif not t.is_floating_point():
                raise ZsgmError(f"{source}: {name} must hold floating-point values, got {t.dtype}; write it as "
                                f"float32 (or float16/float64) or extract again")
            if t.ndim != ndim:
                want = "a vector [K]" if ndim == 1 else "a matrix [rows, columns]"
                raise ZsgmError(f"{source}: {name} must be {want}, got shape {tuple(t.shape)}")

    def _check_optional(self, source: str) -> None:
        """Ranges of the optional tensors (their kinds are checked by ``_check_kinds``)."""
        n, c = self.features.shape[0], self.n_classes
        for name in ("train_loc", "val_loc"):
            loc = self.extra.get(name)
            if loc is None:
                continue
            if len(loc) and (int(loc.min()) < 0 or int(loc.max()) >= n):
                raise ZsgmError(f"{source}: {name} indexes images {int(loc.min())}..{int(loc.max())} but there "
                                f"are {n} (0-based); is it still 1-based?")
            if len(torch.unique(loc)) != len(loc):
                raise ZsgmError(f"{source}: {name} repeats image indices")
        idx = self.extra.get("xlsa17_index")
        if idx is not None:
            if idx.shape != (n,):
                raise ZsgmError(f"{source}: xlsa17_index must be [N]={n} (one per image), got {tuple(idx.shape)}")
            if n and int(idx.min()) < 0:
                raise ZsgmError(f"{source}: xlsa17_index holds negative indices ({int(idx.min())}); they are 0-based "
                                f"positions in the xlsa17 image list")
        orig = self.extra.get("original_att")
        if orig is not None:
            if orig.shape[0] != c:
                raise ZsgmError(f"{source}: original_att has {orig.shape[0]} rows for {c} classes (attributes rows); "
                                f"it must be [C, A] like attributes")
            if not torch.isfinite(orig.float()).all():
                raise ZsgmError(f"{source}: original_att contains NaN or inf values")
        val = self.extra.get("val_classes")
        if val is not None:
            where = f"{source}: val_classes {val.tolist()[:8]}{' ...' if len(val) > 8 else ''}"
            if not len(val):
                raise ZsgmError(f"{where}: empty; leave the tensor out when there are no validation classes")
            if int(val.min()) < 0 or int(val.max()) >= c:
                raise ZsgmError(f"{where}: must be class indices in 0..{c - 1} (rows of attributes)")
            if len(torch.unique(val)) != len(val):
                raise ZsgmError(f"{where}: repeats a class")
            if n:
                seen = set(torch.unique(self.labels[self.trainval_loc]).tolist())
                out = sorted(set(val.tolist()) - seen)
                if out:
                    raise ZsgmError(f"{where}: classes {out[:5]} are not training (trainval) classes; validation "
                                    f"classes are carved out of the seen classes")

    def check_gzsl(self, source: str = "FeatureSet") -> None:
        """What a GZSL run needs beyond a valid file: training images, seen and unseen classes, and
        test images of both (else U, S or H would be the mean of nothing: NaN)."""
        needs = []
        if not len(self.trainval_loc):
            needs.append("trainval_loc is empty (no training images)")
        if len(self.trainval_loc) and not len(self.unseen_classes):
            needs.append(f"all {self.n_classes} classes are seen (attributes has no row without trainval images), "
                         f"so there is no unseen class to synthesise")
        if not len(self.test_unseen_loc):
            needs.append("test_unseen_loc is empty (no unseen test images: U and H are undefined)")
        if not len(self.test_seen_loc):
            needs.append("test_seen_loc is empty (no seen test images: S and H are undefined)")
        zero = torch.nonzero(self.attributes.float().abs().sum(1) == 0).ravel().tolist()
        if zero:
            names = [self.class_names[i] if i < len(self.class_names) else str(i) for i in zero[:5]]
            needs.append(f"attributes rows {zero[:5]}{' ...' if len(zero) > 5 else ''} ({', '.join(names)}) are all "
                         f"zero: those classes have no semantics to synthesise or recognise them from (give them "
                         f"their attribute rows)")
        if needs:
            raise ZsgmError(f"{source}: not a GZSL problem: {'; '.join(needs)}. A FeatureSet needs seen classes "
                            f"with trainval and test images and unseen classes with test images; extract classes "
                            f"of both splits (e.g. `zsgm extract ... --classes` with seen and unseen ones)")

    # ------------------------------------------------------------ file format
    def tensors(self) -> dict[str, torch.Tensor]:
        out = {k: getattr(self, k) for k in REQUIRED}
        out.update(self.extra)
        return {k: v.contiguous() for k, v in out.items()}

    def save(self, path: str | Path) -> Path:
        """Write atomically: a temp file beside ``path``, then rename."""
        path = Path(path)
        meta = {k: str(v) for k, v in self.meta.items()}
        meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        meta["format"] = FORMAT_VERSION
        meta["class_names"] = json.dumps(list(self.class_names))
        meta["image_files"] = json.dumps(list(self.image_files))
        with atomic_path(path) as tmp:
            save_file(self.tensors(), str(tmp), metadata=meta)
        log.info("wrote %s (%s)", path, self.summary())
        return path

    @classmethod
    def dataset_of(cls, path: str | Path) -> str:
        """The dataset a FeatureSet file holds, from its safetensors header alone (a ``.mat`` or an
        unreadable header is loaded in full, which says what is wrong)."""
        path = Path(path)
        if path.suffix.lower() != ".mat":
            try:
                from safetensors import safe_open

                with safe_open(str(path), "pt") as fh:
                    return (fh.metadata() or {}).get("dataset", "unknown")
            except Exception:  # noqa: BLE001  (load() names the file and the fault)
                pass
        return cls.load(path).dataset

    @classmethod
    def load(cls, path: str | Path, mmap_features: bool = True) -> "FeatureSet":
        """Read a FeatureSet; the features stay memory-mapped (copy-on-write) unless asked otherwise."""
        path = Path(path)
        if not str(path).strip() or str(path) == ".":
            raise ZsgmError("FeatureSet path is empty: pass a .safetensors (or xlsa17 res101.mat) file")
        try:
            st = path.stat()
        except OSError as exc:
            import errno

            if exc.errno == errno.ELOOP:
                raise ZsgmError(f"FeatureSet {path}: a symbolic-link loop (the link points back at itself); "
                                f"fix the link or pass the real file") from None
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise ZsgmError(f"FeatureSet {path} cannot be read: {exc.strerror or exc}; check the path's "
                                f"permissions (ls -l)") from None
            broken = " (a symbolic link whose target is missing)" if path.is_symlink() else ""
            raise ZsgmError(f"FeatureSet {path} does not exist{broken}; build it with `zsgm extract` "
                            f"or pass an existing file to --features") from None
        import stat as stat_mod

        if stat_mod.S_ISDIR(st.st_mode):
            raise ZsgmError(f"FeatureSet {path} is a directory, not a file; pass the .safetensors file inside "
                            f"it (or the path `zsgm extract` printed)")
        if not stat_mod.S_ISREG(st.st_mode):
            raise ZsgmError(f"FeatureSet {path} is not a regular file (a device, pipe or socket); pass a "
                            f".safetensors file written by `zsgm extract`")
        reader = READERS.get(path.suffix.lower())
        if reader is not None:  # another format: an xlsa17 res101.mat, its split file beside it (xlsa17.py)
            return reader(path)
        try:
            header, tensors = _read_safetensors(path, mmap_features)
        except ZsgmError:
            raise
        except OSError as exc:  # permission denied, an I/O error: the file itself may be fine
            raise ZsgmError(f"FeatureSet {path} cannot be read: {exc.strerror or exc}; check the file's "
                            f"permissions (ls -l) and the disk") from exc
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            raise ZsgmError(f"FeatureSet {path} is not a readable safetensors file ({reason}); "
                            f"delete it and extract again") from exc
        meta = header.get("__metadata__", {}) or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise ZsgmError(f"FeatureSet {path}: the header's __metadata__ must map names to strings; "
                            f"extract it again")
        meta = dict(meta)
        missing = [k for k in REQUIRED if k not in tensors]
        if missing:
            raise ZsgmError(f"FeatureSet {path} lacks tensor(s) {missing}; it was not written by zsgm "
                            f"or is from an incompatible version: extract it again")
        lists = {k: _json_list(meta.pop(k, "[]"), k, path) for k in LIST_META}
        fs = cls(**{k: tensors.pop(k) for k in REQUIRED}, extra=tensors, meta=meta, **lists)
        fs.validate(str(path))
        return fs


def _sample(t: torch.Tensor) -> str:
    """A few values of a small tensor, for messages."""
    if not t.numel():
        return ""
    vals = t.reshape(-1)[:4].tolist()
    return f" (e.g. {vals})"


def _json_list(text: str, field: str, path: Path) -> list[str]:
    """A metadata field that holds a JSON list of strings (``class_names``, ``image_files``)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ZsgmError(f"FeatureSet {path}: metadata field '{field}' is not valid JSON ({exc}; starts "
                        f"{text[:40]!r}); it must be a JSON list of strings: fix the metadata or extract "
                        f"again") from exc
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ZsgmError(f"FeatureSet {path}: metadata field '{field}' must be a JSON list of strings, got "
                        f"{type(value).__name__} {text[:40]!r}; fix the metadata or extract again")
    return value


def _read_safetensors(path: Path, use_mmap: bool) -> tuple[dict, dict[str, torch.Tensor]]:
    """Parse the safetensors header and map tensors straight onto the file."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ZsgmError(f"FeatureSet {path} is {size} bytes, too short for a safetensors header; "
                            f"delete it and extract again")
        (hlen,) = struct.unpack("<Q", head)
        if hlen > size - 8:
            raise ZsgmError(f"FeatureSet {path}: its header claims {hlen} bytes but the file has {size}; "
                            f"it is truncated or not a safetensors file: delete it and extract again")
        header = json.loads(fh.read(hlen))
        if not isinstance(header, dict):
            raise ZsgmError(f"FeatureSet {path}: the safetensors header is not a JSON object; extract it again")
        base = 8 + hlen
        if use_mmap:
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
        else:
            fh.seek(0)  # offsets below count from the file's start
            buf = fh.read()
    out: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if info["dtype"] == "BF16":
            raw = np.frombuffer(buf, dtype=np.int16, count=(end - start) // 2, offset=base + start)
            t = torch.from_numpy(raw.copy()).view(torch.bfloat16).reshape(shape)
        else:
            dt = np.dtype(_ST_DTYPES[info["dtype"]])
            count = (end - start) // dt.itemsize
            arr = np.frombuffer(buf, dtype=dt, count=count, offset=base + start).reshape(shape)
            big = name == "features" and use_mmap
            t = torch.from_numpy(arr if (big and arr.flags.writeable) else arr.copy())
        out[name] = t
    return header, out


# ---------------------------------------------------------------- split invariants
def check_splits(labels: torch.Tensor, trainval: torch.Tensor, test_seen: torch.Tensor,
                 test_unseen: torch.Tensor, n: int, source: str) -> None:
    """Disjoint, covering-free but in range, seen/unseen classes kept apart."""
    named = {"trainval_loc": trainval, "test_seen_loc": test_seen, "test_unseen_loc": test_unseen}
    for name, loc in named.items():
        if loc.ndim != 1:
            raise ZsgmError(f"{source}: {name} must be a vector, got shape {tuple(loc.shape)}")
        if len(loc) and (int(loc.min()) < 0 or int(loc.max()) >= n):
            raise ZsgmError(f"{source}: {name} indexes images {int(loc.min())}..{int(loc.max())} "
                            f"but there are {n} (0-based); is it still 1-based?")
        if len(torch.unique(loc)) != len(loc):
            raise ZsgmError(f"{source}: {name} repeats image indices")
    pairs = [("trainval_loc", "test_seen_loc"), ("trainval_loc", "test_unseen_loc"),
             ("test_seen_loc", "test_unseen_loc")]
    for a, b in pairs:
        both = np.intersect1d(named[a].numpy(), named[b].numpy())
        if len(both):
            raise ZsgmError(f"{source}: {a} and {b} overlap in {len(both)} images (e.g. index {int(both[0])}); "
                            f"the splits must be disjoint")
    seen = set(torch.unique(labels[trainval]).tolist())
    ts = set(torch.unique(labels[test_seen]).tolist())
    tu = set(torch.unique(labels[test_unseen]).tolist())
    if not ts <= seen:
        raise ZsgmError(f"{source}: test_seen_loc holds classes {sorted(ts - seen)[:5]} that trainval_loc lacks")
    if tu & seen:
        raise ZsgmError(f"{source}: test_unseen_loc holds seen classes {sorted(tu & seen)[:5]}; "
                        f"unseen classes must not appear in trainval_loc")


# ---------------------------------------------------------------- normalisation
NORMALISATIONS = ("minmax", "l2", "none")


def fit_normaliser(train: torch.Tensor, method: str):
    """A function mapping features to normalised features, fitted on ``train`` only.

    ``minmax`` is the seed's: per-dimension min-max scaling fitted on the training
    features, then division by the largest scaled training value.
    """
    if method == "none":
        return lambda x: x
    if method == "l2":
        return lambda x: torch.nn.functional.normalize(x, dim=1)
    if method == "minmax":
        lo = train.min(0).values
        span = (train.max(0).values - lo).clamp_min(1e-12)
        mx = ((train - lo) / span).max().clamp_min(1e-12)
        return lambda x: (x - lo) / span / mx
    raise ZsgmError(f"unknown normalisation '{method}'; use one of {', '.join(NORMALISATIONS)}")
