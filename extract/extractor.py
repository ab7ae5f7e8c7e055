"""The batched extraction engine: images → pooled pre-logits, written shard by shard.

Shards are contiguous runs of the image list, written atomically to a work folder beside the
output as they finish, so that a killed run re-computes only the missing ones. A shard's
batches are fixed by its position in the list, so a resumed run computes the very same
batches and gives bit-identical features. Under ``torchrun`` shard s belongs to rank
``s % world_size``.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm import tqdm

from zsgm.extract import gpu_decode
from zsgm.extract.backbones import pooled_features
from zsgm.core.errors import ZsgmError
from zsgm.core.files import atomic_path, atomic_write_json
from zsgm.core.logs import ProgressLog, log
from zsgm.extract.images import ImageList
from zsgm.extract.layouts.base import Record

BAD_IMAGE_POLICIES = ("fail", "skip")


@dataclass
class EngineConfig:
    batch_size: int = 32
    workers: int = -1              # -1: all cores but one, at most 16
    device: torch.device = torch.device("cpu")
    shard_size: int = 256
    on_bad_image: str = "fail"
    channels_last: bool = True
    draft: int | None = None       # decode JPEGs at reduced scale covering this many pixels
    decode: str = "auto"           # auto | pil | gpu (extract.gpu_decode): where JPEGs are decoded
    decode_ahead: int = 2          # gpu decoder: batches decoded ahead by a background thread (0: in the loop)
    rank: int = 0
    world_size: int = 1
    progress: bool = True
    stop_after_shards: int | None = None  # test hook: end the run (as a crash would) after N new shards
    kill_after_shards: int | None = None  # test hook: SIGKILL this process after N new shards

    def n_workers(self) -> int:
        if self.workers >= 0:
            return self.workers
        # all but one core, so that a GPU box's decoders keep up with its forward pass
        return max(0, min(16, (os.cpu_count() or 1) - 1))


class Interrupted(RuntimeError):
    """Raised by the ``stop_after_shards`` test hook in place of a crash."""


@dataclass
class Extracted:
    features: torch.Tensor          # [N, D] float32, zero rows for bad images
    ok: torch.Tensor                # [N] bool
    errors: dict[int, str]          # position → reason, for bad images
    seconds: float
    computed: int                   # images computed in this run (not read from shards)


def shard_ranges(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def _shard_path(work: Path, s: int) -> Path:
    return work / f"shard_{s:05d}.safetensors"


def prepare_work_dir(work: Path, key: str, rank: int = 0) -> None:
    """A work folder bound to one provenance key; a folder of another key is cleared."""
    stamp = work / "key.json"
    if rank == 0:
        if work.is_dir() and (not stamp.is_file() or json.loads(stamp.read_text()).get("key") != key):
            log.info("work folder %s belongs to another extraction; clearing it", work)
            for p in work.glob("shard_*.safetensors"):
                p.unlink()
        work.mkdir(parents=True, exist_ok=True)
        atomic_write_json(stamp, {"key": key})


def _pending(work: Path, ranges, cfg: EngineConfig) -> list[int]:
    mine = [s for s in range(len(ranges)) if s % cfg.world_size == cfg.rank]
    return [s for s in mine if not _shard_path(work, s).is_file()]


def run(records: Sequence[Record], model: torch.nn.Module, transform: Callable, work: Path,
        cfg: EngineConfig, feature_fn: Callable = pooled_features) -> Extracted | None:
    """Extract every record; returns all features on rank 0 (None on other ranks)."""
    if cfg.on_bad_image not in BAD_IMAGE_POLICIES:
        raise ZsgmError(f"--on-bad-image {cfg.on_bad_image}: use one of {', '.join(BAD_IMAGE_POLICIES)}")
    ranges = shard_ranges(len(records), cfg.shard_size)
    pending = _pending(work, ranges, cfg)
    mine = sum(1 for s in range(len(ranges)) if s % cfg.world_size == cfg.rank)
    if len(pending) < mine:  # say so: the run continues from the shards a previous run finished
        done = mine - len(pending)
        log.info("resuming the extraction in %s: %d of %d shards already done (%d images), %d to go", work, done,
                 mine, sum(ranges[s][1] - ranges[s][0] for s in range(len(ranges))
                           if s % cfg.world_size == cfg.rank and s not in pending), len(pending))
    t0 = time.perf_counter()
    computed = _compute(records, model, transform, work, ranges, pending, cfg, feature_fn) if pending else 0
    seconds = time.perf_counter() - t0
    if cfg.world_size > 1:
        torch.distributed.barrier()
    if cfg.rank != 0:
        return None
    return _gather(work, ranges, seconds, computed)


def _batches(ranges, pending: list[int], batch_size: int) -> list[list[int]]:
    """Fixed batches inside each pending shard (the same whether a run is fresh or resumed)."""
    out = []
    for s in pending:
        lo, hi = ranges[s]
        out += [list(range(b, min(hi, b + batch_size))) for b in range(lo, hi, batch_size)]
    return out


def input_batches(records, transform, cfg: EngineConfig, batch_sampler):
    """(input batch on cfg.device, positions, ok, error messages) for each batch of ``batch_sampler``.

    With the PIL decoder the workers decode and transform; with the GPU decoder they only read
    the files, and the batch is decoded and transformed on the device."""
    device = cfg.device
    decoder = gpu_decode.resolve_decoder(cfg.decode, device, cfg.draft, transform)
    on_gpu = decoder == "gpu"
    ds = gpu_decode.EncodedImages(records) if on_gpu else ImageList(records, transform, cfg.draft)
    workers = cfg.n_workers()
    loader = DataLoader(ds, batch_sampler=batch_sampler, num_workers=workers, pin_memory=device.type == "cuda",
                        prefetch_factor=4 if workers else None,
                        collate_fn=gpu_decode.collate_encoded if on_gpu else None)
    if not on_gpu:
        for x, idx, ok, err in loader:
            yield x.to(device, non_blocking=True), idx, ok, list(err)
        return
    gpu = gpu_decode.GpuDecoder(gpu_decode.TensorTransform.from_timm(transform), device)

    def decode(batch):
        data, idx, ok, err, is_jpeg = batch
        x, ok, err = gpu(data, ok, err, is_jpeg, [records[int(i)].box for i in idx])
        return x, idx, ok, err

    yield from gpu_decode.decode_ahead(loader, decode, cfg.decode_ahead, device)


def _compute(records, model, transform, work: Path, ranges, pending, cfg: EngineConfig, feature_fn) -> int:
    device = cfg.device
    model = model.eval().to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    batches = input_batches(records, transform, cfg, _batches(ranges, pending, cfg.batch_size))
    total = sum(ranges[s][1] - ranges[s][0] for s in pending)
    bar = tqdm(total=total, unit="img", desc=f"extract (rank {cfg.rank})" if cfg.world_size > 1 else "extract",
               disable=not cfg.progress or cfg.rank != 0, dynamic_ncols=True)
    # without a bar (output redirected): a line at most every 30 s, with the shards written so far
    lines = ProgressLog("extract", total, unit="images", enabled=not cfg.progress and cfg.rank == 0, first=False)
    use_amp = device.type == "cuda"  # bf16 on GPU; fp32 on CPU where bf16 is slow and changes numbers
    shard_iter = iter(pending)
    current = next(shard_iter)
    buf: list[torch.Tensor] = []
    oks: list[torch.Tensor] = []
    errors: dict[int, str] = {}
    written = done = 0
    # closing: a run that ends early (a bad image, an interrupt) stops the workers and the decode thread now
    with torch.inference_mode(), contextlib.closing(batches):
        for x, idx, ok, err in batches:
            bad = [(int(i), e) for i, o, e in zip(idx, ok, err) if not o]
            if bad and cfg.on_bad_image == "fail":
                i, e = bad[0]
                raise ZsgmError(f"cannot decode image {records[i].path} ({e}); replace the file, or pass "
                                f"--on-bad-image skip to leave it out (it is then listed in the output's metadata)")
            errors.update({i: f"{records[i].path}: {e}" for i, e in bad})
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                f = feature_fn(model, x)
            # kept on the device until the shard is written: no wait for the GPU per batch, so the
            # next batch is read (and, with the GPU decoder, decoded) while this one runs
            buf.append(f.float())
            oks.append(ok.bool())
            bar.update(len(idx))
            done += len(idx)
            lo, hi = ranges[current]
            if int(idx[-1]) == hi - 1:  # the shard is complete: persist it
                _write_shard(work, current, torch.cat(buf).cpu(), torch.cat(oks),
                             {i: e for i, e in errors.items() if lo <= i < hi})
                buf, oks, written = [], [], written + 1
                current = next(shard_iter, None)
                _test_hooks(cfg, written)
            lines.step(done, f"{written}/{len(pending)} shard(s) written")
    bar.close()
    return done


def _test_hooks(cfg: EngineConfig, written: int) -> None:
    if cfg.kill_after_shards is not None and written >= cfg.kill_after_shards:
        os.kill(os.getpid(), signal.SIGKILL)
    if cfg.stop_after_shards is not None and written >= cfg.stop_after_shards:
        raise Interrupted(f"stopped after {written} shard(s) (test hook)")


def _write_shard(work: Path, s: int, feats: torch.Tensor, ok: torch.Tensor, errors: dict[int, str]) -> None:
    path = _shard_path(work, s)
    with atomic_path(path) as tmp:
        save_file({"features": feats.contiguous(), "ok": ok.to(torch.uint8)}, str(tmp),
                  metadata={"errors": json.dumps({str(k): v for k, v in errors.items()})})


def _gather(work: Path, ranges, seconds: float, computed: int) -> Extracted:
    feats, oks, errors = [], [], {}
    for s, (lo, hi) in enumerate(ranges):
        path = _shard_path(work, s)
        if not path.is_file():
            raise RuntimeError(f"shard {path} is missing after extraction")
        t = load_file(str(path))
        if t["features"].shape[0] != hi - lo:
            raise RuntimeError(f"shard {path} holds {t['features'].shape[0]} rows, expected {hi - lo}")
        feats.append(t["features"])
        oks.append(t["ok"].bool())
        from safetensors import safe_open

        with safe_open(str(path), "pt") as fh:
            errors.update({int(k): v for k, v in json.loads(fh.metadata().get("errors", "{}")).items()})
    return Extracted(torch.cat(feats), torch.cat(oks), errors, seconds, computed)


def clear_work_dir(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
