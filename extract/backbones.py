"""Backbone registry over timm: the seed study's models by timm name, plus any other timm name.

Nothing is re-implemented: a backbone is ``timm.create_model(name, num_classes=...)``,
its features are the pooled pre-logits (``forward_features`` then
``forward_head(pre_logits=True)``: the CLS token for ViT, the pooled map for ConvNeXt /
Swin / EfficientNet) and its image transform comes from timm's
``resolve_data_config`` + ``create_transform``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from extract.common import ZsgmError

# Never reach a hub: weights come from weights/, the hub cache or a package (extract.weights).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import timm  # noqa: E402  (after HF_HUB_OFFLINE so that timm's hub client sees it)
from timm.data import create_transform, resolve_data_config  # noqa: E402


@dataclass(frozen=True)
class BackboneEntry:
    name: str          # timm model name, optionally name.tag
    note: str


# The backbones of the seed study ("1k_224_ema" ConvNeXt = timm's in1k tags at 224 px).
SEED_BACKBONES: dict[str, BackboneEntry] = {e.name: e for e in [
    BackboneEntry("convnext_tiny", "ConvNeXt-T, ImageNet-1k 224 (seed: convnext_tiny_1k_224_ema)"),
    BackboneEntry("convnext_small", "ConvNeXt-S, ImageNet-1k 224 (seed: convnext_small_1k_224_ema)"),
    BackboneEntry("convnext_base", "ConvNeXt-B, ImageNet-1k 224 (seed: convnext_base_1k_224_ema)"),
    BackboneEntry("convnext_large", "ConvNeXt-L, ImageNet-1k 224 (seed: convnext_large_1k_224_ema)"),
    BackboneEntry("vit_base_patch16_224", "ViT-B/16, 224"),
    BackboneEntry("vit_base_patch32_224", "ViT-B/32, 224"),
    BackboneEntry("vit_large_patch16_224", "ViT-L/16, 224"),
    BackboneEntry("swin_tiny_patch4_window7_224", "Swin-T, 224"),
    BackboneEntry("swin_small_patch4_window7_224", "Swin-S, 224"),
    BackboneEntry("swin_base_patch4_window7_224", "Swin-B, 224"),
    BackboneEntry("swin_base_patch4_window12_384", "Swin-B, 384"),
    BackboneEntry("tf_efficientnet_lite0", "EfficientNet-Lite0; real ImageNet weights ship in the `lite` extra"),
]}


# The seed's ConvNeXt "1k_224_ema" checkpoints are FB's ImageNet-1k ones: timm tag fb_in1k. An
# untagged seed name means that tag (timm's own default for ConvNeXt is in12k_ft_in1k).
SEED_TAGS = {f"convnext_{s}": "fb_in1k" for s in ("tiny", "small", "base", "large")}


def split_name(name: str) -> tuple[str, str | None]:
    """``convnext_tiny.fb_in1k`` → (``convnext_tiny``, ``fb_in1k``)."""
    arch, _, tag = name.partition(".")
    return arch, (tag or None)


def check_name(name: str) -> str:
    """The timm architecture of ``name``, or a ZsgmError listing close names."""
    arch, _ = split_name(name)
    if not timm.is_model(arch):
        from extract.common import unknown_name_error

        raise unknown_name_error("backbone (timm model)", arch, timm.list_models(f"*{arch[:4]}*") or SEED_BACKBONES)
    return arch


def create(name: str, num_classes: int = 0, img_size: int | None = None, **kwargs) -> torch.nn.Module:
    """A randomly initialised timm model; weights are loaded by ``extract.weights``."""
    arch = check_name(name)
    if img_size is not None:
        try:  # transformers take their input size at build time; convnets take any size
            return timm.create_model(arch, pretrained=False, num_classes=num_classes, img_size=img_size, **kwargs)
        except TypeError:
            pass
    return timm.create_model(arch, pretrained=False, num_classes=num_classes, **kwargs)


def pretrained_cfg(name: str) -> dict:
    """timm's pretrained cfg for ``name`` (its tag, the seed's, or timm's default): mean/std, input size."""
    arch, tag = split_name(name)
    check_name(arch)
    tag = tag or SEED_TAGS.get(arch)
    cfg = timm.models.get_pretrained_cfg(f"{arch}.{tag}" if tag else arch)
    if cfg is None:
        if tag:
            tags = [t.split(".", 1)[1] for t in timm.list_pretrained(f"{arch}.*")]
            raise ZsgmError(f"timm has no pretrained tag '{tag}' for {arch}; known tags: {', '.join(tags) or 'none'}")
        return {}
    return cfg.to_dict()


def data_config(model: torch.nn.Module, name: str | None = None, img_size: int | None = None) -> dict:
    """resolve_data_config from the model's (or the named tag's) pretrained cfg."""
    args = {}
    if name is not None:
        args.update({k: v for k, v in pretrained_cfg(name).items()
                     if k in ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")})
    if img_size is not None:
        args["input_size"] = (3, img_size, img_size)
    return resolve_data_config(args, model=model)


def eval_transform(cfg: dict) -> Callable:
    return create_transform(**cfg, is_training=False)


def train_transform(cfg: dict) -> Callable:
    return create_transform(**cfg, is_training=True)


def pooled_features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pooled pre-logits: what GZSL papers call the backbone's image feature."""
    return model.forward_head(model.forward_features(x), pre_logits=True)


def feature_dim(model: torch.nn.Module) -> int:
    return int(model.num_features if not hasattr(model, "head_hidden_size") or model.head_hidden_size is None
               else model.head_hidden_size)


def describe(name: str) -> dict:
    """Feature size and input size without building weights-heavy models twice."""
    arch = check_name(name)
    cfg = pretrained_cfg(name)
    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False, num_classes=0)
    return {"name": name, "feature_dim": feature_dim(model),
            "input_size": tuple(cfg.get("input_size", (3, 224, 224))),
            "mean": tuple(cfg.get("mean", ())), "std": tuple(cfg.get("std", ())),
            "interpolation": cfg.get("interpolation", "")}
