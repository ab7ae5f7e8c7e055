"""JPEG decoding and the eval transform on the GPU (nvJPEG through ``torchvision.io``).

On a GPU box the forward pass of a backbone outruns the DataLoader workers that decode and
resize JPEGs with PIL (measured on an H200: 3-4k img/s from 15 workers against 7-14k img/s
forward). Here the workers only read the file bytes; a batch is decoded on the GPU in one
``decode_jpeg`` call, then cropped, resized, centre-cropped and normalised there.

The transform is timm's own eval transform, read back from the ``Compose`` that
``timm.data.create_transform`` built (resize, centre crop, to-tensor, normalise), computed as
PIL computes it: PIL's antialiased bicubic or bilinear weights, width then height, rounded to
grey levels after each pass. On CUB photos decoded alike it is within 1 grey level of PIL
(mean difference 1e-4). nvJPEG's IDCT is not libjpeg-turbo's, so the decoder is part of a
FeatureSet's provenance.

Anything the GPU path does not handle the PIL path does, inside the worker: files that are not
JPEG, or whose end marker is missing (truncated: PIL then reports the error with the path).
"""
from __future__ import annotations

import contextlib
import functools
import io
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import InterpolationMode

from zsgm.extract import images
from zsgm.core.errors import ZsgmError
from zsgm.core.logs import log
from zsgm.extract.layouts.base import Record

DECODERS = ("auto", "pil", "gpu")
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"


def resolve_decoder(name: str, device: torch.device, draft: int | None, transform: Callable | None = None) -> str:
    """``pil`` or ``gpu``. ``auto`` means gpu where it can run (CUDA, nvJPEG working, a transform
    it can apply, no --fast-decode, which is PIL's draft mode) and pil otherwise; an explicit
    ``gpu`` that cannot run is an error that says why."""
    if name not in DECODERS:
        raise ZsgmError(f"--decode {name}: use one of {', '.join(DECODERS)}")
    if name == "pil":
        return "pil"
    why = None
    if device.type != "cuda":
        why = f"the GPU decoder needs a CUDA device (the run is on {device})"
    elif draft:
        why = "--fast-decode is PIL's reduced-scale JPEG decode"
    else:
        why = nvjpeg_error(device)
        if why is None and transform is not None:
            try:
                TensorTransform.from_timm(transform)
            except ZsgmError as exc:
                why = str(exc)
    if why is None:
        return "gpu"
    if name == "gpu":
        raise ZsgmError(f"--decode gpu: {why}; use --decode pil (or drop --fast-decode)")
    if device.type == "cuda":
        log.info("decoding JPEGs with PIL in the workers: %s", why)
    return "pil"


@functools.lru_cache(maxsize=None)
def nvjpeg_error(device: torch.device) -> str | None:
    """None where torchvision's nvJPEG decodes a tiny JPEG on ``device``, else the reason."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 100, 50)).save(buf, format="JPEG")
    try:
        decode_jpeg([torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)], device=device)
        return None
    except Exception as exc:  # e.g. a torchvision built without nvJPEG
        return f"nvJPEG does not run here ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"


@dataclass(frozen=True)
class TensorTransform:
    """timm's eval transform (resize → centre crop → scale to [0, 1] → normalise) on uint8 tensors."""
    resize: int | tuple[int, int] | None
    interpolation: InterpolationMode
    max_size: int | None
    crop: tuple[int, int] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_timm(cls, transform: Callable) -> "TensorTransform":
        """Read the settings back from the torchvision ``Compose`` that timm built."""
        from torchvision import transforms as T

        fields: dict = {"resize": None, "interpolation": InterpolationMode.BILINEAR, "max_size": None,
                        "crop": None, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
        for t in getattr(transform, "transforms", [transform]):
            kind = type(t).__name__
            if isinstance(t, T.Resize) and t.antialias is not False:
                fields.update(resize=t.size if isinstance(t.size, int) else tuple(t.size),
                              interpolation=t.interpolation, max_size=t.max_size)
            elif isinstance(t, T.CenterCrop):
                fields["crop"] = tuple(t.size)
            elif isinstance(t, T.Normalize):
                fields.update(mean=tuple(float(m) for m in t.mean), std=tuple(float(s) for s in t.std))
            elif kind not in ("ToTensor", "MaybeToTensor"):
                raise ZsgmError(f"the GPU decoder applies timm's resize / centre-crop / normalise eval transform; "
                                f"this backbone's transform also has {kind} ({t}); use --decode pil")
        if fields["resize"] is not None and fields["interpolation"].value not in FILTERS:
            raise ZsgmError(f"the GPU decoder resamples with PIL's {' or '.join(FILTERS)} weights; this transform "
                            f"uses {fields['interpolation'].value}; use --decode pil")
        if fields["crop"] is None and not isinstance(fields["resize"], tuple):
            raise ZsgmError(f"the GPU decoder needs a transform with a fixed output size (a centre crop or a "
                            f"fixed resize); this one has neither ({transform}); use --decode pil")
        return cls(**fields)

    def resized_size(self, h: int, w: int) -> list[int]:
        """torchvision's Resize output size: an int sets the short side (the long one scaled and
        truncated, then capped by max_size), a pair sets both."""
        if not isinstance(self.resize, int):
            return list(self.resize)
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.resize, int(self.resize * long / short)
        if self.max_size is not None and new_long > self.max_size:
            new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
        return [new_long, new_short] if w <= h else [new_short, new_long]

    @property
    def out_size(self) -> tuple[int, int]:
        return tuple(self.crop) if self.crop is not None else tuple(self.resize)

    def crop_offset(self, resized: int, crop: int) -> int:
        """torchvision's centre crop: offset round((resized - crop) / 2), or zero padding split
        as (crop - resized) // 2 before where the crop is the larger."""
        return int(round((resized - crop) / 2.0)) if resized >= crop else -((crop - resized) // 2)

    def __call__(self, imgs: list[torch.Tensor]) -> torch.Tensor:
        """uint8 [3, H_i, W_i] images on one device → the normalised float batch [B, 3, h, w].

        The resize and the centre crop of every image are two batched matrix products (width,
        then height, rounded in between as PIL's two uint8 passes are) with PIL's own resampling
        weights, the crop folded into the weights. On a GPU that is a handful of kernels for the
        whole batch instead of several per image, which a launch-bound machine pays for."""
        ch, cw = self.out_size
        device = imgs[0].device
        groups = _size_groups([im.shape[1:] for im in imgs])
        out = torch.empty(len(imgs), 3, ch, cw, device=device) if len(groups) > 1 else None
        for group in groups:
            hs = [imgs[i].shape[1] for i in group]
            ws = [imgs[i].shape[2] for i in group]
            buf = torch.zeros(len(group), 3, max(hs), max(ws), dtype=torch.uint8, device=device)
            for k, i in enumerate(group):
                buf[k, :, :hs[k], :ws[k]].copy_(imgs[i])
            new = [self.resized_size(h, w) if self.resize is not None else [h, w] for h, w in zip(hs, ws)]
            mode = self.interpolation.value
            w_cols = resample_weights(ws, [n[1] for n in new], [self.crop_offset(n[1], cw) for n in new], cw,
                                      buf.shape[3], mode, device)
            w_rows = resample_weights(hs, [n[0] for n in new], [self.crop_offset(n[0], ch) for n in new], ch,
                                      buf.shape[2], mode, device)
            with full_float32_matmul():
                x = torch.floor(buf.float() @ w_cols.transpose(1, 2)[:, None] + 0.5).clamp_(0, 255)
                resized = w_rows[:, None] @ x
            if out is None:  # one group (the usual case): it is the batch, in the sorted order
                out = resized[torch.argsort(to_device(group, torch.int64, device))]
            else:
                out.index_copy_(0, to_device(group, torch.int64, device), resized)
        return self.normalise(out)

    def normalise(self, batch: torch.Tensor) -> torch.Tensor:
        """float [B, 3, h, w] → rounded to grey levels (half up, as PIL's fixed point), scaled to
        [0, 1] and normalised."""
        mean = to_device(self.mean, torch.float32, batch.device).view(1, -1, 1, 1) * 255.0
        std = to_device(self.std, torch.float32, batch.device).view(1, -1, 1, 1) * 255.0
        return (torch.floor(batch + 0.5).clamp_(0, 255) - mean) / std


@contextlib.contextmanager
def full_float32_matmul():
    """float32 matrix products without TF32 (which a user may have switched on globally): its
    10-bit mantissa would move pixels across the rounding to grey levels."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def to_device(values, dtype: torch.dtype, device) -> torch.Tensor:
    """A few host numbers on ``device`` without waiting for it: ``torch.tensor(..., device=cuda)``
    copies synchronously, which would stall the host until the previous batch's forward ends."""
    host = torch.tensor(values, dtype=dtype)
    if torch.device(device).type == "cuda":
        host = host.pin_memory()  # from pageable memory the driver may wait for the stream
    return host.to(device, non_blocking=True)


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    """PIL's bicubic kernel (a = -0.5), support 2."""
    a, x = -0.5, x.abs()
    return torch.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                       torch.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, torch.zeros_like(x)))


def _bilinear(x: torch.Tensor) -> torch.Tensor:
    return (1 - x.abs()).clamp(min=0)


FILTERS = {"bicubic": (_bicubic, 2.0), "bilinear": (_bilinear, 1.0)}


def resample_weights(in_sizes: list[int], out_sizes: list[int], offsets: list[int], n_out: int, n_in: int,
                     mode: str, device) -> torch.Tensor:
    """[B, n_out, n_in] float32: row r of image b holds the weights of output pixel r + offset_b
    of a resize from in_sizes[b] to out_sizes[b] pixels, over the input pixels (zero past
    in_sizes[b], the padding). PIL's precompute_coeffs: antialiased (the kernel stretched by the
    scale when shrinking), its window rounded as PIL rounds it, normalised to sum 1; rows
    outside the resized image (a crop larger than it) are zero, as torchvision pads."""
    kernel, support = FILTERS[mode]
    f64 = dict(dtype=torch.float64, device=device)
    size_in, size_out, offset = (to_device(v, torch.float64, device).view(-1, 1, 1)
                                 for v in (in_sizes, out_sizes, offsets))
    scale = size_in / size_out
    stretch = scale.clamp(min=1.0)
    reach = support * stretch
    r = torch.arange(n_out, **f64).view(1, -1, 1) + offset
    center = (r + 0.5) * scale
    lo = torch.trunc(center - reach + 0.5).clamp(min=0)
    hi = torch.minimum(torch.trunc(center + reach + 0.5), size_in)
    j = torch.arange(n_in, **f64).view(1, 1, -1)
    w = kernel((j - center + 0.5) / stretch) * ((j >= lo) & (j < hi))
    total = w.sum(-1, keepdim=True)
    w = w / torch.where(total == 0, torch.ones_like(total), total)
    return (w * ((r >= 0) & (r < size_out))).float()


PAD_CAP = 1 << 27  # elements of one padded float buffer (512 MiB)


def _size_groups(sizes, cap: int | None = None) -> list[list[int]]:
    """Positions grouped by image area so that a group's padded float buffer stays under ``cap``
    elements (one huge photo would otherwise pad the whole batch to its size)."""
    cap = PAD_CAP if cap is None else cap
    order = sorted(range(len(sizes)), key=lambda i: sizes[i][0] * sizes[i][1])
    groups: list[list[int]] = []
    hmax = wmax = 0
    for i in order:
        h, w = int(sizes[i][0]), int(sizes[i][1])
        if groups and (len(groups[-1]) + 1) * 3 * max(hmax, h) * max(wmax, w) <= cap:
            groups[-1].append(i)
            hmax, wmax = max(hmax, h), max(wmax, w)
        else:
            groups.append([i])
            hmax, wmax = h, w
    return groups


def looks_complete(data: bytes) -> bool:
    """A JPEG with its end-of-image marker near the end. Inside the entropy-coded data 0xFF is
    always stuffed, so the marker only appears as a marker; a truncated file lacks it."""
    return data[:2] == JPEG_START and JPEG_END in data[-4096:]


def pil_pixels(data: bytes) -> torch.Tensor:
    """PIL's decode of a file's bytes (the fallback) as a uint8 [3, H, W] tensor."""
    im = images.decode(io.BytesIO(data))
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).contiguous()


class EncodedImages(Dataset):
    """Item i → (uint8 tensor, i, ok, error, is_jpeg): the file's bytes when it is a complete JPEG
    (decoded later on the GPU), else PIL's pixels; for an unreadable file, an empty tensor and the reason."""

    def __init__(self, records: Sequence[Record]):
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        r = self.records[i]
        if images.OPEN_HOOK is not None:
            images.OPEN_HOOK(r)
        try:
            data = r.path.read_bytes()
            if looks_complete(data):
                return torch.frombuffer(bytearray(data), dtype=torch.uint8), i, True, "", True
            return pil_pixels(data), i, True, "", False
        except Exception as exc:  # reported by the caller, with the path
            return torch.empty(0, dtype=torch.uint8), i, False, f"{type(exc).__name__}: {exc}", False


def collate_encoded(batch):
    """Lists, not a stacked tensor: encoded files and decoded images differ in size."""
    data, idx, ok, err, is_jpeg = zip(*batch)
    return list(data), torch.tensor(idx), torch.tensor(ok), list(err), list(is_jpeg)


def read_batch(paths) -> tuple:
    """The files at ``paths`` as one collated ``EncodedImages`` batch, read in this process
    (benchmarks and checks; extraction reads through the DataLoader)."""
    ds = EncodedImages([Record(i, Path(p), 0) for i, p in enumerate(paths)])
    return collate_encoded([ds[i] for i in range(len(ds))])


class GpuDecoder:
    """A batch of ``EncodedImages`` items → the normalised input batch on ``device``."""

    def __init__(self, transform: TensorTransform, device: torch.device):
        self.transform, self.device = transform, torch.device(device)

    def _decode_jpegs(self, blobs: list[torch.Tensor]) -> list[torch.Tensor | Exception]:
        try:  # one batched nvJPEG call
            return list(decode_jpeg(blobs, mode=ImageReadMode.RGB, device=self.device))
        except RuntimeError:  # one bad file fails the batch: decode one by one to find it
            out = []
            for b in blobs:
                try:
                    out.append(decode_jpeg(b, mode=ImageReadMode.RGB, device=self.device))
                except RuntimeError:  # e.g. CMYK, or a JPEG nvJPEG rejects: PIL decides
                    try:
                        out.append(pil_pixels(b.numpy().tobytes()).to(self.device))
                    except Exception as exc:
                        out.append(exc)
            return out

    def __call__(self, data: list[torch.Tensor], ok: torch.Tensor, err: list[str], is_jpeg: list[bool],
                 boxes: list[tuple[int, int, int, int] | None]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        readable = ok.tolist()
        jpeg_pos = [k for k, (o, j) in enumerate(zip(readable, is_jpeg)) if o and j]
        pixels: list = [d.to(self.device, non_blocking=True) if o and not j else None
                        for d, o, j in zip(data, readable, is_jpeg)]
        for k, img in zip(jpeg_pos, self._decode_jpegs([data[k] for k in jpeg_pos]) if jpeg_pos else []):
            pixels[k] = img
        ok, err = ok.clone(), list(err)
        blank = torch.zeros(3, 8, 8, dtype=torch.uint8, device=self.device)  # unreadable rows: flagged anyway
        batch = []
        for k, img in enumerate(pixels):
            if isinstance(img, Exception):
                ok[k], err[k], img = False, f"{type(img).__name__}: {img}", None
            if img is not None and boxes[k] is not None:
                x1, y1, x2, y2 = images.clamp_box(boxes[k], img.shape[2], img.shape[1])
                img = img[:, y1:y2, x1:x2]
            batch.append(blank if img is None else img)
        return self.transform(batch), ok, err


def decode_ahead(batches: Iterable, decode: Callable, depth: int, device) -> Iterator:
    """``decode(b)`` for each batch ``b``, computed up to ``depth`` batches ahead by a background
    thread (``depth`` 0: in the caller's loop).

    nvJPEG's batched decode holds its calling thread until its own stream has finished. In the
    caller's loop the host therefore cannot queue batch k's forward pass while batch k+1 decodes;
    from a thread it can. The thread queues its kernels on the caller's device and current CUDA
    stream, so they run in the order the batches are handed over. An error in the thread is
    raised in the caller; a caller that stops early stops the thread."""
    if depth <= 0:
        for b in batches:
            yield decode(b)
        return
    it = iter(batches)  # DataLoader workers start here, in the caller's thread
    handover: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    dev = torch.device(device)
    stream = torch.cuda.current_stream(dev) if dev.type == "cuda" else None

    def offer(message) -> bool:
        while not stop.is_set():
            try:
                handover.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with contextlib.ExitStack() as ctx:
                if stream is not None:
                    ctx.enter_context(torch.cuda.device(stream.device))
                    ctx.enter_context(torch.cuda.stream(stream))
                ctx.enter_context(torch.no_grad())
                for b in it:
                    if not offer(("batch", decode(b))):
                        return
            offer(("end", None))
        except BaseException as exc:  # handed to the caller, which raises it
            offer(("error", exc))

    worker = threading.Thread(target=produce, name="zsgm-gpu-decode", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = handover.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=30)
