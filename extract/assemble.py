"""Extracted features + a raw root's records → a FeatureSet of the classes present.

A partial root gives the classes it holds, in xlsa17 order, with labels 0..k-1, their
attribute rows, their split membership (0-based positions in the subset), the original
xlsa17 index of every image (``xlsa17_index``) and the validation classes among them.
"""
from __future__ import annotations

import json

import numpy as np
import torch

from zsgm.extract.featureset import FeatureSet
from zsgm.extract.layouts.base import RawDataset

LOCS = ("trainval_loc", "test_seen_loc", "test_unseen_loc", "train_loc", "val_loc")


def build(raw: RawDataset, features: torch.Tensor, keep: torch.Tensor, meta: dict[str, str],
          dtype: torch.dtype = torch.float16) -> FeatureSet:
    """``keep`` [N] bool marks the records whose features are valid (bad images are dropped)."""
    pos = torch.nonzero(keep).ravel().tolist()
    recs = [raw.records[i] for i in pos]
    files = raw.image_files()
    classes = sorted({r.cls for r in recs})
    remap = {c: j for j, c in enumerate(classes)}
    index = np.array([r.index for r in recs], dtype=np.int64)
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a))  # noqa: E731
    locs = {k: t(np.nonzero(np.isin(index, raw.split.locs[k]))[0].astype(np.int64))
            for k in LOCS if k in raw.split.locs}
    extra = {k: locs[k] for k in ("train_loc", "val_loc") if k in locs and len(locs[k])}  # none: absent
    extra["xlsa17_index"] = t(index)
    if raw.split.original_att is not None:
        extra["original_att"] = t(raw.split.original_att.T[classes])
    if raw.val_classes is not None:
        val = [remap[int(c)] for c in raw.val_classes if int(c) in remap]
        if val:
            extra["val_classes"] = torch.tensor(sorted(val), dtype=torch.long)
    meta = dict(meta)
    meta.update({"n_classes_total": str(raw.split.n_classes), "n_classes": str(len(classes)),
                 "partial": json.dumps(len(classes) < raw.split.n_classes),
                 "xlsa17_classes": json.dumps(classes)})
    fs = FeatureSet(
        features=features[pos].to(dtype).contiguous(),
        labels=torch.tensor([remap[r.cls] for r in recs], dtype=torch.long),
        attributes=t(raw.split.att.T[classes].astype(np.float32)),
        trainval_loc=locs["trainval_loc"], test_seen_loc=locs["test_seen_loc"],
        test_unseen_loc=locs["test_unseen_loc"], extra=extra,
        class_names=[raw.class_names[c] for c in classes],
        image_files=[files[i] for i in pos], meta=meta)
    fs.validate(f"features of {raw.folder}")
    return fs
