"""The extraction benchmark returns the numbers `zsgm bench` reports."""
from __future__ import annotations

import pytest

from extract import bench
from fixtures_images import jpeg


def test_bench_backbone_reports_pipeline_vs_bare(tmp_path):
    files = [jpeg(tmp_path / f"{i}.jpg", seed=i, size=(120, 90)) for i in range(8)]
    row = bench.bench_backbone("resnet10t", files, batch_size=4, workers=0)
    assert row["images"] == 8 and row["bare_forward_img_s"] > 0 and row["pipeline_img_s"] > 0
    assert row["ratio"] == pytest.approx(row["pipeline_img_s"] / row["bare_forward_img_s"], rel=0.05)  # rounded
    assert 0 < row["decode_share"] < 1 and row["input_size"][0] == 3
    assert row["decode"] == "pil" and "| resnet10t | cpu, pil |" in bench.table([row])
