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
    from zsgm import __version__

    out["zsgm"] = __version__
    return out
