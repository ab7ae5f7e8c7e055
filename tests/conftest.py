"""Shared fixtures: the staged research data (skip where absent), an isolated results store."""
from __future__ import annotations

import os

import pytest

from zsgm.core.project import shared_data_root

# Tests never download: timm's hub is offline for the whole session (and every subprocess it starts).
# A test of the download path replaces the hub call and lifts this with monkeypatch.
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def shared_root():
    root = shared_data_root()
    if root is None:
        pytest.skip("the staged benchmark data (../shared/data or $ZSGM_DATA) is absent on this machine")
    return root


@pytest.fixture(autouse=True)
def isolated_results(tmp_path, monkeypatch):
    """Every test writes its records under its own tmp folder, never into the repository."""
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"
