"""The staged CUB-50 FeatureSet with CUB's sentence attributes (``cub_sent``) instead of its 312 attributes.

The held-out benchmark the quality suite will be checked on next (FLO) describes its classes by
1024-d sentence embeddings, not by hand-made attributes; the staged images do not cover 50 CUB
classes, so this re-labels the staged features instead of extracting them again: the same
2889 images and features, the 50 classes' columns of ``sent_splits.mat``'s ``att`` (xlsa17 order,
through the FeatureSet's ``xlsa17_classes``), and the validation classes ``cub_sent`` defines
(the classes of its ``val_loc`` images inside trainval, read through CUB's image labels):

    python lab/experiments/sentence_featureset.py /tmp/cub50_sent_lite0.safetensors
    zsgm quality --features /tmp/cub50_sent_lite0.safetensors --jobs 2
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


from zsgm.extract.featureset import FeatureSet  # noqa: E402
from zsgm.core.project import shared_data_root  # noqa: E402
from zsgm.extract.xlsa17 import read_split_file, validation_classes  # noqa: E402


def image_labels(cub: Path, class_names: list[str]) -> np.ndarray:
    """0-based xlsa17 class of every CUB image (xlsa17 index i = CUB image id i + 1)."""
    names = dict(line.split() for line in (cub / "CUB_200_2011" / "classes.txt").read_text().splitlines() if line)
    index = {n: i for i, n in enumerate(class_names)}
    rows = [line.split() for line in (cub / "CUB_200_2011" / "image_class_labels.txt").read_text().splitlines() if line]
    return np.array([index[names[c]] for _, c in sorted(rows, key=lambda r: int(r[0]))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    root = shared_data_root()
    src = FeatureSet.load(root / "features" / "cub50_lite0.safetensors", mmap_features=False)
    split = read_split_file(root / "CUB" / "sent_splits.mat")
    cols = json.loads(src.meta["xlsa17_classes"])
    assert [split.class_names[c] for c in cols] == list(src.class_names), "class order differs"
    val_all = validation_classes(split, image_labels(root / "CUB", split.class_names))
    local = {c: i for i, c in enumerate(cols)}
    val = sorted(local[c] for c in val_all.tolist() if c in local)
    fs = FeatureSet(src.features, src.labels, torch.tensor(split.att[:, cols].T, dtype=torch.float32),
                    src.trainval_loc, src.test_seen_loc, src.test_unseen_loc,
                    extra={"val_classes": torch.tensor(val), "xlsa17_index": src.extra["xlsa17_index"]},
                    class_names=list(src.class_names),
                    meta={**src.meta, "dataset": "cub_sent", "attributes": "sent_splits.mat att (1024-d)"})
    fs.save(a.out)
    print(f"{a.out}: {fs.n_classes} classes, attributes {tuple(fs.attributes.shape)}, "
          f"validation classes {[src.class_names[i] for i in val]}")


if __name__ == "__main__":
    main()
