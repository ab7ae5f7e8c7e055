"""Extraction throughput: the full pipeline (decode + transform + forward, through the same
DataLoader and engine settings as ``zsgm extract``) against the bare model forward on random
tensors of the same shape, in the same process with the same torch threads.

Also the per-image cost of each stage measured alone (decode, transform, forward), so that a
decode-bound case shows as a decode share rather than hiding inside a ratio. Models are
randomly initialised: timing does not depend on the weights.

    zsgm bench --sections extraction [--backbones a,b] [--images N] [--decode pil,gpu,gpu-inline]

(``pipelines/bench.py`` runs it and reports it as section e.) On a GPU ``pil,gpu,gpu-inline`` compares PIL in the workers with nvJPEG on the device
(``extract.gpu_decode``), decoded ahead by a background thread or in the loop; there the decode
time is that of one batched GPU decode and transform.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from zsgm.extract import backbones, gpu_decode
from zsgm.core.device import pick_device
from zsgm.core.project import shared_data_root
from zsgm.extract.extractor import EngineConfig, input_batches
from zsgm.extract.images import decode
from zsgm.extract.layouts.base import Record

DEFAULT_BACKBONES = ("tf_efficientnet_lite0", "convnext_tiny", "vit_base_patch16_224")


def sample_images(n: int) -> list[Path]:
    """Real photos when the staged CUB images exist (their decode cost is the real one; with fewer
    than ``n`` they are cycled, read from the page cache the second time, as in a second epoch),
    else generated 500x375 JPEGs, CUB's typical size."""
    root = shared_data_root()
    if root is not None and (root / "CUB" / "images").is_dir():
        files = sorted((root / "CUB" / "images").glob("*/*.jpg"))
        if len(files) >= n:
            step = len(files) // n
            return files[::step][:n]
        if files:
            return [files[i % len(files)] for i in range(n)]
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


# What ``--decode`` compares: the decoder, and for the GPU decoder how many batches a background
# thread decodes ahead ("gpu-inline": none, the decode holds the loop that queues the forward passes).
VARIANTS = {"auto": ("auto", EngineConfig.decode_ahead), "pil": ("pil", 0), "gpu": ("gpu", EngineConfig.decode_ahead),
            "gpu-inline": ("gpu", 0)}


def bench_backbone(name: str, files: list[Path], batch_size: int = 32, workers: int = -1,
                   draft: bool = False, device: str = "auto", decoders: tuple[str, ...] = ("auto",)) -> list[dict]:
    """One row per decoder variant (``VARIANTS``), the model built once; each row's bare forward
    pass is timed right before its pipeline, so that every ratio is measured side by side."""
    for d in decoders:
        if d not in VARIANTS:
            raise ValueError(f"--decode {d}: use one of {', '.join(VARIANTS)}")
    dev = pick_device(device)
    model = backbones.create(name, num_classes=0).eval().to(dev).to(memory_format=torch.channels_last)
    cfg = backbones.data_config(model, name)
    tf = backbones.eval_transform(cfg)
    size = cfg["input_size"]
    n = len(files) - len(files) % batch_size or len(files)
    files = files[:n]
    draft_px = int(size[-1] / cfg.get("crop_pct", 1.0)) + 1 if draft else None
    rows = []
    for variant in decoders:
        decode, ahead = VARIANTS[variant]
        decoder = gpu_decode.resolve_decoder(decode, dev, draft_px, tf)
        eng = EngineConfig(batch_size=batch_size, workers=workers, device=dev, draft=draft_px, decode=decoder,
                           decode_ahead=ahead if decoder == "gpu" else 0)
        bare = _bare_forward(model, (batch_size, *size), n // batch_size, dev)
        pipeline = _pipeline(model, files, tf, eng)
        dec, trans = (_stage_times_gpu if decoder == "gpu" else _stage_times_pil)(files[:16], tf, draft_px, dev)
        fwd = 1.0 / bare
        rows.append({
            "backbone": name, "device": str(dev), "decode": decoder, "decode_ahead": eng.decode_ahead,
            "input_size": list(size), "batch_size": batch_size,
            "workers": eng.n_workers(), "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "images": n, "fast_decode": draft, "bare_forward_img_s": round(bare, 2),
            "pipeline_img_s": round(pipeline, 2), "ratio": round(pipeline / bare, 3),
            "decode_ms": round(dec * 1e3, 2), "transform_ms": round(trans * 1e3, 2),
            "forward_ms": round(fwd * 1e3, 2), "decode_share": round((dec + trans) / (dec + trans + fwd), 3),
        })
    return rows


def _bare_forward(model, shape, batches: int, dev) -> float:
    """Images per second of the forward pass on random tensors; like the engine, no wait per batch."""
    x = torch.randn(*shape, device=dev)
    _forward(model, x, dev)  # warm-up
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(batches):
        _forward(model, x, dev)
    _sync(dev)
    return batches * shape[0] / (time.perf_counter() - t0)


def _pipeline(model, files, tf, eng: EngineConfig) -> float:
    """Images per second through the engine's own batches, in the steady state (from the second batch on)."""
    n, bs, dev = len(files), eng.batch_size, eng.device
    records = [Record(i, p, 0) for i, p in enumerate(files)]
    batches = input_batches(records, tf, eng, [list(range(b, min(n, b + bs))) for b in range(0, n, bs)])
    first = next(batches)
    _forward(model, first[0], dev)
    _sync(dev)
    t0 = time.perf_counter()
    done = 0
    for xb, *_ in batches:
        _forward(model, xb, dev)
        done += len(xb)
    _sync(dev)
    return done / (time.perf_counter() - t0) if done else float("nan")


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
    return [row for b in backbone_names
            for row in bench_backbone(b, files, batch_size, workers, draft, device, decoders)]


def table(rows: list[dict]) -> str:
    head = ("| backbone | device, decoder | pipeline img/s | bare forward img/s | ratio | decode+transform ms/img | "
            "forward ms/img | decode share |\n|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['backbone']}{' (fast decode)' if r['fast_decode'] else ''} | {r['device']}, {decoder_label(r)} | "
             f"{r['pipeline_img_s']} | {r['bare_forward_img_s']} | {r['ratio']:.2f} | "
             f"{r['decode_ms'] + r['transform_ms']:.1f} | {r['forward_ms']:.1f} | {r['decode_share']:.0%} |"
             for r in rows]
    return "\n".join([head, *lines])


def decoder_label(row: dict) -> str:
    """'pil', or 'gpu' with how far its thread decodes ahead."""
    if row.get("decode") != "gpu":
        return row.get("decode", "pil")
    ahead = row.get("decode_ahead", 0)
    return f"gpu, {ahead} ahead" if ahead else "gpu, inline"
