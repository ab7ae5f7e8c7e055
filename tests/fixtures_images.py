"""Tiny generated benchmark roots in each raw layout, for the extraction tests.

CUB and FLO roots carry full-size metadata (11788 / 8189 images, as the real split files)
but JPEGs for only a few classes: a partial root, exactly like ``../shared/data``. AwA2,
SUN and APY roots are complete but tiny, under tiny dataset specs that the tests register
with ``tiny_spec``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io as sio
from PIL import Image

from zsgm.extract.specs import DatasetSpec


def jpeg(path: Path, seed: int, size: tuple[int, int] = (40, 32)) -> Path:
    """A small JPEG whose colours depend on ``seed`` (so features differ between images)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, 3)
    arr = np.clip(base + rng.normal(0, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=90)
    return path


def cell(names: list[str]) -> np.ndarray:
    return np.array([[np.array([n])] for n in names], dtype=object).reshape(-1, 1)


def col(idx) -> np.ndarray:
    return (np.asarray(idx, dtype=np.int64) + 1).astype(np.float64).reshape(-1, 1)


def split_locs(labels: np.ndarray, seen: set[int], n_test_seen: int | None = None) -> dict[str, np.ndarray]:
    """trainval / test_seen / test_unseen. test_seen holds the last image of every seen class, then
    (to reach ``n_test_seen``, the real file's count) images of the larger seen classes."""
    last = {int(c): int(np.nonzero(labels == c)[0][-1]) for c in np.unique(labels)}
    is_seen = np.isin(labels, sorted(seen))
    ts = {last[c] for c in last if c in seen}
    sizes = np.bincount(labels, minlength=int(labels.max()) + 1)
    pool = [i for i in np.nonzero(is_seen)[0] if i not in ts and sizes[labels[i]] > 10]
    want = (n_test_seen if n_test_seen is not None else len(pool) // 5 + len(ts)) - len(ts)
    if want > 0:
        ts |= {pool[int(k)] for k in np.linspace(0, len(pool) - 1, want)}
    tv = [i for i in np.nonzero(is_seen)[0] if i not in ts]
    return {"trainval_loc": np.array(tv), "test_seen_loc": np.array(sorted(ts)),
            "test_unseen_loc": np.nonzero(~is_seen)[0]}


def spread(total: int, k: int) -> list[int]:
    return [total // k + (1 if i < total % k else 0) for i in range(k)]


def write_split(path: Path, labels: np.ndarray, seen: set[int], n_classes: int, att_dim: int,
                names: list[str] | None, extra_locs: dict | None = None, seed: int = 0,
                n_test_seen: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    att = rng.random((att_dim, n_classes))
    att /= np.linalg.norm(att, axis=0, keepdims=True)
    locs = split_locs(labels, seen, n_test_seen)
    m = {"att": att, "original_att": att * 100, **{k: col(v) for k, v in locs.items()}}
    for k, v in (extra_locs or {}).items():
        m[k] = col(v)
    if names:
        m["allclasses_names"] = cell(names)
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.savemat(str(path), m)
    return locs


def class_lists(folder: Path, names: list[str], seen: set[int], val: set[int]) -> None:
    d = folder / "xlsa17_classes"
    d.mkdir(parents=True, exist_ok=True)
    write = lambda f, cs: (d / f).write_text("".join(f"{names[c]}\n" for c in sorted(cs)))  # noqa: E731
    write("trainvalclasses.txt", seen)
    write("testclasses.txt", set(range(len(names))) - seen)
    write("valclasses1.txt", val)
    write("trainclasses1.txt", seen - val)


@dataclass
class Root:
    root: Path                      # the data root (holds CUB/, FLO/ ...)
    paths: dict[int, Path]          # xlsa17 index → image file, for the images written
    labels: np.ndarray              # xlsa17 class of every index
    locs: dict[str, np.ndarray]
    names: list[str]
    present: list[int]              # xlsa17 classes with images, xlsa17 order
    info: dict = field(default_factory=dict)

    def split_of(self, index: int) -> str:
        return next(k for k, v in self.locs.items() if index in set(v.tolist()))


# ---------------------------------------------------------------- CUB (full metadata, partial images)
def make_cub(root: Path, present_ids=(1, 2, 3, 4, 5, 6), shared_layout: bool = False,
             per_small: int = 5) -> Root:
    n_cls = 200  # counts as the real xlsa17 file: 2967 unseen images, 8821 seen, 1764 of them test_seen
    unseen_ids = {2, 5} | set(range(151, 199))
    big_unseen = iter(spread(2967 - 2 * per_small, 48))
    big_seen = iter(spread(8821 - 4 * per_small, 146))
    sizes = [per_small if i <= 6 else next(big_unseen) if i in unseen_ids else next(big_seen)
             for i in range(1, n_cls + 1)]
    cls_of_id = np.repeat(np.arange(1, n_cls + 1), sizes)           # CUB class id (1-based) per image id
    cub_names = [f"{i:03d}.Bird_{i}" for i in range(1, n_cls + 1)]
    # xlsa17 order differs from id order (as in the real file): swap neighbours
    order = [cub_names[i ^ 1] for i in range(n_cls)]
    pos = {n: i for i, n in enumerate(order)}
    labels = np.array([pos[cub_names[c - 1]] for c in cls_of_id])
    seen = {pos[cub_names[i - 1]] for i in range(1, n_cls + 1) if i not in unseen_ids}
    folder = root / "CUB"
    meta = folder / "CUB_200_2011"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "classes.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(cub_names, 1)))
    (meta / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(cls_of_id, 1)))
    rel = [f"{cub_names[c - 1]}/Bird_{i:05d}.jpg" for i, c in enumerate(cls_of_id, 1)]
    listing = "".join(f"{i} {r}\n" for i, r in enumerate(rel, 1))
    if shared_layout:  # ../shared/data style: a partial list and CUB/images/
        n_list = int(np.searchsorted(cls_of_id, 51))
        (meta / "images_classes001-050.txt").write_text("".join(listing.splitlines(True)[:n_list]))
        image_dir = folder / "images"
    else:
        (meta / "images.txt").write_text(listing)
        image_dir = meta / "images"
    paths = {}
    for i, c in enumerate(cls_of_id, 1):
        if c in present_ids:
            paths[i - 1] = jpeg(image_dir / rel[i - 1], seed=i)
    val = {pos[cub_names[i - 1]] for i in (3, 4, 40, 41)}
    locs = write_split(folder / "att_splits.mat", labels, seen, n_cls, 312, order, n_test_seen=1764)
    class_lists(folder, order, seen, val)
    present = sorted({pos[cub_names[c - 1]] for c in present_ids})
    return Root(root, paths, labels, locs, order, present, {"seen": seen, "val": val, "image_dir": image_dir})


# ---------------------------------------------------------------- FLO (full metadata, partial images)
def make_flo(root: Path, present_labels=(1, 2, 41, 42), flat: bool = False, swap_sets: bool = False) -> Root:
    n_images, n_cls = 8189, 102  # counts as the real file: labels 1-20 unseen (1155 images)
    small = {1: 4, 2: 4, 41: 6, 42: 6}
    big_unseen = iter(spread(1155 - 8, 18))
    big_seen = iter(spread(n_images - 1155 - 12, 80))
    sizes = {c: small.get(c) or (next(big_unseen) if c <= 20 else next(big_seen)) for c in range(1, n_cls + 1)}
    rng = np.random.default_rng(7)
    image_labels = rng.permutation(np.repeat(np.arange(1, n_cls + 1), [sizes[c] for c in range(1, n_cls + 1)]))
    numbers = rng.permutation(np.arange(1, n_images + 1))
    trnid, valid, tstid = numbers[:1020], numbers[1020:2040], numbers[2040:]
    folder = root / "FLO"
    mats = folder / "oxford102"
    mats.mkdir(parents=True, exist_ok=True)
    sio.savemat(str(mats / "imagelabels.mat"), {"labels": image_labels.reshape(1, -1).astype(np.uint8)})
    sets = (tstid, valid, trnid) if swap_sets else (trnid, valid, tstid)
    sio.savemat(str(mats / "setid.mat"), {k: v.reshape(1, -1).astype(np.uint16)
                                          for k, v in zip(("trnid", "valid", "tstid"), sets)})
    order = np.concatenate([trnid, valid, tstid])
    labels = image_labels[order - 1] - 1                       # xlsa17 class per index
    seen = set(range(20, n_cls))
    extra = {"train_loc": np.nonzero(labels >= 40)[0], "val_loc": np.nonzero((labels >= 20) & (labels < 40))[0]}
    locs = write_split(folder / "att_splits.mat", labels, seen, n_cls, 1024, None, extra, n_test_seen=1403)
    paths = {}
    for idx, number in enumerate(order):
        lab = int(image_labels[number - 1])
        if lab in present_labels:
            name = f"image_{number:05d}.jpg"
            p = folder / "jpg" / name if flat else folder / "images" / f"{lab:03d}" / name
            paths[idx] = jpeg(p, seed=int(number))
    return Root(root, paths, labels, locs, [], sorted(c - 1 for c in present_labels), {"seen": seen})


# ---------------------------------------------------------------- tiny complete roots (AwA2, SUN, APY)
def tiny_spec(name: str, folder: str, labels: np.ndarray, locs: dict, n_seen: int, n_cls: int,
              att_dim: int) -> DatasetSpec:
    return DatasetSpec(name, folder, "att_splits.mat", len(labels), len(locs["trainval_loc"]),
                       len(locs["test_seen_loc"]), len(locs["test_unseen_loc"]), n_seen, n_cls - n_seen, att_dim,
                       f"tiny {name} fixture")


def _folders_root(root: Path, folder: str, names: list[str], rel_dir, seen: set[int], per_class: int = 3,
                  split_order: list[str] | None = None) -> tuple[Root, DatasetSpec]:
    """Class-folder layout; ``split_order`` builds the split file for another class order (misaligned)."""
    paths, labels = {}, []
    idx = 0
    for c, n in enumerate(names):
        for k in range(per_class):
            paths[idx] = jpeg(rel_dir(n) / f"{n.replace('/', '_')}_{k:04d}.jpg", seed=1000 * c + k)
            labels.append(c)
            idx += 1
    labels = np.array(labels)
    split_labels = labels
    if split_order is not None:  # the split file was made for a different class order
        split_labels = np.repeat([names.index(n) for n in split_order], per_class)
    locs = write_split(root / folder / "att_splits.mat", split_labels, seen, len(names), 16, names)
    class_lists(root / folder, names, seen, {sorted(seen)[0]})
    spec = tiny_spec(folder.lower(), folder, labels, locs, len(seen), len(names), 16)
    return Root(root, paths, labels, locs, names, list(range(len(names)))), spec


AWA_NAMES = ["antelope", "grizzly+bear", "killer+whale", "beaver", "dalmatian"]


def make_awa2(root: Path, split_order: list[str] | None = None) -> tuple[Root, DatasetSpec]:
    return _folders_root(root, "AWA2", AWA_NAMES, lambda n: root / "AWA2" / "JPEGImages" / n, {0, 2, 3},
                         split_order=split_order)


SUN_NAMES = ["abbey", "airport_airport", "bakery_shop", "zoo"]


def make_sun(root: Path) -> tuple[Root, DatasetSpec]:
    def rel_dir(n: str) -> Path:
        first, _, rest = n.partition("_")
        sub = Path(first) / rest if n == "airport_airport" else Path(n)  # nested class folder
        return root / "SUN" / "images" / n[0] / sub
    return _folders_root(root, "SUN", SUN_NAMES, rel_dir, {0, 1, 3})


APY_NAMES = ["aeroplane", "bird", "cat", "donkey", "monkey"]   # pascal: 0-2 (seen), yahoo: 3-4 (unseen)


def make_apy(root: Path) -> tuple[Root, DatasetSpec]:
    folder = root / "APY"
    ann = folder / "attribute_data"
    ann.mkdir(parents=True, exist_ok=True)
    pascal, yahoo = folder / "VOCdevkit" / "VOC2008" / "JPEGImages", folder / "ayahoo_test_images"
    rows = {"apascal_train.txt": [], "apascal_test.txt": [], "ayahoo_test.txt": []}
    # (file, class, box): two objects share one pascal image
    objs = [("apascal_train.txt", "2008_000001.jpg", 0, (2, 2, 30, 20)), ("apascal_train.txt", "2008_000001.jpg", 1,
            (10, 5, 38, 30)), ("apascal_train.txt", "2008_000002.jpg", 2, (0, 0, 20, 20)),
            ("apascal_train.txt", "2008_000003.jpg", 0, (5, 5, 25, 25)), ("apascal_train.txt", "2008_000004.jpg",
            1, (1, 1, 39, 31)), ("apascal_test.txt", "2008_000005.jpg", 2, (3, 3, 33, 29)),
            ("apascal_test.txt", "2008_000006.jpg", 0, (0, 0, 40, 32)), ("apascal_test.txt", "2008_000007.jpg", 1,
            (4, 4, 20, 28)), ("apascal_test.txt", "2008_000008.jpg", 2, (6, 2, 36, 30)),
            ("ayahoo_test.txt", "donkey_1.jpg", 3, (0, 0, 30, 30)), ("ayahoo_test.txt", "donkey_2.jpg", 3,
            (2, 2, 38, 30)), ("ayahoo_test.txt", "monkey_1.jpg", 4, (1, 1, 35, 31)),
            ("ayahoo_test.txt", "monkey_2.jpg", 4, (0, 3, 39, 29))]
    paths, labels, boxes = {}, [], []
    for i, (f, img, c, box) in enumerate(objs):
        p = (yahoo if f.startswith("ayahoo") else pascal) / img
        if not p.exists():
            jpeg(p, seed=hash(img) % 10_000)
        paths[i] = p
        labels.append(c)
        boxes.append(box)
        rows[f].append(f"{img} {APY_NAMES[c]} {' '.join(map(str, box))} " + " ".join(["0"] * 64))
    for f, lines in rows.items():
        (ann / f).write_text("\n".join(lines) + "\n")
    labels = np.array(labels)
    seen = {0, 1, 2}
    locs = write_split(folder / "att_splits.mat", labels, seen, len(APY_NAMES), 64, APY_NAMES)
    spec = tiny_spec("apy", "APY", labels, locs, 3, len(APY_NAMES), 64)
    return Root(root, paths, labels, locs, APY_NAMES, list(range(5)), {"boxes": boxes}), spec
