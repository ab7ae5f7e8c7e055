"""Where the project and its data live, and the versions a record or a FeatureSet names."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_root(override: str | os.PathLike | None = None) -> Path:
    """The folder that holds one folder per dataset (``CUB/``, ``AWA2/`` ...).

    Precedence: explicit ``--data-root``, then ``$ZSGM_DATA``, then ``<project>/data``.
    """
    if override:
        return Path(override).expanduser()
    if os.environ.get("ZSGM_DATA"):
        return Path(os.environ["ZSGM_DATA"]).expanduser()
    return PROJECT_ROOT / "data"


def shared_data_root() -> Path | None:
    """The research data staged beside the repository (``../shared/data``), if present."""
    if os.environ.get("ZSGM_DATA"):
        p = Path(os.environ["ZSGM_DATA"])
        return p if p.is_dir() else None
    p = PROJECT_ROOT.parent / "shared" / "data"
    return p if p.is_dir() else None


def versions() -> dict:
    import platform

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    try:
        import timm

        out["timm"] = timm.__version__
    except ImportError:  # pragma: no cover - timm is a hard dependency
        pass
    out["zsgm"] = package_version()
    return out


def package_version() -> str:
    """zsgm's version, as installed (pyproject takes it from ``zsgm.__version__``); the ground floor
    reads the package's metadata rather than import the package above it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zsgm")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def git_info(root: Path | None = None) -> dict:
    """``{"commit": sha, "dirty": bool}`` of the checkout the code runs from, or ``{}`` where it is
    not one (an installed wheel) or git is absent. Dirty: tracked files differ from the commit
    (untracked files do not count)."""
    import subprocess

    root = Path(root or PROJECT_ROOT)
    if not (root / ".git").exists():
        return {}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": bool(status.strip())} if commit else {}


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: ")) and ":" in line:
                name = line.split(":", 1)[1].strip()
                if name and not name.isdigit():
                    return name
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_info(device: torch.device | str) -> dict:
    """The device a run actually used: ``{"type": "cuda", "name": <GPU>, "index": i}`` or
    ``{"type": "cpu", "name": <CPU model>}``, with torch's CPU thread count and the cores visible."""
    device = torch.device(device)
    out: dict = {"type": device.type}
    if device.type == "cuda" and torch.cuda.is_available():
        index = device.index if device.index is not None else torch.cuda.current_device()
        out.update(name=torch.cuda.get_device_name(index), index=index)
    else:
        out["name"] = cpu_model()
    out.update(threads=torch.get_num_threads(), cores=os.cpu_count() or 1)
    return out
