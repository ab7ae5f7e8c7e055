"""The study's tables: per-family backbone tables (marks within a family and a dataset block),
the models table (display names, a Source column, baselines shown but unmarked), per-model hp
in experiments, and GPUs per cell from the YAML and the command line."""
from __future__ import annotations

import pytest

from zsgm.evaluate.tables import BEST, SECOND, TableSpec, build_table, to_csv, to_latex, to_markdown
from zsgm.core.errors import ZsgmError
from zsgm.pipelines.config import RunConfig, resolve
from zsgm.pipelines.grid import load_experiment


def rec(seed=0, **kw) -> dict:
    return {"dataset": "awa1", "selection": "validation", "status": "ok", "seed": seed, **kw}


def _rows(md: str) -> dict[str, list[str]]:
    lines = [ln.strip("| ").split(" | ") for ln in md.splitlines() if ln.startswith("| ")]
    return {r[0]: r[1:] for r in lines[1:]} | {"__head__": lines[0]}


def test_models_table_baselines_unmarked_and_sources():
    plan = load_experiment("models", seeds=1)
    spec = plan.tables[0]
    assert set(spec.baselines) == {"ridge", "none"} and spec.sources["cramer"] == "Bellemare et al. 2017"
    records = [rec(model="ridge", U=90.0, S=90.0, H=90.0), rec(model="none", U=80.0, S=80.0, H=80.0),
               rec(model="cramer", U=60.0, S=70.0, H=64.6), rec(model="wgan", U=57.0, S=61.0, H=58.9),
               rec(model="vae", U=50.0, S=60.0, H=54.5)]
    table = build_table(spec, records)
    md = to_markdown(table)
    rows = _rows(md)
    assert rows["__head__"][:2] == ["Model", "Source"]
    ridge, cramer = rows["ridge (closed form) [baseline]"], rows["CramérGAN"]
    assert ridge[0] == "closed-form sanity line (this toolkit)" and cramer[0] == "Bellemare et al. 2017"
    # The baselines score highest here, yet the marks go to the generative models.
    assert not any(BEST in c or SECOND in c for c in ridge + rows["no generator [baseline]"])
    assert BEST in cramer[3] and SECOND in rows["WGAN-GP (f-CLSWGAN)"][3]
    assert "baselines unmarked" in md
    csv = to_csv(table)
    assert csv.splitlines()[0].startswith("model,selection,source,baseline,dataset")
    assert "ridge,validation,closed-form sanity line (this toolkit),1," in csv
    assert "Source" in to_latex(table)


def test_backbone_tables_are_per_family_with_marks_within_each():
    plan = load_experiment("backbones", seeds=1)
    assert [t.name for t in plan.tables] == ["backbones_convnext", "backbones_vit", "backbones_swin"]
    convnext, vit = plan.tables[0], plan.tables[1]
    records = []
    for bb, h in (("convnext_tiny", 50.0), ("convnext_base", 55.0), ("vit_base_patch16_224", 40.0),
                  ("vit_large_patch16_224", 45.0), ("swin_tiny_patch4_window7_224", 70.0)):
        for weights, delta in (("pretrained", 0.0), ("scratch", -20.0)):
            for ds in ("cub", "awa2"):
                records.append(rec(dataset=ds, backbone=bb, pretrained=weights, U=h + delta, S=h + delta,
                                   H=h + delta))
    t_conv, t_vit = build_table(convnext, records), build_table(vit, records)
    assert {rk[0] for rk in t_conv.row_keys} == {"convnext_tiny", "convnext_base"}
    assert {rk[0] for rk in t_vit.row_keys} == {"vit_base_patch16_224", "vit_large_patch16_224"}
    # Swin's 70 would win a merged table; here each family has its own best per dataset block.
    assert t_conv.marks[(("convnext_base", "pretrained", "validation"), ("cub",), "H")] == BEST
    assert t_conv.marks[(("convnext_tiny", "pretrained", "validation"), ("cub",), "H")] == SECOND
    assert t_vit.marks[(("vit_large_patch16_224", "pretrained", "validation"), ("awa2",), "H")] == BEST
    md = to_markdown(t_conv)
    assert "ConvNeXt-B" in md and "from scratch" in md and "Swin" not in md.split("*")[2]
    assert _rows(md)["__head__"][:2] == ["Backbone", "Weights"]


def test_where_filter_and_bad_specs():
    spec = TableSpec.from_dict({"name": "t", "rows": ["model"], "where": {"model": "cramer"}})
    assert spec.where == {"model": ("cramer",)}
    table = build_table(spec, [rec(model="cramer", U=1.0, S=1.0, H=1.0), rec(model="wgan", U=2.0, S=2.0, H=2.0)])
    assert [rk[0] for rk in table.row_keys] == ["cramer"]
    with pytest.raises(ZsgmError, match="'where' must map"):
        TableSpec.from_dict({"name": "t", "where": ["model"]})
    with pytest.raises(ZsgmError, match="'sources' must map"):
        TableSpec.from_dict({"name": "t", "sources": ["x"]})


def test_models_study_runs_the_fgans_with_the_studys_formulation():
    plan = load_experiment("models_study", seeds=1)
    hp = {c.params["model"]: c.params["hp"] for c in plan.gzsl_cells}
    fgans = [m for m in hp if m.startswith("fgan_")]
    assert len(fgans) == 6 and all(hp[m] == {"formulation": "study"} for m in fgans)
    # the study's settings for them are the shared defaults (GAN/fGAN.py: lr 1e-4, 5 critic steps,
    # noise size = attribute size, classification weight 0.01)
    for cell in plan.gzsl_cells:
        if cell.params["model"].startswith("fgan_"):
            g = resolve(RunConfig.from_dict(cell.params)).generator
            assert (g.lr, g.critic_iters, g.latent_dim, g.cls_weight) == (1e-4, 5, None, 0.01), cell.params["model"]
    assert hp["nsgan"] == {} and hp["cramer"] == {}
    assert all(c.params["selection"] == "oracle" for c in plan.gzsl_cells)
    # The command line still wins over model_hp; the study plan's cells differ from models' cells.
    pinned = load_experiment("models_study", seeds=1, sets={"hp": {"formulation": "paper"}, "model": "fgan_pearson"})
    assert [c.params["hp"]["formulation"] for c in pinned.gzsl_cells] == ["paper"]
    ids = {c.id for c in load_experiment("models", seeds=1).gzsl_cells}
    assert not ids & {c.id for c in plan.gzsl_cells}


def test_gpus_per_cell_from_yaml_and_cli(tmp_path):
    bb = load_experiment("backbones", seeds=1)
    assert {c.num_gpus for c in bb.gzsl_cells} == {0.25} and {c.num_gpus for c in bb.extract_cells} == {1.0}
    assert {c.num_cpus for c in bb.extract_cells} == {8.0}
    over = load_experiment("backbones", seeds=1, gpus_per_cell=0.5)
    assert {c.num_gpus for c in over.cells} == {0.5}
    assert {c.id for c in over.cells} == {c.id for c in bb.cells}   # resources are not identity
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {model: [ridge]}\nresources: {num_gpus: -1}\n")
    with pytest.raises(ZsgmError, match="num_gpus must be a number >= 0"):
        load_experiment(str(bad))
    bad.write_text("grid: {model: [ridge]}\nresources: {extract: {gpus: 1}}\n")
    with pytest.raises(ZsgmError, match="unknown key"):
        load_experiment(str(bad))
    bad.write_text("grid: {model: [ridge]}\nmodel_hp: {ridge: 3}\n")
    with pytest.raises(ZsgmError, match="model_hp"):
        load_experiment(str(bad))


class FakeRay:
    """Just enough of Ray for RayExecutor.map: records the resources each task asked for."""

    def __init__(self, gpus: float):
        self.gpus, self.asked = gpus, []

    def cluster_resources(self):
        return {"CPU": 4.0, **({"GPU": self.gpus} if self.gpus else {})}

    def remote(self, fn):
        ray = self

        class Task:
            def options(self, **kw):
                ray.asked.append(kw)
                return self

            def remote(self, cell, fn_spec, runs_dir):
                return cell.id   # an object ref stands in: hashable

        return Task()

    def wait(self, refs, num_returns=1):
        return refs[:1], refs[1:]

    def get(self, ref):
        return []


@pytest.mark.parametrize("gpus, want", [(0, 0.0), (8, 0.5)])
def test_ray_asks_for_the_cells_gpus_or_none_on_a_cpu_cluster(gpus, want):
    from zsgm.pipelines.runner import RayExecutor

    plan = load_experiment("demo", seeds=1, gpus_per_cell=0.5)
    ex = object.__new__(RayExecutor)
    ex.ray = FakeRay(gpus)
    done = []
    ex.map(plan.gzsl_cells, "x:y", None, lambda c, r: done.append(c.id))
    assert len(done) == len(plan.gzsl_cells)
    assert {kw["num_gpus"] for kw in ex.ray.asked} == {want}


def test_ray_refuses_more_gpus_than_the_cluster_has():
    from zsgm.pipelines.runner import RayExecutor

    plan = load_experiment("demo", seeds=1, gpus_per_cell=4)
    ex = object.__new__(RayExecutor)
    ex.ray = FakeRay(2)
    with pytest.raises(ZsgmError, match="--gpus-per-cell"):
        ex.map(plan.gzsl_cells, "x:y", None, lambda c, r: None)
