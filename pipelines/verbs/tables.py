"""``zsgm tables``: run (or resume) an experiment grid, then render its comparison tables.

Tables go to ``results/tables/<name>.{md,csv,tex}`` (written atomically) and the
Markdown is printed; plots go to ``results/plots/`` when matplotlib is installed (with ``--out DIR``:
the tables in DIR, the plots in DIR/plots/, so that two renderings never overwrite each other's).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from zsgm.pipelines.config import BUDGETS

HELP = "run/resume an experiment grid (local processes or Ray) and render its comparison tables"
log = logging.getLogger("zsgm.tables")
# What the eval_* entries of history.json (the run's last training) were measured on:
EVAL_LABELS = {
    "validation": "validation U / S / H per evaluation (the selection run, val_history.json)",
    "oracle": "test U / S / H per evaluation (ORACLE: the best of these was reported)",
    "fixed": "U / S / H per evaluation, as logged in history.json",
}


def add_arguments(p) -> None:
    p.add_argument("--exp", default="demo", help="experiment name under pipelines/configs/experiments/ "
                   "(demo, models, tricks, backbones) or a YAML path; default demo")
    p.add_argument("--seeds", type=int, help="run seeds 0..N-1 instead of the config's seeds")
    p.add_argument("--budget", choices=BUDGETS, help="run budget of every GZSL cell (pipelines/configs/budgets.yaml): "
                   "seed, cpu, or auto (seed on a GPU, cpu otherwise); default: the experiment's own (budget:), "
                   "else seed")
    # The same flags mean the same things as in zsgm gzsl: --set a model hyper-parameter, --clf-set a
    # classifier option; --cell a RunConfig field (what zsgm gzsl takes as typed flags).
    p.add_argument("--cell", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a RunConfig field of every cell (repeatable), e.g. --cell epochs=5, "
                        "--cell model=wgan; a grid axis given here is pinned to that value")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model hyper-parameter of every cell, as in zsgm gzsl, e.g. --set n_synth=100")
    p.add_argument("--clf-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a classifier option of every cell, as in zsgm gzsl, e.g. --clf-set epochs=10")
    p.add_argument("--executor", choices=("local", "ray"),
                   help="local processes (default) or Ray tasks (default when RAY_ADDRESS is set)")
    p.add_argument("--jobs", type=int, default=1, help="local processes running cells at once (default 1)")
    p.add_argument("--dry-run", action="store_true", help="list every cell, whether it is done, and the "
                   "inputs it lacks (features, images, weights); run nothing")
    p.add_argument("--no-run", action="store_true", help="render tables from the records already stored")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--out", help="folder for tables (default results/tables, plots in results/plots); with --out "
                                 "the plots go in DIR/plots/")
    p.add_argument("--strict", action="store_true", help="exit 1 when a cell failed")
    p.add_argument("--data-root", help="folder holding the dataset folders (default $ZSGM_DATA or data/); "
                                       "same as --cell data_root=DIR")
    p.add_argument("--device", help="auto | cpu | cuda[:N] for every cell; same as --cell device=...")
    p.add_argument("--gpus-per-cell", type=float, metavar="N",
                   help="GPUs each cell asks Ray for (a fraction shares one, e.g. 0.25); default: the "
                        "experiment's resources")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep finished cells' checkpoints (runs/<id>/*.pt); by default they are removed")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    from zsgm.pipelines import params

    # the verb's own flags first, before the experiment is read: a bad one is the command line's fault
    params.check_flags(args, params.TABLES)
    params.check_device(args.device)
    params.check_path(args.data_root, "--data-root")
    params.check_path(args.out, "--out")
    from zsgm.evaluate.records import default_store, finished_ids, read_records, results_dir
    from zsgm.core.logs import show_progress
    from zsgm.pipelines.grid import load_experiment, parse_sets
    from zsgm.pipelines.runner import make_executor, run_plan

    sets = parse_sets(args.cell, "--cell")
    for field, flag, items in (("hp", "--set", args.set), ("clf_hp", "--clf-set", args.clf_set)):
        if items:
            sets[field] = {**sets.get(field, {}), **parse_sets(items, flag)}
    for key, value in (("data_root", args.data_root), ("device", args.device)):
        if value is not None:
            sets[key] = value
    plan = load_experiment(args.exp, seeds=args.seeds, sets=sets, gpus_per_cell=args.gpus_per_cell,
                           budget=args.budget)
    if args.dry_run:
        print(dry_run_text(plan, finished_ids(read_records())))
        return 0
    summary = None
    if not args.no_run:
        summary = run_plan(plan, make_executor(args.executor, args.jobs), store=default_store(),
                           keep_checkpoints=args.keep_checkpoints, progress=show_progress(not args.no_progress))
    out = Path(args.out) if args.out else results_dir() / "tables"
    plots_dir = out / "plots" if args.out else results_dir() / "plots"
    texts = write_tables(plan, read_records(), out)
    for text in texts:
        print(text)
    if not args.no_plots:
        write_plots(plan, read_records(), plots_dir)
    if summary is not None:
        print(f"{plan.name}: {summary.line()}; tables in {out}", file=sys.stderr)
        for cid, err in summary.errors.items():
            print(f"  failed {cid}: {err}", file=sys.stderr)
    return 1 if args.strict and summary and summary.failed else 0


def dry_run_text(plan, done: set[str]) -> str:
    lines = [f"{plan.name}: {len(plan.gzsl_cells)} GZSL cell(s), {len(plan.extract_cells)} extraction cell(s) "
             f"({plan.source}), budget {plan.budget}"]
    from zsgm.pipelines.grid import extraction_output

    for cell in plan.cells:
        if cell.id in done or cell.kind == "extract" and extraction_output(cell).is_file():
            state = "done"
        elif cell.missing:
            state = "n/a (missing " + "; ".join(cell.missing) + ")"
        else:
            state = "to run"
        lines.append(f"  {cell.id:<20} {cell.describe():<60} {state}")
    n_missing = sum(bool(c.missing) for c in plan.cells)
    lines.append(f"{n_missing} cell(s) lack inputs; {sum(c.id in done for c in plan.cells)} done")
    return "\n".join(lines)


def write_tables(plan, records: list[dict], out: Path) -> list[str]:
    """Each table of the plan as .md, .csv and .tex under ``out``; returns the Markdown texts."""
    from zsgm.evaluate.tables import build_table, to_csv, to_latex, to_markdown
    from zsgm.core.files import atomic_write_text
    from zsgm.pipelines.runner import plan_rows

    recs, missing, order = plan_rows(plan, records)
    texts = []
    for spec in plan.tables:
        table = build_table(spec, recs, missing, order)
        md = to_markdown(table)
        for suffix, text in ((".md", md), (".csv", to_csv(table)), (".tex", to_latex(table))):
            atomic_write_text(out / f"{spec.name}{suffix}", text)
        texts.append(md)
    return texts


def write_plots(plan, records: list[dict], out: Path) -> list[Path]:
    """H bars per table; the seen–unseen curve and training curves of each row's first seed."""
    import json

    try:
        from zsgm.evaluate import plots
        plots._pyplot()
    except Exception as exc:  # the plots extra is optional
        log.warning("no plots: %s", exc)
        return []
    from zsgm.evaluate.tables import build_table
    from zsgm.evaluate.records import default_runs_dir
    from zsgm.pipelines.runner import plan_rows

    recs, missing, order = plan_rows(plan, records)
    written = []
    for spec in plan.tables:
        table = build_table(spec, recs, missing, order)
        if any(s.mean is not None for s in table.cells.values()):
            written.append(plots.h_bars(table, out / f"{spec.name}_H.png"))
            kinds = {str(rk[spec.rows.index("pretrained")]) for rk in table.row_keys} if "pretrained" in spec.rows else ()
            if {"pretrained", "scratch"} <= set(kinds) and spec.rows[-1] != "pretrained":
                written.append(plots.pretrained_vs_scratch(table, out / f"{spec.name}_pretrained_vs_scratch.png"))
    runs = default_runs_dir()
    firsts: dict[str, dict] = {}  # one run per row of the first table (its lowest finished seed)
    spec = plan.tables[0]
    datasets = {r.get("dataset") for r in recs}
    for r in sorted(recs, key=lambda r: r.get("seed") or 0):
        if r.get("status", "ok") != "failed":
            label = " / ".join(spec.names.get(str(r.get(k)), str(r.get(k))) for k in spec.rows)
            label += f" ({spec.names.get(str(r.get('dataset')), r.get('dataset'))})" if len(datasets) > 1 else ""
            firsts.setdefault(label, r)
    curves, points = {}, {}
    flat: list[str] = []  # rows whose run has no training curves (closed-form baselines): said once, not drawn
    for label, r in firsts.items():
        run_dir = Path(r["run_dir"]) if r.get("run_dir") and Path(r["run_dir"]).is_dir() else runs / r["id"]
        curve = plots.curve_from_run(run_dir)
        if curve is not None:
            curves[label], points[label] = curve, (r["U"], r["S"])
        # A validation run's selection evidence is its first training (losses and validation
        # U / S / H per evaluation); the retraining on trainval scores nothing until the end.
        hist = run_dir / "val_history.json"
        if not hist.is_file():
            hist = run_dir / "history.json"
        history = json.loads(hist.read_text()) if hist.is_file() else []
        if hist.is_file() and not plots.has_curves(history):
            flat.append(label)
        elif hist.is_file():
            raw = "_".join(str(r.get(k)) for k in (*spec.rows, "dataset"))
            name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "-" for ch in raw)
            written.append(plots.training_curves(
                history, out / f"{plan.name}_train_{name}.png",
                f"{label}, seed {r.get('seed')}", EVAL_LABELS.get(r.get("selection"), "U / S / H per evaluation")))
    if flat:
        log.info("no training-curve plot for %s: no losses or evaluations per epoch (closed form)", ", ".join(flat))
    if curves:
        written.append(plots.seen_unseen(curves, out / f"{plan.name}_seen_unseen.png",
                                         f"{plan.name}: test seen–unseen curves by calibrated stacking "
                                         f"(lowest seed of each row; dot = the run's chosen γ)", points))
    log.info("%d plot(s) in %s", len(written), out)
    return written
