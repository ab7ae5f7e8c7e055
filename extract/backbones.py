"""Backbone registry over timm: the seed study's models by timm name, plus any other timm name.

Nothing is re-implemented: a backbone is ``timm.create_model(name, num_classes=...)``,
its features are the pooled pre-logits (``forward_features`` then
``forward_head(pre_logits=True)``: the CLS token for ViT, the pooled map for ConvNeXt /
Swin / EfficientNet) and its image transform comes from timm's
``resolve_data_config`` + ``create_transform``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import timm
import torch
from timm.data import create_transform, resolve_data_config

from zsgm.core.errors import ZsgmError

# Models are always built with random weights here; checkpoints are found (or downloaded, unless
# offline) by extract.weights, which alone talks to a hub.


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
    BackboneEntry("vit_base_patch16_224", "ViT-B/16, 224, ImageNet-1k (augreg_in1k)"),
    BackboneEntry("vit_base_patch32_224", "ViT-B/32, 224, ImageNet-1k (augreg_in1k)"),
    BackboneEntry("vit_large_patch16_224", "ViT-L/16, 224, ImageNet-21k fine-tuned on 1k (augreg_in21k_ft_in1k): "
                                           "timm has no 1k-only ViT-L/16"),
    BackboneEntry("swin_tiny_patch4_window7_224", "Swin-T, 224, ImageNet-1k (ms_in1k)"),
    BackboneEntry("swin_small_patch4_window7_224", "Swin-S, 224, ImageNet-1k (ms_in1k)"),
    BackboneEntry("swin_base_patch4_window7_224", "Swin-B, 224, ImageNet-1k (ms_in1k)"),
    BackboneEntry("swin_base_patch4_window12_384", "Swin-B, 384, ImageNet-1k (ms_in1k)"),
    BackboneEntry("tf_efficientnet_lite0", "EfficientNet-Lite0; real ImageNet weights ship in the `lite` extra"),
]}


@dataclass(frozen=True)
class StudyTag:
    """The pretrained tag an untagged study backbone means, and what it was trained on."""
    tag: str
    pretraining: str       # e.g. "ImageNet-1k"
    note: str = ""         # where the tag departs from the study, said plainly


# The study used ImageNet-1k weights. timm's default tag is often another (ViT-B: in21k
# fine-tuned on 1k; ConvNeXt: in12k fine-tuned), so an untagged study name means the tag here.
# The seed's ConvNeXt "1k_224_ema" checkpoints are FB's ImageNet-1k ones: timm tag fb_in1k.
# ViT-L/16 has no ImageNet-1k-only weights in timm: it uses in21k pretraining + 1k fine-tuning.
STUDY_TAGS: dict[str, StudyTag] = {
    **{f"convnext_{s}": StudyTag("fb_in1k", "ImageNet-1k") for s in ("tiny", "small", "base", "large")},
    "vit_base_patch16_224": StudyTag("augreg_in1k", "ImageNet-1k"),
    "vit_base_patch32_224": StudyTag("augreg_in1k", "ImageNet-1k"),
    "vit_large_patch16_224": StudyTag("augreg_in21k_ft_in1k", "ImageNet-21k, fine-tuned on ImageNet-1k",
                                      "timm has no ImageNet-1k-only ViT-L/16 weights; this row is not 1k-only"),
    **{a: StudyTag("ms_in1k", "ImageNet-1k") for a in (
        "swin_tiny_patch4_window7_224", "swin_small_patch4_window7_224",
        "swin_base_patch4_window7_224", "swin_base_patch4_window12_384")},
}
SEED_TAGS = {arch: t.tag for arch, t in STUDY_TAGS.items()}  # arch -> tag (the older name)


def split_name(name: str) -> tuple[str, str | None]:
    """``convnext_tiny.fb_in1k`` → (``convnext_tiny``, ``fb_in1k``)."""
    arch, _, tag = name.partition(".")
    return arch, (tag or None)


def check_name(name: str) -> str:
    """The timm architecture of ``name``, or a ZsgmError listing close names."""
    arch, _ = split_name(name)
    if not timm.is_model(arch):
        from zsgm.core.errors import unknown_name_error

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


def resolved_tag(name: str) -> str | None:
    """The tag ``name`` stands for: its own, the study's for an untagged study backbone, else timm's default."""
    arch, tag = split_name(name)
    if tag or arch in SEED_TAGS:
        return tag or SEED_TAGS[arch]
    cfg = timm.models.get_pretrained_cfg(arch)
    return (cfg.tag or None) if cfg is not None else None


def tagged_name(name: str) -> str:
    """``vit_base_patch16_224`` → ``vit_base_patch16_224.augreg_in1k`` (unchanged where timm has no tag)."""
    arch, _ = split_name(name)
    tag = resolved_tag(name)
    return f"{arch}.{tag}" if tag else arch


def tag_note(name: str) -> str:
    """What the tag of ``name`` was trained on, with the study's caveat where there is one."""
    arch, tag = split_name(name)
    st = STUDY_TAGS.get(arch)
    if st is not None and (tag is None or tag == st.tag):
        return st.pretraining + (f" ({st.note})" if st.note else "")
    return ""


def pretrained_cfg(name: str) -> dict:
    """timm's pretrained cfg for ``name`` (its tag, the seed's, or timm's default): mean/std, input size."""
    arch, tag = split_name(name)
    check_name(arch)
    tag = tag or SEED_TAGS.get(arch)
    try:
        cfg = timm.models.get_pretrained_cfg(f"{arch}.{tag}" if tag else arch)
    except RuntimeError:  # timm: "Invalid pretrained tag"
        cfg = None
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
    return {"name": name, "tag": resolved_tag(name) or "", "feature_dim": feature_dim(model),
            "input_size": tuple(cfg.get("input_size", (3, 224, 224))),
            "mean": tuple(cfg.get("mean", ())), "std": tuple(cfg.get("std", ())),
            "interpolation": cfg.get("interpolation", "")}
