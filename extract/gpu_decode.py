"""JPEG decoding and the eval transform on the GPU (nvJPEG through ``torchvision.io``).

On a GPU box the forward pass of a backbone outruns the DataLoader workers that decode and
resize JPEGs with PIL (measured on an H200: 3-4k img/s from 15 workers against 7-14k img/s
forward). Here the workers only read the file bytes; a batch is decoded on the GPU in one
``decode_jpeg`` call, then cropped, resized, centre-cropped and normalised there.

The transform is timm's own eval transform, read back from the ``Compose`` that
``timm.data.create_transform`` built (resize, centre crop, to-tensor, normalise) and applied
with ``torchvision.transforms.v2.functional`` on uint8 tensors, as PIL does it: bicubic or
bilinear with antialiasing. Pixels differ from PIL's by a grey level or so (another IDCT and
resize kernel), so the decoder is part of a FeatureSet's provenance.

Anything the GPU path does not handle the PIL path does, inside the worker: files that are not
JPEG, or whose end marker is missing (truncated: PIL then reports the error with the path).
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from extract import images
from extract.common import ZsgmError, log
from extract.layouts.base import Record

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

    def geometry(self, img: torch.Tensor) -> torch.Tensor:
        """uint8 [3, H, W] → float [3, h, w] of whole grey levels except for the last rounding (done
        once for the batch): the resize, then the centre crop (a view).

        PIL resizes in two passes, width then height, and rounds to uint8 in between; so does
        this. One float pass differs from PIL by up to 13 grey levels where bicubic overshoots at
        sharp edges; two passes stay within 2 (on CUB photos, decoded alike)."""
        img = img.float()[None]
        if self.resize is not None:
            h, w = self.resized_size(*img.shape[2:])
            mode = self.interpolation.value
            aa = dict(antialias=True, align_corners=False) if mode in ("bilinear", "bicubic") else {}
            if w != img.shape[3]:
                img = torch.nn.functional.interpolate(img, size=[img.shape[2], w], mode=mode, **aa)
                img = img.clamp_(0, 255).round_()
            if h != img.shape[2]:
                img = torch.nn.functional.interpolate(img, size=[h, w], mode=mode, **aa)
        img = img[0]
        if self.crop is not None:
            img = TF.center_crop(img, list(self.crop))
        return img

    def normalise(self, batch: torch.Tensor) -> torch.Tensor:
        """float [B, 3, h, w] → rounded to grey levels as PIL's uint8 resize does, scaled to [0, 1]
        and normalised."""
        mean = torch.tensor(self.mean, device=batch.device).view(1, -1, 1, 1) * 255.0
        std = torch.tensor(self.std, device=batch.device).view(1, -1, 1, 1) * 255.0
        return (batch.clamp_(0, 255).round_() - mean) / std


def looks_complete(data: bytes) -> bool:
    """A JPEG with its end-of-image marker near the end. Inside the entropy-coded data 0xFF is
    always stuffed, so the marker only appears as a marker; a truncated file lacks it."""
    return data[:2] == JPEG_START and JPEG_END in data[-4096:]


def pil_pixels(path_or_bytes, box=None) -> torch.Tensor:
    """PIL's decode (the fallback) as a uint8 [3, H, W] tensor."""
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else path_or_bytes
    im = images.decode(src, box)
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
        jpeg_pos = [k for k, (o, j) in enumerate(zip(ok.tolist(), is_jpeg)) if o and j]
        pixels: list = [d.to(self.device, non_blocking=True) if o and not j else None
                        for d, o, j in zip(data, ok.tolist(), is_jpeg)]
        for k, img in zip(jpeg_pos, self._decode_jpegs([data[k] for k in jpeg_pos]) if jpeg_pos else []):
            pixels[k] = img
        ok, err = ok.clone(), list(err)
        out = []
        for k, img in enumerate(pixels):
            if isinstance(img, Exception):
                ok[k], err[k], img = False, f"{type(img).__name__}: {img}", None
            if img is None:
                out.append(None)
                continue
            if boxes[k] is not None:
                x1, y1, x2, y2 = images.clamp_box(boxes[k], img.shape[2], img.shape[1])
                img = img[:, y1:y2, x1:x2]
            out.append(self.transform.geometry(img))
        shape = next((o.shape for o in out if o is not None), None)
        if shape is None:  # nothing decodable in this batch: any shape will do, the rows are flagged
            shape = (3, *(self.transform.crop or (8, 8)))
        blank = torch.zeros(shape, device=self.device)
        batch = torch.stack([blank if o is None else o for o in out])
        return self.transform.normalise(batch), ok, err
