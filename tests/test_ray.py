"""The Ray executor on a local Ray instance gives the same records as local execution."""
from __future__ import annotations

import os
import time

import pytest

ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed: pip install 'zsgm[cluster]'")

from zsgm.evaluate.records import read_records  # noqa: E402
from zsgm.pipelines.grid import load_experiment  # noqa: E402
from zsgm.pipelines.runner import LocalExecutor, RayExecutor, make_executor, run_plan  # noqa: E402
from test_runner import TINY  # noqa: E402  (the same tiny budgets as the local grid test)

NUMBERS = ("U", "S", "H", "zsl", "epochs", "gamma", "reseeds", "status")


pytestmark = pytest.mark.slow  # a local Ray instance started and grids run on it


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_matches_local(local_ray, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    plan = load_experiment("demo", seeds=2, sets={**TINY, "classifier": "prototype", "model": ["cramer", "ridge"]})
    assert len(plan.gzsl_cells) == 4
    t0 = time.perf_counter()
    local = run_plan(plan, LocalExecutor(1), store=tmp_path / "local.jsonl", runs_dir=tmp_path / "runs_local")
    t1 = time.perf_counter()
    remote = run_plan(plan, RayExecutor(), store=tmp_path / "ray.jsonl", runs_dir=tmp_path / "runs_ray")
    t2 = time.perf_counter()
    print(f"local {t1 - t0:.1f}s, ray {t2 - t1:.1f}s")
    assert (local.ran, local.failed, remote.ran, remote.failed) == (4, 0, 4, 0)
    a = {r["id"]: r for r in read_records(tmp_path / "local.jsonl")}
    b = {r["id"]: r for r in read_records(tmp_path / "ray.jsonl")}
    assert set(a) == set(b) == {c.id for c in plan.gzsl_cells}
    for rid in a:
        assert {k: a[rid].get(k) for k in NUMBERS} == {k: b[rid].get(k) for k in NUMBERS}, rid
    assert (tmp_path / "runs_ray" / next(iter(b)) / "history.json").is_file()
    # A second Ray pass resumes: nothing left to run.
    again = run_plan(plan, RayExecutor(), store=tmp_path / "ray.jsonl", runs_dir=tmp_path / "runs_ray")
    assert (again.ran, again.skipped) == (0, 4)


def test_ray_address_selects_ray(local_ray, monkeypatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert isinstance(make_executor(None, 2), RayExecutor)   # ray already initialised: reused
    monkeypatch.delenv("RAY_ADDRESS")
    assert isinstance(make_executor(None, 2), LocalExecutor)
    assert os.environ.get("RAY_ADDRESS") is None
