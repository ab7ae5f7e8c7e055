"""The real-feature quality suite (``zsgm quality``, ``make quality``): the accuracy regression guard.

The standard configurations of ``configs/quality.yaml`` × seeds on every real FeatureSet at
hand (the bundled demo, the staged ``<data root>/features/*.safetensors``, any ``--features``),
selected on validation with the oracle beside it, run as one grid through the grid runner
(resumable: an interrupted suite picks up where it stopped the same day), then summarised as
mean ± std per FeatureSet and configuration, with the targets checked, into
``quality/results/<date>.md`` (and ``.json``).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from zsgm.evaluate.records import FINISHED, default_runs_dir, read_records, status_of
from zsgm.evaluate.tables import Stat
from zsgm.core.errors import ZsgmError
from zsgm.core.files import atomic_write_json, atomic_write_text
from zsgm.core.project import PROJECT_ROOT, shared_data_root
from zsgm.pipelines.config import CONFIG_DIR, RunConfig, budgets, load_yaml, resolve_budget, with_budget
from zsgm.pipelines.grid import Cell, Plan

log = logging.getLogger("zsgm.quality")
SUITE = CONFIG_DIR / "quality.yaml"
RESULTS = PROJECT_ROOT / "quality" / "results"
SELECTIONS = ("validation", "oracle")
METRICS = ("U", "S", "H", "zsl")


@dataclass
class QualityRequest:
    features: list[str] = field(default_factory=list)   # more FeatureSets besides the demo and the staged ones
    seeds: int | None = None                             # None: the suite's
    budget: str = "auto"                                 # auto: seed on CUDA, cpu otherwise
    configurations: list[str] | None = None              # names from the suite; None: all
    selections: tuple[str, ...] = SELECTIONS
    staged: bool = True                                  # include <data root>/features/*.safetensors
    demo: bool = True
    device: str = "auto"
    jobs: int = 1
    store: str | None = None                             # default quality/results/<date>.jsonl
    out: str | None = None                               # default quality/results/<date>.md
    run: bool = True                                     # False: render the report from the stored records only


def suite() -> dict:
    return load_yaml(SUITE)


def featuresets(req: QualityRequest) -> list[Path]:
    """The demo, the staged real FeatureSets, then ``--features``; each once."""
    from zsgm.pipelines.gzsl import demo_path

    paths: list[Path] = [demo_path()] if req.demo else []
    root = shared_data_root()
    if req.staged and root is not None:
        paths += sorted((root / "features").glob("*.safetensors"))
    for f in req.features:
        p = Path(f)
        if not p.is_file():
            raise ZsgmError(f"--features {f}: no such file; pass an existing FeatureSet")
        paths.append(p)
    seen, out = set(), []
    for p in paths:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            out.append(p)
    if not out:
        raise ZsgmError("no FeatureSet to measure: pass --features FILE (or keep the demo)")
    return out


def plan(req: QualityRequest) -> tuple[Plan, str, dict]:
    from zsgm.pipelines.config import dataset_layer

    spec = suite()
    budget = resolve_budget(req.budget, req.device)
    configs = spec["configurations"]
    if req.configurations:
        names = [c["name"] for c in configs]
        unknown = sorted(set(req.configurations) - set(names))
        if unknown:
            raise ZsgmError(f"--configurations: unknown {unknown}; the suite has {', '.join(names)}")
        configs = [c for c in configs if c["name"] in req.configurations]
    bad = sorted(set(req.selections) - set(SELECTIONS))
    if bad:
        raise ZsgmError(f"--selections: unknown {bad}; use {', '.join(SELECTIONS)}")
    from zsgm.pipelines.params import QUALITY, check_value

    seeds = req.seeds if req.seeds is not None else spec.get("seeds", 3)  # 0 is refused, never the default
    check_value(QUALITY["seeds"], seeds, "seeds", "--seeds")
    check_value(QUALITY["jobs"], req.jobs, "jobs", "--jobs")
    seeds = int(seeds)
    cells = []
    for path in featuresets(req):
        layer = dataset_layer(RunConfig(features=str(path)))
        for conf in configs:
            run = {k: v for k, v in conf.items() if k != "name"}
            for selection in req.selections:
                for seed in range(seeds):
                    cfg = RunConfig.from_dict(with_budget({**run, "features": str(path), "seed": seed,
                                                           "selection": selection, "device": req.device},
                                                          budget, layer), f"{SUITE}: {conf['name']}")
                    cells.append(Cell(cfg.run_id(), "gzsl", cfg.to_dict(),
                                      labels={"featureset": path.stem, "configuration": conf["name"]}))
    return Plan("quality", "real-feature quality suite", SUITE, cells, []), budget, spec


def run(req: QualityRequest) -> dict:
    from zsgm.pipelines.runner import LocalExecutor, run_plan

    from zsgm.evaluate.records import check_writable
    from zsgm.pipelines.params import check_output_file, check_path

    check_path(req.store, "--store")
    check_path(req.out, "--out")
    the_plan, budget, spec = plan(req)
    today = dt.date.today().isoformat()
    store = Path(req.store or RESULTS / f"{today}.jsonl")
    out = Path(req.out or RESULTS / f"{today}.md")
    # Every output proved writable before the first run: the store, the runs folder, the report and its JSON.
    if req.run:
        check_writable(store, default_runs_dir())
    check_output_file(out, "--out")
    check_output_file(out.with_suffix(".json"), "--out (its .json beside it)")
    log.info("quality suite: %d run(s), budget '%s', store %s", len(the_plan.cells), budget, store)
    summary = run_plan(the_plan, LocalExecutor(req.jobs), store=store) if req.run else None
    # the latest result of each id; a collapsed run is a result too (counted, and ≈ 0), a failed one is not
    by_id = {r["id"]: r for r in read_records(store) if status_of(r) in FINISHED}
    rows = []
    for cell in the_plan.cells:
        rec = by_id.get(cell.id)
        if rec is not None:
            rows.append({**cell.labels, **{k: rec.get(k) for k in (*METRICS, "selection", "seed", "seconds",
                                                                   "epochs", "gamma", "reseeds", "n_classes")},
                         "H_gamma_on_test": (rec.get("gamma_on_test") or {}).get("H")})
    report = summarise(rows, spec, budget)
    shown = store.resolve().relative_to(PROJECT_ROOT) if store.resolve().is_relative_to(PROJECT_ROOT) else store
    report.update(date=today, store=str(shown), runs=summary.line() if summary else "none (report only)",
                  errors=summary.errors if summary else {})
    atomic_write_text(out, to_markdown(report))
    atomic_write_json(out.with_suffix(".json"), report)
    report["markdown"] = str(out)
    return report


def _stat(values: list[float]) -> dict:
    stat = Stat([float(v) for v in values if v is not None])  # the tables' cell statistics
    return {"mean": stat.mean, "std": stat.std if stat.std is not None else (0.0 if stat.n else None), "n": stat.n}


def summarise(rows: list[dict], spec: dict, budget: str) -> dict:
    """Mean ± std per (FeatureSet, configuration, selection); targets checked."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["featureset"], r["configuration"], r["selection"]), []).append(r)
    cells = {}
    for (fs, conf, sel), rs in groups.items():
        cells.setdefault(fs, {}).setdefault(conf, {})[sel] = {
            **{m: _stat([r[m] for r in rs]) for m in METRICS},
            "H_gamma_on_test": _stat([r.get("H_gamma_on_test") for r in rs]),  # validation runs only
            "seconds": round(sum(r["seconds"] or 0 for r in rs), 1), "seeds": sorted(r["seed"] for r in rs),
            "n_classes": rs[0]["n_classes"]}
    return {"budget": budget, "budget_spec": budgets().get(budget, {}), "cells": cells,
            "targets": check_targets(cells, spec.get("targets", {}))}


def _mean(cells: dict, fs: str, conf: str, sel: str = "validation", metric: str = "H") -> float | None:
    return cells.get(fs, {}).get(conf, {}).get(sel, {}).get(metric, {}).get("mean")


def check_targets(cells: dict, targets: dict) -> list[dict]:
    """Per FeatureSet (``targets.featuresets.<name>``): its configuration's validation H at least ``H``,
    and at least ``over[other]`` above each other configuration; every configuration's validation H
    within ``targets.oracle_gap`` of its oracle."""
    out = []
    for fs in cells:
        t = (targets.get("featuresets") or {}).get(fs) or {}
        main = t.get("configuration", "cramer+tricks")
        h = _mean(cells, fs, main)
        if h is not None and "H" in t:
            out.append({"featureset": fs, "target": f"{main} H >= {t['H']}", "value": round(h, 2),
                        "met": h >= t["H"]})
        for other, margin in (t.get("over") or {}).items():
            o = _mean(cells, fs, other)
            if h is not None and o is not None:
                out.append({"featureset": fs, "target": f"{main} H >= {other} " + (f"+ {margin}" if margin else "H"),
                            "value": round(h - o, 2), "met": h - o >= margin})
        for conf in cells[fs]:
            v, o = _mean(cells, fs, conf), _mean(cells, fs, conf, "oracle")
            if v is not None and o is not None and "oracle_gap" in targets:
                out.append({"featureset": fs, "target": f"{conf}: validation H within {targets['oracle_gap']} "
                                                        f"of the oracle", "value": round(o - v, 2),
                            "met": o - v <= targets["oracle_gap"]})
    return out


def _fmt(stat: dict | None) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}"


def to_markdown(report: dict) -> str:
    lines = [f"# Quality suite, {report.get('date', '')}", "",
             f"Budget **{report['budget']}**: `{json.dumps(report['budget_spec'])}` over each dataset's own layer "
             f"(configs/datasets/). Selection on validation classes; the oracle (best epoch and γ chosen "
             f"on test) is shown beside it and is not a result, as is 'H, γ on test' (the validation-selected "
             f"runs' own scores with γ picked on test: of the oracle's lead, what calibration loses is this minus "
             f"H, the rest is the epoch choice and the retraining). Mean ± std over the seeds listed.", ""]
    for fs, confs in report["cells"].items():
        n_classes = next(iter(next(iter(confs.values())).values()))["n_classes"]
        lines += [f"## {fs} ({n_classes} classes)", "",
                  "| configuration | seeds | U | S | H | ZSL | H, γ on test | oracle H | oracle − val | seconds |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for conf, sels in confs.items():
            v, o = sels.get("validation", {}), sels.get("oracle", {})
            gap = (o["H"]["mean"] - v["H"]["mean"]) if v and o else None
            lines.append(f"| {conf} | {len(v.get('seeds', o.get('seeds', [])))} | {_fmt(v.get('U'))} | "
                         f"{_fmt(v.get('S'))} | {_fmt(v.get('H'))} | {_fmt(v.get('zsl'))} | "
                         f"{_fmt(v.get('H_gamma_on_test'))} | {_fmt(o.get('H'))} | "
                         f"{'–' if gap is None else f'{gap:+.1f}'} | "
                         f"{v.get('seconds', 0) + o.get('seconds', 0):.0f} |")
        lines.append("")
    if report["targets"]:
        lines += ["## Targets", "", "| FeatureSet | target | value | met |", "|---|---|---|---|"]
        lines += [f"| {t['featureset']} | {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |"
                  for t in report["targets"]]
        lines.append("")
    if report.get("runs"):
        lines += [f"Runs: {report['runs']}; records in `{report.get('store')}`.", ""]
    return "\n".join(lines)
