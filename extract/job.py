"""One extraction job, as ``zsgm extract`` runs it: check inputs, (train), extract, write.

Everything that can fail on bad input fails before the first image is decoded: the dataset
root and its alignment, the backbone name, the weights. An existing output whose
provenance (dataset, image list, backbone, weights, transform, dtype) matches is reused;
any mismatch rebuilds it.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from zsgm.extract import assemble, backbones, extractor, gpu_decode
from zsgm.extract import scratch as training
from zsgm.extract import weights as wts
from zsgm.core.device import pick_device
from zsgm.core.errors import ZsgmError
from zsgm.core.files import sha256_file, stable_hash
from zsgm.core.logs import log
from zsgm.core.project import PROJECT_ROOT, versions
from zsgm.extract.featureset import FeatureSet
from zsgm.extract.layouts import open_root

DTYPES = {"float16": torch.float16, "float32": torch.float32}


@dataclass
class ExtractRequest:
    data: str
    backbone: str
    data_root: str | None = None
    weights: str | None = None
    scratch: bool = False
    random_init: bool = False       # random weights: for timing and plumbing only
    offline: bool = False           # never download weights (as HF_HUB_OFFLINE=1)
    out: str | None = None
    img_size: int | None = None
    dtype: str = "float16"
    force: bool = False
    classes: list[str] | None = None  # a subset of the classes present
    device: str = "auto"
    keep_work: bool = False
    engine: extractor.EngineConfig = field(default_factory=extractor.EngineConfig)
    train: training.ScratchConfig = field(default_factory=training.ScratchConfig)

    @property
    def mode(self) -> str:
        return "scratch" if self.scratch else "random" if self.random_init else "pretrained"


def default_output(data: str, backbone: str, mode: str = "pretrained", scratch_classes: str = "trainval") -> Path:
    suffix = {"pretrained": "", "scratch": "_scratch", "random": "_random"}[mode]
    if mode == "scratch" and scratch_classes != "trainval":  # beside the default scratch cache, not over it
        suffix += f"_{scratch_classes}"
    return PROJECT_ROOT / "data" / "features" / data.lower() / f"{backbone}{suffix}.safetensors"


def work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.work"


def _dist() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()


def _existing_key(out: Path) -> str | None:
    if not out.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(out), "pt") as fh:
            return (fh.metadata() or {}).get("provenance_key")
    except Exception:  # unreadable: rebuild
        return None


def run(req: ExtractRequest) -> Path:
    if req.dtype not in DTYPES:
        raise ZsgmError(f"--dtype {req.dtype}: use one of {', '.join(DTYPES)}")
    if req.scratch and (req.weights or req.random_init):
        raise ZsgmError("--scratch trains its own weights; drop --weights / --random-init")
    if req.train.classes != "trainval" and not req.scratch:
        raise ZsgmError(f"--scratch-classes {req.train.classes} chooses what --scratch trains on; add --scratch")
    rank, world = _dist()
    device = pick_device(req.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    arch, _ = backbones.split_name(req.backbone)
    backbones.check_name(arch)  # a typo in the name is reported before the dataset is looked for
    raw = open_root(req.data, req.data_root, req.classes)
    if req.scratch:  # no validation classes for --scratch-classes train, or no class to train on: fail now
        training.training_positions(raw, req.train.classes)
    resolved = None if req.scratch or req.random_init else wts.resolve(req.backbone, req.weights, req.offline)
    cfg_name = f"{arch}.{resolved.tag}" if resolved and resolved.tag else req.backbone
    torch.manual_seed(req.train.seed)  # --random-init gives the same weights every run
    model = backbones.create(req.backbone, num_classes=0, img_size=req.img_size)
    data_cfg = backbones.data_config(model, None if req.scratch or req.random_init else cfg_name, req.img_size)
    transform = backbones.eval_transform(data_cfg)
    if req.engine.draft == -1:  # --fast-decode: decode no smaller than the transform's resize
        req.engine.draft = int(math.ceil(data_cfg["input_size"][-1] / data_cfg.get("crop_pct", 1.0)))
    # resolved before the provenance key: the decoder changes the pixels a little
    req.engine.decode = gpu_decode.resolve_decoder(req.engine.decode, device, req.engine.draft, transform)
    out = Path(req.out) if req.out else default_output(req.data, arch, req.mode, req.train.classes)
    weights_id = (resolved.sha256() if resolved else
                  f"scratch:{req.train.key()}" if req.scratch else f"random:seed{req.train.seed}")
    prov = {"dataset": raw.spec.name, "images": raw.image_list_hash(), "backbone": req.backbone,
            "weights": weights_id, "transform": repr(transform), "dtype": req.dtype,
            "img_size": req.img_size, "mode": req.mode, "draft": req.engine.draft}
    if req.engine.decode != "pil":  # PIL-decoded caches keep the keys they had before the GPU decoder
        prov["decode"] = req.engine.decode
    if req.scratch and req.train.classes != "trainval":  # cub and cub_sent share features only if they agree
        prov["trained_classes"] = training.trained_classes(raw, req.train.classes)
    key = stable_hash(prov, 16)
    old = _existing_key(out)
    if old == key and not req.force:
        log.info("%s is up to date (same dataset, images, backbone, weights and transform); --force rebuilds", out)
        return out
    if old is not None:
        log.info("%s was built from other inputs (provenance differs); rebuilding", out)
    if world == 1 and not req.force and (shared := _same_images(raw, req, prov, arch, out)) is not None:
        # cub and cub_sent: the same images under the same backbone, only the class semantics differ
        return _derive(raw, req, shared, key, out)
    work = work_dir(out)
    extractor.prepare_work_dir(work, key, rank)
    if world > 1:
        torch.distributed.barrier()
    eng = req.engine
    eng.device, eng.rank, eng.world_size = device, rank, world
    t0 = time.perf_counter()
    if req.scratch:
        trained = training.train(raw, req.backbone, req.train, work, device, rank, world, eng.progress)
        resolved = wts.Weights(req.backbone, "scratch", trained, None)
    if resolved is not None:
        wts.load_into(model, resolved)
    log.info("extracting %d images of %s with %s (%s, %s) on %s", len(raw.records), raw.spec.name,
             req.backbone, req.mode, data_cfg, device)
    got = extractor.run(raw.records, model, transform, work, eng)
    if got is None:  # not rank 0: rank 0 writes the output
        return out
    meta = _meta(raw, req, resolved, transform, data_cfg, key, got, time.perf_counter() - t0, device)
    fs = assemble.build(raw, got.features, got.ok, meta, DTYPES[req.dtype])
    fs.save(out)
    if req.scratch and resolved is not None:
        keep = out.with_name(out.stem + ".weights.safetensors")
        os.replace(resolved.path, keep)
    if not req.keep_work:
        extractor.clear_work_dir(work)
    if got.errors:
        log.warning("skipped %d unreadable image(s); they are listed in the output's 'skipped_images'",
                    len(got.errors))
    return out


def _same_images(raw, req: ExtractRequest, prov: dict, arch: str, out: Path) -> Path | None:
    """A FeatureSet of another dataset of the same folder (``cub`` ↔ ``cub_sent``) extracted from the same
    images, backbone, weights and transform: its provenance key is this one's with the other dataset name."""
    from zsgm.extract.specs import DATASETS

    for other in (s.name for s in DATASETS.values() if s.folder == raw.spec.folder and s.name != raw.spec.name):
        want = stable_hash({**prov, "dataset": other}, 16)
        cands = [default_output(other, arch, req.mode, req.train.classes)]
        if out.parent.name == raw.spec.name:  # the data/features/<data>/ layout under another root
            cands.append(out.parent.parent / other / out.name)
        for cand in cands:
            if _existing_key(cand) == want:
                return cand
    return None


# metadata a FeatureSet derives from its own content (set again by assemble / save)
_DERIVED_META = ("class_names", "image_files", "format", "n_classes_total", "n_classes", "partial", "xlsa17_classes")


def _derive(raw, req: ExtractRequest, source: Path, key: str, out: Path) -> Path:
    """This dataset's FeatureSet from ``source``'s features (no image is decoded again)."""
    src = FeatureSet.load(source, mmap_features=False)
    index = src.extra.get("xlsa17_index")
    if index is None:
        raise ZsgmError(f"{source}: no 'xlsa17_index' tensor; extract {raw.spec.name} with --force")
    row = {int(i): r for r, i in enumerate(index.tolist())}
    keep = torch.tensor([r.index in row for r in raw.records], dtype=torch.bool)
    feats = torch.zeros(len(raw.records), src.features.shape[1], dtype=src.features.dtype)
    pos = torch.nonzero(keep).ravel()
    feats[pos] = src.features[torch.tensor([row[raw.records[i].index] for i in pos.tolist()], dtype=torch.long)]
    meta = {k: v for k, v in src.meta.items() if k not in _DERIVED_META}
    meta.update({"dataset": raw.spec.name, "layout_notes": "; ".join(raw.notes), "provenance_key": key,
                 "features_from": str(source), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    fs = assemble.build(raw, feats, keep, meta, DTYPES[req.dtype])
    fs.save(out)
    log.info("%s: features of %s reused (same images, backbone, weights and transform; only the class "
             "semantics differ): no image decoded", out, source)
    return out


def _meta(raw, req: ExtractRequest, resolved, transform, data_cfg, key: str, got, seconds: float,
          device) -> dict[str, str]:
    files = raw.image_files()
    return {
        "dataset": raw.spec.name, "layout": raw.layout, "layout_notes": "; ".join(raw.notes),
        "backbone": req.backbone, "pretrained": {"pretrained": "imagenet"}.get(req.mode, req.mode),
        "weights": resolved.label if resolved else "random init",
        # the pretrained tag used (timm's name.tag): tables and records name it; scratch/random have none
        "weights_tag": (resolved.tag or "") if resolved and resolved.source != "scratch" else "",
        "weights_name": resolved.tagged if resolved and resolved.source != "scratch" else req.mode,
        "weights_note": backbones.tag_note(resolved.tagged) if resolved and resolved.source != "scratch" else "",
        "weights_sha256": sha256_file(resolved.path) if resolved else "",
        "transform": repr(transform), "data_config": json.dumps(data_cfg, default=str),
        "image_list_hash": raw.image_list_hash(), "provenance_key": key,
        "code_version": versions()["zsgm"], "versions": json.dumps(versions()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "dtype": req.dtype, "device": str(device),
        "decode": req.engine.decode,
        "scratch_config": json.dumps(req.train.__dict__) if req.scratch else "",
        # which seen classes the scratch backbone saw: "trainval" (all, the validation classes too: validation
        # selection is then optimistic) or "train" (the validation classes left out); and their names
        "scratch_classes": req.train.classes if req.scratch else "",
        "scratch_trained_classes": json.dumps([raw.class_names[c] for c in
                                               training.trained_classes(raw, req.train.classes)])
        if req.scratch else "",
        "skipped_images": json.dumps(sorted(files[i] for i in got.errors)),
        "skipped_reasons": json.dumps({files[i]: e for i, e in sorted(got.errors.items())}),
        "extract_seconds": f"{seconds:.2f}",
        "images_per_s": f"{got.computed / got.seconds:.2f}" if got.computed and got.seconds else "",
    }
