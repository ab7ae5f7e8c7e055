"""The grid runner: execute a :class:`~pipelines.grid.Plan` on local processes or Ray.

* Resume: a cell whose id has a finished record in the store is skipped; failed cells
  are retried on the next run (their old record stays: the store only appends).
* Failures: a cell that raises is recorded with ``status: failed`` and its error; the
  rest of the grid goes on.
* One writer: workers run each cell against a private scratch store and hand the
  records back; the driver appends them to the real store. So Ray workers on other
  machines need no shared results folder (``runs/<id>/`` stays where the worker ran).
* Determinism: every cell sets torch to ``num_cpus`` threads (1 by default) and seeds
  itself, so local processes, in-process runs and Ray give identical numbers.
* Order: extraction cells first; a GZSL cell whose extraction failed is reported, not run.
* Disk: a finished cell's checkpoints (``runs/<id>/*.pt``, hundreds of MB at the seed's
  budgets) are removed unless ``keep_checkpoints``; its history, per-class accuracies and
  scores stay. A failed or interrupted cell keeps them, so that a re-run resumes.
* GPUs: each Ray task asks for its cell's ``num_gpus`` (the YAML's ``resources``, or
  ``--gpus-per-cell``); on a cluster without GPUs the cells run on CPUs instead of waiting.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from zsgm.evaluate.records import append_record, default_runs_dir, finished_ids, latest_by_id, read_records
from zsgm.core.errors import ZsgmError
from zsgm.core.files import stable_hash
from zsgm.core.logs import logging_args, setup_logging
from zsgm.core.project import versions
from zsgm.pipelines.grid import Cell, Plan, annotate_missing, extraction_output

log = logging.getLogger("zsgm.runner")
GZSL_FN = "zsgm.pipelines.gzsl:run_gzsl"
EXECUTORS = ("local", "ray")


@dataclass
class Summary:
    ran: int = 0
    skipped: int = 0
    failed: int = 0
    missing: int = 0
    seconds: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)    # cell id -> error text

    def line(self) -> str:
        return (f"{self.ran} ran ({self.failed} failed), {self.skipped} already done, {self.missing} n/a "
                f"(missing inputs) in {self.seconds:.1f}s")


# ---------------------------------------------------------------- one cell (runs in a worker)
def _resolve(spec: str) -> Callable:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def execute_cell(cell: Cell, fn_spec: str, runs_dir: str | None) -> list[dict]:
    """Run one cell where it is called; return the records it produced (a failure is one too).

    Top-level and argument-only, so that spawn workers and Ray tasks can pickle it.
    """
    import torch

    threads = max(1, int(cell.num_cpus))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # same thread count on every executor: same float reductions
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        if cell.kind == "extract":
            run_extraction(cell)
            return []
        from zsgm.pipelines.config import RunConfig

        cfg = RunConfig.from_dict(cell.params, f"cell {cell.id}")
        with tempfile.TemporaryDirectory(prefix="zsgm-cell-") as tmp:
            store = Path(tmp) / "runs.jsonl"
            # run_gzsl drops a finished run's checkpoints itself unless told to keep them
            keep = {"keep_checkpoints": True} if cell.keep_checkpoints and fn_spec == GZSL_FN else {}
            returned = _resolve(fn_spec)(cfg, store=store, runs_dir=Path(runs_dir) if runs_dir else None,
                                         progress=cell.progress, **keep)
            records = read_records(store) or ([returned] if isinstance(returned, dict) else [])
        if not cell.keep_checkpoints and records and all(r.get("status", "ok") != "failed" for r in records):
            drop_checkpoints(Path(runs_dir) if runs_dir else default_runs_dir(), cell.id)
        for r in records:
            r.update({k: v for k, v in cell.labels.items() if k not in r})
        return records
    except Exception as exc:  # recorded, never raised: one bad cell must not stop the grid
        log.debug("cell %s failed", cell.id, exc_info=True)
        return [failed_record(cell, exc, time.perf_counter() - t0, started)]
    finally:
        torch.set_num_threads(previous)


def drop_checkpoints(runs_dir: Path, run_id: str) -> int:
    """Remove the checkpoints (``*.pt``) of a finished run ``runs_dir/<run_id>``; returns the bytes freed.

    The run's record, history, per-class accuracies and test scores stay; only what a resume
    would need goes (a finished run is never resumed: the grid skips it)."""
    freed = 0
    for p in sorted((Path(runs_dir) / run_id).glob("*.pt")):
        try:
            size = p.stat().st_size
            p.unlink()
            freed += size
        except FileNotFoundError:
            pass
    if freed:
        log.debug("%s: removed %.1f MB of checkpoints", run_id, freed / 2**20)
    return freed


def failed_record(cell: Cell, exc: BaseException, seconds: float, started: str) -> dict:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    row = cell.table_row() if cell.kind == "gzsl" else dict(cell.params)
    return {**row, "id": cell.id, "kind": cell.kind, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(tb[-3:]), "U": None, "S": None, "H": None, "zsl": None,
            "seconds": round(seconds, 2), "started": started, "versions": versions(), "config": cell.params}


def run_extraction(cell: Cell) -> Path:
    """Build the FeatureSet an extraction cell names, at the cache path its GZSL cells read."""
    from zsgm.extract import extractor, job, scratch

    p = dict(cell.params)
    engine = extractor.EngineConfig(**{"progress": cell.progress, **(p.pop("engine", None) or {})})
    train = scratch.ScratchConfig(**(p.pop("train", None) or {}))
    out = extraction_output(cell)
    p.pop("tag", None)
    return job.run(job.ExtractRequest(**p, out=str(out), engine=engine, train=train))


# ---------------------------------------------------------------- executors
class LocalExecutor:
    """In-process for one job (cheapest, same numbers); a spawn process pool for more."""

    def __init__(self, jobs: int = 1):
        self.jobs = max(1, int(jobs))

    def map(self, cells: list[Cell], fn_spec: str, runs_dir: str | None, on_done: Callable) -> None:
        if self.jobs == 1:
            for cell in cells:
                on_done(cell, execute_cell(cell, fn_spec, runs_dir))
            return
        # spawn: a fresh interpreter per worker (fork after torch threads start can deadlock).
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=get_context("spawn"),
                                 initializer=setup_logging, initargs=logging_args()) as pool:
            pending: dict[Future, Cell] = {pool.submit(execute_cell, c, fn_spec, runs_dir): c for c in cells}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    cell = pending.pop(fut)
                    try:
                        records = fut.result()
                    except Exception as exc:  # the worker process itself died (OOM, segfault)
                        records = [failed_record(cell, exc, 0.0, time.strftime("%Y-%m-%dT%H:%M:%S%z"))]
                    on_done(cell, records)


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ZsgmError("--executor ray needs Ray: pip install 'zsgm[cluster]' (or pip install 'ray[default]')") \
            from exc
    return ray


class RayExecutor:
    """Each cell a Ray task with its CPU/GPU needs. Connects to ``$RAY_ADDRESS`` when set,
    else starts a local instance (or reuses one already initialised, as tests do).
    The workers import zsgm, so it must be installed on every node of a cluster.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.ray = import_ray()
        if not self.ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS")
            kwargs = {"address": address} if address else {"num_cpus": num_cpus or os.cpu_count()}
            self.ray.init(log_to_driver=False, include_dashboard=False, **kwargs)

    def cluster_gpus(self) -> float:
        try:
            return float(self.ray.cluster_resources().get("GPU", 0))
        except Exception:  # an old or odd Ray: trust the cells' requests
            return float("inf")

    def map(self, cells: list[Cell], fn_spec: str, runs_dir: str | None, on_done: Callable) -> None:
        ray = self.ray
        task = ray.remote(execute_cell)
        gpus = self.cluster_gpus()
        if gpus <= 0 and any(c.num_gpus for c in cells):
            log.warning("the Ray cluster has no GPUs: running the cells on CPUs (asked for %g GPU(s) per cell)",
                        max(c.num_gpus for c in cells))
        elif any(c.num_gpus > gpus for c in cells):
            raise ZsgmError(f"a cell asks for {max(c.num_gpus for c in cells):g} GPUs but the Ray cluster has "
                            f"{gpus:g}; lower --gpus-per-cell (a fraction such as 0.25 shares a GPU)")

        def need(c: Cell) -> float:
            return c.num_gpus if gpus > 0 else 0.0

        pending = {task.options(num_cpus=c.num_cpus, num_gpus=need(c), max_retries=0).remote(c, fn_spec, runs_dir): c
                   for c in cells}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                cell = pending.pop(ref)
                try:
                    records = ray.get(ref)
                except Exception as exc:  # the task's worker died; the cell's own errors come back as records
                    records = [failed_record(cell, exc, 0.0, time.strftime("%Y-%m-%dT%H:%M:%S%z"))]
                on_done(cell, records)


def make_executor(executor: str | None = None, jobs: int = 1):
    name = executor or ("ray" if os.environ.get("RAY_ADDRESS") else "local")
    if name not in EXECUTORS:
        raise ZsgmError(f"--executor {name}: unknown; use one of {', '.join(EXECUTORS)}")
    return RayExecutor(num_cpus=None) if name == "ray" else LocalExecutor(jobs)


# ---------------------------------------------------------------- the grid
def run_plan(plan: Plan, executor=None, *, store: Path | None = None, runs_dir: Path | None = None,
             fn_spec: str = GZSL_FN, keep_checkpoints: bool = False, progress: bool = False) -> Summary:
    """Run every cell of ``plan`` not yet finished in ``store``; return what happened.

    ``progress`` draws the cells' tqdm bars where they run in this process (one local job);
    ``keep_checkpoints`` keeps finished cells' checkpoints."""
    t0 = time.perf_counter()
    executor = executor or LocalExecutor(1)
    in_process = isinstance(executor, LocalExecutor) and executor.jobs == 1
    for cell in plan.cells:
        cell.keep_checkpoints = bool(keep_checkpoints)
        cell.progress = bool(progress and in_process)
    runs = str(runs_dir or default_runs_dir())
    summary = Summary()
    done = finished_ids(read_records(store))

    # an extraction is needed while one of its GZSL cells is not done (a store of finished records, such as
    # a committed one, makes a rerun skip the hours of scratch training whose cells it already holds)
    wanted = {n for c in plan.gzsl_cells if c.id not in done for n in c.needs}
    extracts = [c for c in plan.extract_cells
                if c.id in wanted and not c.missing and not extraction_output(c).is_file()]
    failed_extracts: dict[str, str] = {}

    def on_extract(cell: Cell, records: list[dict]) -> None:
        summary.ran += 1
        if records:  # extraction returns nothing on success, a failed record otherwise
            summary.failed += 1
            failed_extracts[cell.id] = records[0]["error"]
            summary.errors[cell.id] = records[0]["error"]
            log.error("%s failed: %s", cell.describe(), records[0]["error"])
        else:
            log.info("%s done", cell.describe())

    if extracts:
        log.info("%s: %d extraction cell(s) first", plan.name, len(extracts))
        executor.map(extracts, fn_spec, runs, on_extract)
        annotate_missing(plan)  # features now built; failed ones keep what they lack
    latest = latest_by_id(read_records(store))
    todo: list[Cell] = []
    for cell in plan.gzsl_cells:
        if cell.id in done and stale_defaults(cell, latest[cell.id]):
            log.info("re-running %s: its model/dataset defaults changed since the stored record", cell.describe())
            todo.append(cell)
        elif cell.id in done:
            summary.skipped += 1
        elif broken := [n for n in cell.needs if n in failed_extracts]:
            # Recorded as failed (and retried on resume) so that the table says so.
            error = RuntimeError(f"its extraction cell {broken[0]} failed: {failed_extracts[broken[0]]}")
            append_record(failed_record(cell, error, 0.0, time.strftime("%Y-%m-%dT%H:%M:%S%z")), store)
            summary.failed += 1
            summary.errors[cell.id] = str(error)
        elif cell.missing:
            summary.missing += 1
            log.info("n/a %s: missing %s", cell.describe(), "; ".join(cell.missing))
        else:
            todo.append(cell)
    log.info("%s: %d cell(s) to run, %d already done, %d n/a", plan.name, len(todo), summary.skipped,
             summary.missing)
    total = len(todo)

    count = iter(range(1, total + 1))
    clock = time.perf_counter()

    def pace(k: int) -> str:
        """Elapsed since the first cell started and the time left at the pace so far."""
        from zsgm.core.logs import duration

        spent = time.perf_counter() - clock
        left = f", ETA {duration(spent / k * (total - k))}" if k < total else ""
        return f"; elapsed {duration(spent)}{left}"

    def on_gzsl(cell: Cell, records: list[dict]) -> None:
        summary.ran += 1
        k = next(count)
        for r in records:
            append_record(r, store)
        last = records[-1] if records else {"status": "failed", "error": "the cell returned no record"}
        if last.get("status") == "failed":
            summary.failed += 1
            summary.errors[cell.id] = last.get("error", "")
            log.error("[%d/%d] %s failed: %s%s", k, total, cell.describe(), last.get("error"), pace(k))
        else:
            log.info("[%d/%d] %s: U=%.2f S=%.2f H=%.2f (%.1fs)%s", k, total, cell.describe(),
                     last["U"], last["S"], last["H"], last.get("seconds") or 0.0, pace(k))

    if todo:
        executor.map(todo, fn_spec, runs, on_gzsl)
    summary.seconds = time.perf_counter() - t0
    return summary


def stale_defaults(cell: Cell, record: dict) -> bool:
    """True when the settings a cell would resolve now (shared < family < dataset YAML < overrides,
    the classifier's likewise) differ from those its stored record ran with.

    The run id hashes the RunConfig only, so without this check a change of a default in
    configs/models/*.yaml would leave old numbers standing as if they were current. A record of the
    untyped format (``hp``, before ``resolved``) cannot be compared: stale.
    """
    if "resolved" not in record:
        return "hp" in record
    try:
        from zsgm.pipelines.config import RunConfig, resolve

        now = resolve(RunConfig.from_dict(cell.params)).to_dict()
    except Exception:  # a config that cannot resolve fails when it runs, not here
        return False
    return stable_hash(json.loads(json.dumps(now, default=str))) != stable_hash(record["resolved"])


def plan_rows(plan: Plan, records: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """(records, missing, order) of the plan's GZSL cells, ready for ``evaluate.tables``.

    Each cell's latest record is taken, with the cell's display labels (variant, weights)
    laid over it so that tables group by what the experiment meant.
    """
    latest = latest_by_id(records)
    recs, missing, order = [], [], []
    for cell in plan.gzsl_cells:
        row = cell.table_row()
        if cell.id in latest:
            # The record knows better (e.g. the dataset of a --features file).
            row = {**latest[cell.id], **cell.labels}
            recs.append(row)
        order.append(row)
        if cell.id not in latest and cell.missing:
            missing.append({**row, "missing": cell.missing[0].split(" ")[0]})
    return recs, missing, order
