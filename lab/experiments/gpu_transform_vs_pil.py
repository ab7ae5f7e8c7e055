"""How close the GPU decoder's pixels and features are to PIL + timm's transform, on real photos.

For each backbone's eval transform: the staged CUB photos (or generated JPEGs) decoded and
transformed by ``extract.gpu_decode`` on ``--device`` (nvJPEG on CUDA; libjpeg-turbo through
torchvision on the CPU) against PIL + the timm transform; grey-level differences and the
cosine between the features of a randomly initialised model:

    python lab/experiments/gpu_transform_vs_pil.py [--device cuda] [--images 64]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


from zsgm.extract import backbones, gpu_decode, images  # noqa: E402
from zsgm.bench.extraction import DEFAULT_BACKBONES, sample_images  # noqa: E402


def compare(name: str, files: list[Path], device: torch.device) -> str:
    model = backbones.create(name).eval().to(device)
    cfg = backbones.data_config(model, name)
    tf = backbones.eval_transform(cfg)
    data, _, ok, err, is_jpeg = gpu_decode.read_batch(files)
    decoder = gpu_decode.GpuDecoder(gpu_decode.TensorTransform.from_timm(tf), device)
    decoder(data, ok, err, is_jpeg, [None] * len(files))  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    x, ok, _ = decoder(data, ok, err, is_jpeg, [None] * len(files))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    ref = torch.stack([tf(images.decode(p)) for p in files]).to(device)
    grey = (x - ref).abs() * torch.tensor(cfg["std"], device=device).view(1, 3, 1, 1) * 255
    sample = grey.flatten()[::max(1, grey.numel() // 4_000_000)]  # quantile takes at most 16M values
    with torch.inference_mode():
        cos = torch.nn.functional.cosine_similarity(backbones.pooled_features(model, x),
                                                    backbones.pooled_features(model, ref))
    return (f"{name} on {device}: {int(ok.sum())}/{len(files)} decoded; grey levels off by mean "
            f"{grey.mean():.1e}, 99.9th percentile {sample.quantile(0.999):.1f}, max "
            f"{grey.max():.1f}; feature cosine min {cos.min():.6f}; decode + transform {seconds / len(files) * 1e3:.2f} "
            f"ms/img")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--backbones", default=",".join(DEFAULT_BACKBONES))
    a = ap.parse_args()
    files = sample_images(a.images)
    for name in a.backbones.split(","):
        print(compare(name, files, torch.device(a.device)), flush=True)


if __name__ == "__main__":
    main()
