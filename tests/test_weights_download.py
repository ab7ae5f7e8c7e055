"""Weights: study tags, the download path (hub call replaced by a local file), offline refusal, `zsgm weights`."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from zsgm.extract import backbones, weights
from zsgm.core.errors import ZsgmError
from zsgm.pipelines.cli import main


def test_study_tags_follow_the_study():
    """ViT-B and Swin default to ImageNet-1k weights; ViT-L/16 says it is not 1k-only."""
    assert backbones.tagged_name("vit_base_patch16_224") == "vit_base_patch16_224.augreg_in1k"
    assert backbones.tagged_name("vit_base_patch32_224") == "vit_base_patch32_224.augreg_in1k"
    for arch in ("swin_tiny_patch4_window7_224", "swin_small_patch4_window7_224",
                 "swin_base_patch4_window7_224", "swin_base_patch4_window12_384"):
        assert backbones.tagged_name(arch) == f"{arch}.ms_in1k"
        assert backbones.pretrained_cfg(arch)["hf_hub_id"] == f"timm/{arch}.ms_in1k"
    assert backbones.tagged_name("convnext_tiny") == "convnext_tiny.fb_in1k"
    assert backbones.tagged_name("vit_large_patch16_224") == "vit_large_patch16_224.augreg_in21k_ft_in1k"
    assert "no ImageNet-1k-only" in backbones.tag_note("vit_large_patch16_224")
    assert backbones.tag_note("vit_base_patch16_224") == "ImageNet-1k"
    # an explicit tag wins, and a non-study backbone keeps timm's own default
    assert backbones.tagged_name("vit_base_patch16_224.augreg2_in21k_ft_in1k").endswith("augreg2_in21k_ft_in1k")
    assert backbones.tagged_name("resnet10t") == "resnet10t." + backbones.pretrained_cfg("resnet10t")["tag"]
    # the tag decides the transform: augreg_in1k uses mean/std 0.5, as timm's cfg says
    assert backbones.describe("vit_base_patch16_224")["mean"] == (0.5, 0.5, 0.5)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """timm's hub replaced by a local folder: records each call, returns a real checkpoint file."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("ZSGM_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(weights, "_hub_cache", lambda name: None)  # an empty hub cache
    src = backbones.create("resnet10t", num_classes=1000)
    calls: list[tuple[str, str]] = []

    def hub_download(repo_id: str, filename: str) -> Path:
        calls.append((repo_id, filename))
        out = tmp_path / "hub" / repo_id / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(out))
        return out

    def url_download(url: str) -> Path:
        raise AssertionError(f"no URL download expected, got {url}")

    monkeypatch.setattr(weights, "_hub_download", hub_download)
    monkeypatch.setattr(weights, "_url_download", url_download)
    return src, calls


def test_missing_weights_are_downloaded_when_online(fake_hub):
    src, calls = fake_hub
    w = weights.resolve("resnet10t")
    tag = backbones.pretrained_cfg("resnet10t")["tag"]
    assert w.source == "download" and w.tag == tag and w.tagged == f"resnet10t.{tag}"
    assert calls == [(f"timm/resnet10t.{tag}", "model.safetensors")]
    dst = weights.load_into(backbones.create("resnet10t", num_classes=0), w)
    assert torch.equal(dst.conv1[0].weight, src.conv1[0].weight)


def test_download_falls_back_to_pytorch_model_bin(fake_hub, monkeypatch):
    _, calls = fake_hub
    inner = weights._hub_download

    class EntryNotFoundError(Exception):
        pass

    def only_bin(repo_id, filename):
        if filename == "model.safetensors":
            calls.append((repo_id, filename))
            raise EntryNotFoundError(filename)
        return inner(repo_id, filename)

    monkeypatch.setattr(weights, "_hub_download", only_bin)
    assert weights.resolve("resnet10t").path.name == "pytorch_model.bin"
    assert [c[1] for c in calls] == ["model.safetensors", "pytorch_model.bin"]


def test_a_failed_download_says_what_to_do(fake_hub, monkeypatch):
    def broken(repo_id, filename):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(weights, "_hub_download", broken)
    with pytest.raises(ZsgmError, match=r"could not download .*resnet10t.*ConnectionError.*zsgm weights fetch"):
        weights.resolve("resnet10t")


def test_offline_never_downloads(fake_hub, monkeypatch):
    _, calls = fake_hub
    with pytest.raises(ZsgmError, match=r"offline .*weights/resnet10t\.safetensors"):
        weights.resolve("resnet10t", offline_flag=True)  # --offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ZsgmError, match="offline"):
        weights.resolve("resnet10t")
    assert calls == []


def test_other_tag_file_is_a_last_resort(fake_hub, tmp_path, monkeypatch):
    """A local file of another tag is used offline (with its tag), but online the default tag is fetched."""
    src, calls = fake_hub
    other = tmp_path / "weights" / "resnet10t.other_tag.safetensors"
    other.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(other))
    assert weights.resolve("resnet10t").source == "download"
    w = weights.resolve("resnet10t", offline_flag=True)
    assert (w.source, w.path, w.tag) == ("local", other, "other_tag")


def test_weights_fetch_cli_fills_cache_and_copies(fake_hub, tmp_path, capsys):
    _, calls = fake_hub
    into = tmp_path / "cluster_weights"
    assert main(["weights", "fetch", "resnet10t", "--into", str(into)]) == 0
    out = capsys.readouterr().out
    tag = backbones.pretrained_cfg("resnet10t")["tag"]
    assert f"resnet10t.{tag}: downloaded" in out and len(calls) == 1
    copied = into / f"resnet10t.{tag}.safetensors"
    assert copied.is_file()
    # the copy is what an offline machine then finds under that name
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZSGM_WEIGHTS", str(into))
        mp.setenv("HF_HUB_OFFLINE", "1")
        assert weights.resolve("resnet10t").path == copied


def test_weights_fetch_refuses_offline_and_unknown_tags(monkeypatch, capsys):
    assert main(["weights", "fetch", "resnet10t"]) == 2  # the test session is offline
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert main(["weights", "fetch", "vit_base_patch16_224.no_such_tag"]) == 2
    assert "known tags" in capsys.readouterr().err
    assert main(["weights", "fetch"]) == 2


def test_weights_list_names_the_study_tags(capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "vit_base_patch16_224.augreg_in1k" in out and "swin_base_patch4_window12_384.ms_in1k" in out
    assert "vit_large_patch16_224.augreg_in21k_ft_in1k" in out and "no ImageNet-1k-only" in out
