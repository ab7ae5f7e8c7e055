"""Planted GZSL problems: features made by a fixed random non-linear map of real class
attributes plus noise, so that unseen classes are learnable from their attributes alone.
Used by tests (learning outcomes with known headroom) and benchmarks (CUB-sized timing).

``PLANTED_HP`` is the families' tuning for short runs on these problems: tests pass it as
overrides (``generator_defaults(name, **planted_hp(name))``, ``RunConfig(hp=...)``); it is not
a real run's default (those are the YAML layers', pipelines/configs/models/).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from zsgm.core.project import shared_data_root
from zsgm.extract.featureset import FeatureSet

# Tuned on the planted problem (tests/test_families.py: 30 epochs, hidden 256, lr 1e-3; synthetic, no
# benchmark test data), for the families that the seed study's defaults leave untrained there.
_SHORT_GAN = {
    "lr": 1.0e-3,
    "latent_dim": 16,     # a small noise vector: the generator must read the attributes
    "cls_weight": 1.0,    # stronger classification regulariser (short runs learn class structure)
    "critic_iters": 1,
}
PLANTED_HP: dict[str, dict] = {
    # a small code forces the decoder to read the attributes (tuned on planted validation classes)
    "ae": {"lr": 1.0e-3, "latent_dim": 8},
    # a slower critic keeps the penalised discriminator from saturating
    "dragan": {**_SHORT_GAN, "lr_critic": 1.0e-4},
    # the ½tanh critic saturates (no generator gradient) at the generator's lr
    "fgan_total_variation": {**_SHORT_GAN, "lr_critic": 1.0e-4},
    **{name: dict(_SHORT_GAN) for name in (
        "fgan_forward_kl", "fgan_hellinger", "fgan_jensen_shannon", "fgan_pearson", "fgan_reverse_kl",
        "fisher", "info", "lsgan", "mmgan", "nsgan", "ransgan")},
}


def planted_hp(model: str) -> dict:
    """``model``'s overrides for short runs on a planted problem (empty where its defaults learn it)."""
    return dict(PLANTED_HP.get(model, {}))


def cub_attributes(root: Path | None = None) -> tuple[torch.Tensor, list[str]] | None:
    """The real CUB class attributes [200, 312] and class names, when the data is present."""
    root = root or shared_data_root()
    path = root / "CUB" / "att_splits.mat" if root else None
    if path is None or not path.is_file():
        return None
    from zsgm.extract.xlsa17 import read_split_file

    split = read_split_file(path)
    return torch.from_numpy(split.att.T.astype(np.float32)), split.class_names


def planted_featureset(attributes: torch.Tensor | None = None, n_classes: int = 50, n_unseen: int = 10,
                       n_val: int = 8, n_per_class: int = 30, feature_dim: int = 128, noise: float = 0.35,
                       test_fraction: float = 0.2, seed: int = 0, class_names: list[str] | None = None,
                       counts: tuple[int, int, int] | None = None) -> FeatureSet:
    """A GZSL FeatureSet whose features follow x = relu(W2·tanh(W1·a)) + noise.

    ``attributes`` default to the real CUB attributes when present (else random ones);
    the first ``n_classes`` classes of a seeded permutation are used; ``n_unseen`` of them
    are unseen and ``n_val`` of the seen ones are validation classes. ``counts`` =
    (trainval, test_seen, test_unseen) fixes the split sizes exactly (CUB-sized sets).
    """
    g = torch.Generator().manual_seed(seed)
    if attributes is None:
        real = cub_attributes()
        if real is not None:
            attributes, class_names = real
        else:
            attributes = torch.rand(200, 312, generator=g)
    attributes = attributes.float()
    pick = torch.randperm(attributes.shape[0], generator=g)[:n_classes]
    att = attributes[pick]
    names = [class_names[i] for i in pick.tolist()] if class_names else [f"class_{i}" for i in range(n_classes)]
    a_dim = att.shape[1]
    hidden = 2 * feature_dim
    w1 = torch.randn(a_dim, hidden, generator=g) / a_dim ** 0.5
    w2 = torch.randn(hidden, feature_dim, generator=g) / hidden ** 0.5
    a_std = (att - att.mean(0)) / att.std(0).clamp_min(1e-6)
    centres = torch.relu(torch.tanh(a_std @ w1 * 2.0) @ w2 * 3.0)
    unseen = torch.arange(n_classes - n_unseen, n_classes)
    if counts is None:
        per_class = torch.full((n_classes,), n_per_class)
    else:
        per_class = _spread(counts, n_classes, n_unseen, test_fraction)
    labels = torch.repeat_interleave(torch.arange(n_classes), per_class)
    feats = centres[labels] + noise * centres.std() * torch.randn(len(labels), feature_dim, generator=g)
    feats = feats.clamp_min(0)
    trainval, test_seen, test_unseen = [], [], []
    start = 0
    for c in range(n_classes):
        idx = torch.arange(start, start + int(per_class[c]))
        start += int(per_class[c])
        if c >= n_classes - n_unseen:
            test_unseen.append(idx)
            continue
        k = int(round(test_fraction * len(idx))) if counts is None else _test_seen_count(c, counts, n_classes - n_unseen)
        test_seen.append(idx[:k])
        trainval.append(idx[k:])
    val_classes = torch.arange(n_classes - n_unseen - n_val, n_classes - n_unseen) if n_val else None
    extra = {"val_classes": val_classes} if val_classes is not None else {}
    fs = FeatureSet(features=feats, labels=labels, attributes=att, trainval_loc=torch.cat(trainval),
                    test_seen_loc=torch.cat(test_seen), test_unseen_loc=torch.cat(test_unseen), extra=extra,
                    class_names=names, image_files=[], meta={"dataset": "planted", "backbone": "planted",
                                                              "pretrained": "planted", "planted_seed": str(seed)})
    fs.validate("planted")
    assert len(unseen) == n_unseen
    return fs


def _spread(counts, n_classes, n_unseen, test_fraction) -> torch.Tensor:
    """Images per class so that trainval + test_seen and test_unseen totals match ``counts``."""
    n_seen = n_classes - n_unseen
    seen_total, unseen_total = counts[0] + counts[1], counts[2]
    per = torch.zeros(n_classes, dtype=torch.long)
    per[:n_seen] = seen_total // n_seen
    per[: seen_total % n_seen] += 1
    per[n_seen:] = unseen_total // n_unseen
    per[n_seen: n_seen + unseen_total % n_unseen] += 1
    return per


def _test_seen_count(c: int, counts, n_seen: int) -> int:
    base, rest = divmod(counts[1], n_seen)
    return base + (1 if c < rest else 0)
