"""Train a backbone from scratch on the trainval images of the seen classes, and nothing else.

``classes="train"`` narrows that to the xlsa17 *training* classes (the seen classes minus the
validation classes, as ``RawDataset.val_classes`` gives them): features from such a backbone
can be selected on validation without the backbone having seen the validation classes.

The training set is built from ``trainval_loc`` alone and guarded: the image list refuses to
open any other position, so a test image can never reach training. timm's
``create_optimizer_v2`` / ``create_scheduler_v2`` and ``create_transform(is_training=True)``
supply the recipe; a checkpoint is written (atomically) after every epoch and a re-run
resumes from it. Under ``torchrun`` the model is wrapped in DDP (gloo on CPU, NCCL on GPU)
and the images are sharded across ranks by a DistributedSampler.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

from zsgm.extract import backbones
from zsgm.core.errors import ZsgmError
from zsgm.core.files import atomic_path, atomic_torch_save, stable_hash
from zsgm.core.logs import ProgressLog, log
from zsgm.core.rng import rng_state, seed_everything, set_rng_state
from zsgm.extract.images import ImageList
from zsgm.extract.layouts.base import RawDataset

TEST_SPLITS = ("test_seen_loc", "test_unseen_loc")
# which seen classes the backbone trains on: all of them (trainval), or the training classes only
# (trainval minus the validation classes: no leak into validation selection)
SCRATCH_CLASSES = ("trainval", "train")


@dataclass
class ScratchConfig:
    epochs: int = 30
    batch_size: int = 64
    opt: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    sched: str = "cosine"
    warmup_epochs: int = 1
    label_smoothing: float = 0.1
    img_size: int | None = None
    seed: int = 0
    workers: int = -1
    classes: str = "trainval"  # see SCRATCH_CLASSES

    def key(self) -> str:
        # "classes" enters the key only when it is not the default, so existing caches keep their keys
        return stable_hash({k: v for k, v in asdict(self).items()
                            if k != "workers" and not (k == "classes" and v == "trainval")})


def excluded_classes(raw: RawDataset, which: str = "trainval") -> set[int]:
    """xlsa17 classes kept out of the backbone's training set: none, or the validation classes."""
    if which not in SCRATCH_CLASSES:
        raise ZsgmError(f"--scratch-classes {which}: use one of {', '.join(SCRATCH_CLASSES)}")
    if which == "trainval":
        return set()
    if raw.val_classes is None:
        raise ZsgmError(f"{raw.folder}: --scratch-classes train needs the validation classes, and this root "
                        f"has none (no val_loc in the split file, no valclasses1.txt beside it or in "
                        f"xlsa17_classes/)")
    return {int(c) for c in raw.val_classes}


def trained_classes(raw: RawDataset, which: str = "trainval") -> list[int]:
    """The xlsa17 classes the backbone is trained on (sorted)."""
    return sorted({raw.records[p].cls for p in training_positions(raw, which)})


def training_positions(raw: RawDataset, which: str = "trainval") -> list[int]:
    """Positions (in ``raw.records``) of the trainval images (of the training classes only when
    ``which`` is "train"); asserts none is a test image."""
    skip = excluded_classes(raw, which)
    pos = [p for p, r in enumerate(raw.records) if raw.split_of(r.index) == "trainval_loc" and r.cls not in skip]
    test = set(np.concatenate([raw.split.locs[k] for k in TEST_SPLITS]).tolist())  # checked straight on the file
    leaked = [raw.records[p].path for p in pos if raw.records[p].index in test]
    assert not leaked, f"test images in the training set: {leaked[:3]}"
    if not pos:
        raise ZsgmError(f"{raw.folder}: no trainval images among the classes present"
                        + (" outside the validation classes" if skip else "")
                        + "; from-scratch training needs at least one seen class"
                        + (" that is not a validation class (or --scratch-classes trainval)" if skip else ""))
    return pos


def train(raw: RawDataset, backbone: str, cfg: ScratchConfig, work: Path, device: torch.device,
          rank: int = 0, world_size: int = 1, progress: bool = True) -> Path:
    """Train (or resume) and return the path of the trained weights (timm key layout)."""
    out = work / "scratch_weights.safetensors"
    ckpt_path = work / "scratch_checkpoint.pt"
    pos = training_positions(raw, cfg.classes)
    classes = sorted({raw.records[p].cls for p in pos})
    left_out = sorted(excluded_classes(raw, cfg.classes) & set(raw.classes))
    log.info("scratch training on %d trainval images of %d classes (%s)%s", len(pos), len(classes), cfg.classes,
             f"; the {len(left_out)} validation classes present are left out" if cfg.classes == "train" else "")
    remap = {c: j for j, c in enumerate(classes)}
    labels = torch.full((len(raw.records),), -1, dtype=torch.long)
    labels[pos] = torch.tensor([remap[raw.records[p].cls] for p in pos])
    seed_everything(cfg.seed + rank)
    model = backbones.create(backbone, num_classes=len(classes), img_size=cfg.img_size)
    data_cfg = backbones.data_config(model, img_size=cfg.img_size)
    images = ImageList(raw.records, backbones.train_transform(data_cfg), allowed=set(pos))
    subset = Subset(images, pos)
    sampler = DistributedSampler(subset, world_size, rank, shuffle=True, seed=cfg.seed) if world_size > 1 else None
    gen = torch.Generator().manual_seed(cfg.seed)
    workers = cfg.workers if cfg.workers >= 0 else max(0, min(4, (torch.get_num_threads() or 1) - 1))
    loader = DataLoader(subset, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=workers, drop_last=len(subset) > cfg.batch_size * world_size,
                        generator=gen, pin_memory=device.type == "cuda")
    model.to(device)
    opt = create_optimizer_v2(model, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched, _ = create_scheduler_v2(opt, sched=cfg.sched, num_epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs,
                                   step_on_epochs=True)
    start = _resume(ckpt_path, cfg, model, opt, sched)
    net = model
    if world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    use_amp = device.type == "cuda"
    # without a bar (output redirected): a line per epoch, and within a long one a line at most every 30 s
    epochs_log = ProgressLog("scratch epoch", cfg.epochs, start=start, every=0.0, enabled=rank == 0)
    for epoch in range(start, cfg.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        net.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"scratch epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                   disable=not progress or rank != 0, dynamic_ncols=True, leave=False)
        batches = ProgressLog(f"scratch epoch {epoch + 1}/{cfg.epochs}: batch", len(loader),
                              enabled=not progress and rank == 0, first=False, last=False)
        for step, (x, idx, ok, err) in enumerate(bar, 1):
            if not bool(ok.all()):
                i = int(idx[~ok][0])
                raise ZsgmError(f"cannot decode training image {raw.records[i].path} ({err[int((~ok).nonzero()[0])]})")
            x, y = x.to(device, non_blocking=True), labels[idx].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, count = total + float(loss.detach()) * len(y), count + len(y)
            bar.set_postfix(loss=f"{total / max(count, 1):.3f}")
            batches.step(step, f"loss {total / max(count, 1):.4f}")
        sched.step(epoch + 1)
        epochs_log.step(epoch + 1, f"loss {total / max(count, 1):.4f} ({count} images on rank {rank})")
        if rank == 0:
            atomic_torch_save({"key": cfg.key(), "epoch": epoch, "model": model.state_dict(),
                               "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                               "rng": rng_state()}, ckpt_path)
        if world_size > 1:
            torch.distributed.barrier()
    if rank == 0:
        with atomic_path(out) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp),
                      metadata={"backbone": backbone, "classes": str(classes), "config": str(asdict(cfg))})
    if world_size > 1:
        torch.distributed.barrier()
    return out


def _resume(path: Path, cfg: ScratchConfig, model, opt, sched) -> int:
    if not path.is_file():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("key") != cfg.key():
        log.info("scratch checkpoint %s is from another configuration; starting afresh", path)
        return 0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    log.info("resuming scratch training after epoch %d from %s", state["epoch"] + 1, path)
    return int(state["epoch"]) + 1
