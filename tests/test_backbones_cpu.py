"""The backbone table in miniature (``zsgm tables --exp backbones_cpu``): its plan, the "what
generation adds" column, the pretrained-vs-scratch plot, and a tiny slice of it end to end on a small
CUB layout, where the scratch backbone is shown never to have seen a validation or unseen image."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures_images import make_cub
from zsgm.evaluate.tables import GAIN, TableSpec, build_table, to_latex, to_markdown
from zsgm.pipelines.grid import load_experiment


def test_the_miniature_plan(tmp_path):
    plan = load_experiment("backbones_cpu", sets={"data_root": str(tmp_path)})
    assert plan.budget == "cpu"
    ex = {(c.params["backbone"], c.params["data"]): c.params for c in plan.extract_cells}
    assert len(ex) == 8 and {d for _, d in ex} == {"cub", "flo"}
    lite = ex[("tf_efficientnet_lite0", "cub")]
    assert not lite["scratch"] and "img_size" not in lite and lite["tag"] == "cpu"  # its own 224 px
    for bb in ("convnext_tiny", "swin_tiny_patch4_window7_224"):
        p = ex[(bb, "flo")]
        # from scratch on the training classes only (the validation classes left out), at the CPU schedule
        assert p["scratch"] and p["train"]["classes"] == "train" and p["img_size"] == p["train"]["img_size"] == 112
    vit = ex[("vit_base_patch32_224", "cub")]  # its own resolution over the experiment's, the rest shared
    assert vit["img_size"] == vit["train"]["img_size"] == 128 and vit["train"]["epochs"] == 12
    cells = plan.gzsl_cells
    assert len(cells) == (8 + 1) * 3 * 3  # (4 backbones x 2 datasets + CUB-50) x 3 configurations x 3 seeds
    cub50 = [c for c in cells if c.labels.get("dataset") == "cub50"]
    assert len(cub50) == 9 and all(c.params["features"] == str((tmp_path / "features" / "cub50_lite0.safetensors").resolve())
                                   for c in cub50)
    assert all(c.missing for c in cub50)  # not at hand under tmp_path
    scratch = next(c for c in cells if c.labels.get("backbone") == "convnext_tiny")
    assert scratch.params["backbone"] == "convnext_tiny_scratch_cpu"
    # the CPU budget (configs/budgets.yaml) under the experiment's own settings
    cramer = next(c for c in cells if c.params["model"] == "cramer")
    assert cramer.params["epochs"] == 20 and cramer.params["hp"]["critic_iters"] == 2
    assert load_experiment("backbones_cpu", budget="seed").gzsl_cells[0].params["epochs"] is None


def _rec(backbone, weights, variant, seed, H, dataset="cub"):
    return {"dataset": dataset, "backbone": backbone, "pretrained": weights, "variant": variant, "seed": seed,
            "selection": "validation", "status": "ok", "U": H, "S": H, "H": H}


def test_gain_column_is_h_minus_the_baseline_of_the_same_block(tmp_path):
    spec = TableSpec.from_dict({"name": "t", "rows": ["backbone", "pretrained", "variant"], "columns": ["dataset"],
                                "metrics": ["H"], "gain": {"field": "variant", "baseline": "ridge"}})
    recs = []
    for seed, (r1, c1, r2, c2) in enumerate([(50, 55, 20, 30), (52, 53, 22, 28)]):
        recs += [_rec("lite0", "pretrained", "ridge", seed, r1), _rec("lite0", "pretrained", "cramer", seed, c1),
                 _rec("vit", "scratch", "ridge", seed, r2), _rec("vit", "scratch", "cramer", seed, c2)]
    table = build_table(spec, recs)
    gain = table.cells[(("lite0", "pretrained", "cramer", "validation"), ("cub",), GAIN)]
    assert gain.values == [5.0, 1.0]                          # paired by seed, within the lite0 block
    vit = table.cells[(("vit", "scratch", "cramer", "validation"), ("cub",), GAIN)]
    assert vit.values == [10.0, 6.0]                          # never against another backbone's ridge
    assert (("lite0", "pretrained", "ridge", "validation"), ("cub",), GAIN) not in table.cells
    md = to_markdown(table)
    assert "H − ridge" in md and "+3.0 ± 2.8 (n=2)" in md and "what generation adds" in md
    assert "H − ridge" in to_latex(table)


def test_pretrained_vs_scratch_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from zsgm.evaluate import plots

    spec = TableSpec.from_dict({"name": "t", "rows": ["backbone", "pretrained", "variant"], "columns": ["dataset"],
                                "metrics": ["H"]})
    recs = [_rec(bb, w, v, s, h + s, ds) for bb, w, h in (("lite0", "pretrained", 50), ("vit", "scratch", 20))
            for v in ("ridge", "cramer") for s in (0, 1) for ds in ("cub", "flo")]
    out = plots.pretrained_vs_scratch(build_table(spec, recs), tmp_path / "p.png")
    assert out.is_file() and out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_a_tiny_slice_end_to_end_never_trains_on_validation_or_unseen_images(tmp_path, monkeypatch):
    """Extraction cell (scratch, training classes only) → cache → GZSL → table with the gain column."""
    import zsgm.extract.job
    import zsgm.pipelines.gzsl
    from zsgm.extract.featureset import FeatureSet
    from zsgm.extract.layouts import open_root
    from zsgm.evaluate.records import read_records
    from zsgm.pipelines.runner import LocalExecutor, run_plan
    from zsgm.pipelines.verbs.tables import write_tables

    fx = make_cub(tmp_path / "root")  # present: 2 training, 2 validation, 2 unseen classes
    monkeypatch.setattr(zsgm.extract.job, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(zsgm.pipelines.gzsl, "PROJECT_ROOT", tmp_path)
    seen_images = []
    real_train = zsgm.extract.scratch.train

    def watched(raw, *a, **k):  # every image the backbone's training set may open
        from zsgm.extract import scratch

        seen_images.extend(raw.records[p] for p in scratch.training_positions(raw, "train"))
        return real_train(raw, *a, **k)

    monkeypatch.setattr(zsgm.extract.job.training, "train", watched)
    exp = tmp_path / "mini.yaml"
    exp.write_text(f"""
budget: cpu
base: {{selection: fixed, data_root: {tmp_path / 'root'}, epochs: 2, clf_hp: {{epochs: 2, min_steps: 5}}}}
grid: {{data: [cub]}}
variants:
  - {{name: "cramer+tricks", set: {{model: cramer, classifier: prototype, noise: "on", hp: {{n_synth: 5, hidden: 16, batch_size: 8}}}}}}
  - {{name: ridge, set: {{model: ridge, classifier: prototype, noise: "off"}}}}
backbones: [{{name: resnet10t, weights: [scratch]}}]
extract: {{tag: t, engine: {{workers: 0, batch_size: 8}}, dtype: float32,
           scratch: {{img_size: 32, train: {{epochs: 1, batch_size: 4, img_size: 32, classes: train, workers: 0,
                                            warmup_epochs: 0}}}}}}
tables: [{{name: mini, rows: [backbone, pretrained, variant], columns: [dataset], metrics: [H],
          gain: {{field: variant, baseline: ridge}}}}]
""")
    plan = load_experiment(str(exp))
    summary = run_plan(plan, LocalExecutor(1), store=tmp_path / "runs.jsonl", runs_dir=tmp_path / "runs")
    assert (summary.ran, summary.failed) == (3, 0), summary.errors
    cache = tmp_path / "data" / "features" / "cub" / "resnet10t_scratch_t.safetensors"
    fs = FeatureSet.load(cache)
    raw = open_root("cub", tmp_path / "root")
    val, unseen = fx.info["val"], set(range(raw.spec.n_classes)) - fx.info["seen"]
    assert seen_images and not {r.cls for r in seen_images} & (val | unseen)
    assert all(raw.split_of(r.index) == "trainval_loc" for r in seen_images)
    trained = json.loads(fs.meta["scratch_trained_classes"])
    assert trained and not set(trained) & {raw.class_names[c] for c in val | unseen}
    recs = read_records(tmp_path / "runs.jsonl")
    # one random-weight epoch gives no usable features: a degenerate run is recorded as collapsed, not failed
    assert len(recs) == 2 and all(r["status"] in ("ok", "collapsed") for r in recs)
    md = write_tables(plan, recs, tmp_path / "tables")[0]
    assert "H − ridge" in md and (tmp_path / "tables" / "mini.tex").is_file()
    # Rerunning the command skips finished cells.
    assert run_plan(load_experiment(str(exp)), LocalExecutor(1), store=tmp_path / "runs.jsonl",
                    runs_dir=tmp_path / "runs").ran == 0
