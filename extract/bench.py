"""Extraction throughput: the full pipeline (decode + transform + forward, through the same
DataLoader and engine settings as ``zsgm extract``) against the bare model forward on random
tensors of the same shape, in the same process with the same torch threads.

Also the per-image cost of each stage measured alone (decode, transform, forward), so that a
decode-bound case shows as a decode share rather than hiding inside a ratio. Models are
randomly initialised: timing does not depend on the weights.

    python -m extract.bench [--backbones a,b] [--images 64] [--decode pil,gpu] [--json]

On a GPU ``--decode pil,gpu`` compares PIL in the workers with nvJPEG on the device
(``extract.gpu_decode``); there the decode time is that of one batched GPU decode and transform.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from extract import backbones, gpu_decode
from extract.common import pick_device, shared_data_root
from extract.extractor import EngineConfig, input_batches
from extract.images import decode
from extract.layouts.base import Record

DEFAULT_BACKBONES = ("tf_efficientnet_lite0", "convnext_tiny", "vit_base_patch16_224")


def sample_images(n: int) -> list[Path]:
    """Real photos when the staged CUB images exist (their decode cost is the real one), else
    generated 500x375 JPEGs, CUB's typical size."""
    root = shared_data_root()
    if root is not None and (root / "CUB" / "images").is_dir():
        files = sorted((root / "CUB" / "images").glob("*/*.jpg"))
        if len(files) >= n:
            step = len(files) // n
            return files[::step][:n]
    import numpy as np
    from PIL import Image

    out = Path(tempfile.mkdtemp(prefix="zsgm-bench-"))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        arr = (rng.random((375, 500, 3)) * 255).astype("uint8")
        p = out / f"img_{i:04d}.jpg"
        Image.fromarray(arr).save(p, quality=90)
        paths.append(p)
    return paths


def _forward(model, x, device) -> None:
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        backbones.pooled_features(model, x.contiguous(memory_format=torch.channels_last))


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_backbone(name: str, files: list[Path], batch_size: int = 32, workers: int = -1,
                   draft: bool = False, device: str = "auto", decode: str = "auto") -> dict:
    dev = pick_device(device)
    model = backbones.create(name, num_classes=0).eval().to(dev).to(memory_format=torch.channels_last)
    cfg = backbones.data_config(model, name)
    tf = backbones.eval_transform(cfg)
    size = cfg["input_size"]
    n = len(files) - len(files) % batch_size or len(files)
    files = files[:n]
    draft_px = int(size[-1] / cfg.get("crop_pct", 1.0)) + 1 if draft else None
    eng = EngineConfig(batch_size=batch_size, workers=workers, device=dev, draft=draft_px, decode=decode)
    decoder = gpu_decode.resolve_decoder(decode, dev, draft_px, tf)

    # bare forward on random tensors, same batch shape; like the engine, no wait per batch
    x = torch.randn(batch_size, *size, device=dev)
    _forward(model, x, dev)  # warm-up
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(n // batch_size):
        _forward(model, x, dev)
    _sync(dev)
    bare = n / (time.perf_counter() - t0)

    # full pipeline, through the engine's own batches (steady state: from the second batch on)
    records = [Record(i, p, 0) for i, p in enumerate(files)]
    batches = input_batches(records, tf, eng, [list(range(b, min(n, b + batch_size))) for b in range(0, n, batch_size)])
    first = next(batches)
    _forward(model, first[0], dev)
    _sync(dev)
    t0 = time.perf_counter()
    done = 0
    for xb, *_ in batches:
        _forward(model, xb, dev)
        done += len(xb)
    _sync(dev)
    pipe_s = time.perf_counter() - t0
    pipeline = done / pipe_s if done else float("nan")

    k = min(len(files), 16)
    dec, trans = (_stage_times_gpu if decoder == "gpu" else _stage_times_pil)(files[:k], tf, draft_px, dev)
    fwd = 1.0 / bare
    return {
        "backbone": name, "device": str(dev), "decode": decoder, "input_size": list(size), "batch_size": batch_size,
        "workers": eng.n_workers(), "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "images": n, "fast_decode": draft, "bare_forward_img_s": round(bare, 2),
        "pipeline_img_s": round(pipeline, 2), "ratio": round(pipeline / bare, 3),
        "decode_ms": round(dec * 1e3, 2), "transform_ms": round(trans * 1e3, 2), "forward_ms": round(fwd * 1e3, 2),
        "decode_share": round((dec + trans) / (dec + trans + fwd), 3),
    }


def _stage_times_pil(files, tf, draft_px, dev) -> tuple[float, float]:
    """Seconds per image for PIL's decode and timm's transform, with one torch thread as in a worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        imgs = [decode(p, None, draft_px) for p in files]
        dec = (time.perf_counter() - t0) / len(files)
        t0 = time.perf_counter()
        for im in imgs:
            tf(im)
        return dec, (time.perf_counter() - t0) / len(files)
    finally:
        torch.set_num_threads(threads)


def _stage_times_gpu(files, tf, draft_px, dev) -> tuple[float, float]:
    """Seconds per image for one batched GPU decode and the transform there (after a warm-up batch);
    reading the files, which the workers do, is left out."""
    items = gpu_decode.read_batch(files)
    decoder = gpu_decode.GpuDecoder(gpu_decode.TensorTransform.from_timm(tf), dev)
    boxes = [None] * len(files)
    decoder(items[0], items[2], items[3], items[4], boxes)
    _sync(dev)
    t0 = time.perf_counter()
    decoder(items[0], items[2], items[3], items[4], boxes)
    _sync(dev)
    return (time.perf_counter() - t0) / len(files), 0.0


def run(backbone_names=DEFAULT_BACKBONES, n_images: int = 64, batch_size: int = 32, workers: int = -1,
        draft: bool = False, device: str = "auto", decoders: tuple[str, ...] = ("auto",)) -> list[dict]:
    files = sample_images(n_images)
    return [bench_backbone(b, files, batch_size, workers, draft, device, d) for b in backbone_names for d in decoders]


def table(rows: list[dict]) -> str:
    head = ("| backbone | device, decoder | pipeline img/s | bare forward img/s | ratio | decode+transform ms/img | "
            "forward ms/img | decode share |\n|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['backbone']}{' (fast decode)' if r['fast_decode'] else ''} | {r['device']}, {r['decode']} | "
             f"{r['pipeline_img_s']} | {r['bare_forward_img_s']} | {r['ratio']:.2f} | "
             f"{r['decode_ms'] + r['transform_ms']:.1f} | {r['forward_ms']:.1f} | {r['decode_share']:.0%} |"
             for r in rows]
    return "\n".join([head, *lines])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m extract.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--backbones", default=",".join(DEFAULT_BACKBONES))
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=-1)
    p.add_argument("--fast-decode", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--decode", default="auto", help="auto | pil | gpu, or a comma-separated list to compare")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    rows = run(a.backbones.split(","), a.images, a.batch_size, a.workers, a.fast_decode, a.device,
               tuple(a.decode.split(",")))
    print(json.dumps(rows, indent=2) if a.json else table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
