"""The extraction benchmark returns the numbers `zsgm bench` reports."""
from __future__ import annotations

import pytest

from zsgm.bench import extraction as bench
from fixtures_images import jpeg


def test_bench_backbone_reports_pipeline_vs_bare(tmp_path):
    files = [jpeg(tmp_path / f"{i}.jpg", seed=i, size=(120, 90)) for i in range(8)]
    [row] = bench.bench_backbone("resnet10t", files, batch_size=4, workers=0)
    assert row["images"] == 8 and row["bare_forward_img_s"] > 0 and row["pipeline_img_s"] > 0
    assert row["ratio"] == pytest.approx(row["pipeline_img_s"] / row["bare_forward_img_s"], rel=0.05)  # rounded
    assert 0 < row["decode_share"] < 1 and row["input_size"][0] == 3
    assert row["decode"] == "pil" and "| resnet10t | cpu, pil |" in bench.table([row])


def test_bench_compares_the_gpu_decoder_with_and_without_its_thread(tmp_path, monkeypatch):
    """The GPU decoder's code path (its device the CPU here): a row per variant, labelled."""
    from zsgm.extract import gpu_decode

    monkeypatch.setattr(gpu_decode, "resolve_decoder", lambda *args: "gpu")
    files = [jpeg(tmp_path / f"{i}.jpg", seed=i, size=(120, 90)) for i in range(8)]
    rows = bench.bench_backbone("resnet10t", files, batch_size=4, workers=0, decoders=("gpu", "gpu-inline"))
    assert [(r["decode"], r["decode_ahead"]) for r in rows] == [("gpu", 2), ("gpu", 0)]
    assert all(r["pipeline_img_s"] > 0 and r["images"] == 8 for r in rows)
    table = bench.table(rows)
    assert "| cpu, gpu, 2 ahead |" in table and "| cpu, gpu, inline |" in table
    with pytest.raises(ValueError, match="gpu-inline"):
        bench.bench_backbone("resnet10t", files, decoders=("nvjpeg",))


def test_staged_photos_are_cycled_up_to_the_count_asked_for(tmp_path, monkeypatch):
    for i in range(3):
        jpeg(tmp_path / "CUB" / "images" / "001.x" / f"{i}.jpg", seed=i, size=(40, 30))
    monkeypatch.setenv("ZSGM_DATA", str(tmp_path))
    files = bench.sample_images(8)
    assert len(files) == 8 and len(set(files)) == 3 and files[3] == files[0]
    assert len(set(bench.sample_images(2))) == 2


def test_the_extraction_target_is_reported_per_backbone_with_its_best_decoder():
    from zsgm.bench.suite import targets

    def row(backbone, decode, ahead, ratio):
        return {"backbone": backbone, "decode": decode, "decode_ahead": ahead, "ratio": {"median": ratio}}

    got = targets([], None, [row("vit", "pil", 0, 0.48), row("vit", "gpu", 2, 0.93), row("vit", "gpu", 0, 0.7),
                             row("lite0", "pil", 0, 0.21), row("lite0", "gpu", 2, 0.6)])["extraction_90pct"]
    assert got["vit"] == {"ratio": 0.93, "decoder": "gpu, 2 ahead", "met": True}
    assert got["lite0"] == {"ratio": 0.6, "decoder": "gpu, 2 ahead", "met": False}


def test_zsgm_bench_chooses_what_the_extraction_section_times(tmp_path):
    """`zsgm bench --sections extraction --backbones --images --decode`: the one way in (no CLI of its own)."""
    import torch

    from zsgm.core.errors import ZsgmError
    from zsgm.bench.suite import BenchConfig, run_bench

    budget = BenchConfig(backbones=("resnet10t",), images=8).resolve_budget(torch.device("cpu"))
    assert budget.backbones == ("resnet10t",) and budget.images == 8
    with pytest.raises(ZsgmError, match="--decode nvjpeg"):
        run_bench(BenchConfig(device="cpu", sections=("extraction",), decoders=("nvjpeg",)))
    assert not hasattr(bench, "main")
