"""A dataset of image files (optionally object crops), decoded with PIL and transformed by timm.

A file that cannot be decoded does not raise inside a DataLoader worker (where the message
would be buried in a re-raised traceback): the item comes back flagged with the reason, and
the caller fails or skips with the path in hand.
"""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from zsgm.extract.layouts.base import Record

# Tests replace this to watch which files a stage opens (see tests/test_extract_scratch.py).
OPEN_HOOK: Callable[[Record], None] | None = None


def decode(path: Path | BinaryIO, box: tuple[int, int, int, int] | None = None,
           draft: int | None = None) -> Image.Image:
    """RGB image (or the crop ``box``); ``draft`` lets libjpeg decode at a reduced scale that still
    covers ``draft`` pixels on the short side, which is most of the decode cost for big photos."""
    with Image.open(path) as im:
        if draft and box is None and im.format == "JPEG":
            w, h = im.size
            scale = min(w, h) / draft
            if scale >= 2:
                im.draft("RGB", (int(w / scale) + 1, int(h / scale) + 1))
        im = im.convert("RGB")  # forces the full decode: a truncated file raises here
    if box is not None:
        im = im.crop(clamp_box(box, *im.size))
    return im


def clamp_box(box: tuple[int, int, int, int], w: int, h: int) -> tuple[int, int, int, int]:
    """An annotated box (x1, y1, x2, y2) clipped to a w x h image, at least one pixel wide and high."""
    x1, y1, x2, y2 = box
    x1, y1 = min(max(0, x1), w - 1), min(max(0, y1), h - 1)
    return x1, y1, min(w, max(x2, x1 + 1)), min(h, max(y2, y1 + 1))


class ImageList(Dataset):
    """Item i → (tensor, i, ok, error message)."""

    def __init__(self, records: Sequence[Record], transform: Callable, draft: int | None = None,
                 allowed: set[int] | None = None):
        self.records = list(records)
        self.transform = transform
        self.draft = draft
        # Guard for training sets: positions outside ``allowed`` must never be opened.
        self.allowed = allowed
        self._blank = transform(Image.new("RGB", (64, 64)))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        if self.allowed is not None and i not in self.allowed:
            raise RuntimeError(f"image {self.records[i].path} is outside this dataset's allowed set")
        r = self.records[i]
        if OPEN_HOOK is not None:
            OPEN_HOOK(r)
        try:
            x = self.transform(decode(r.path, r.box, self.draft))
            return x, i, True, ""
        except Exception as exc:  # reported by the caller, with the path
            return torch.zeros_like(self._blank), i, False, f"{type(exc).__name__}: {exc}"
