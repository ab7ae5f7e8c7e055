"""Table rendering from hand-written records: marks, ± std, seed counts, ordering, empty cells."""
from __future__ import annotations

import csv
import io

import pytest

from zsgm.evaluate.records import export_records, filter_records, finished_ids, parse_filters, read_records
from zsgm.evaluate.tables import BEST, SECOND, TableSpec, build_table, format_stat, render, to_csv, to_latex, to_markdown


def rec(model: str, dataset: str, seed: int, H: float, selection: str = "validation", status: str = "ok",
        classifier: str = "prototype") -> dict:
    U, S = H - 1, H + 1
    return {"id": f"{model}-{classifier}-{dataset}-{selection}-s{seed}", "model": model, "classifier": classifier,
            "dataset": dataset, "seed": seed, "selection": selection, "status": status,
            "U": None if status == "failed" else U, "S": None if status == "failed" else S,
            "H": None if status == "failed" else H, "zsl": None}


RECORDS = [
    rec("cramer", "awa2", 0, 60.0), rec("cramer", "awa2", 1, 62.0), rec("cramer", "awa2", 2, 64.0),
    rec("wgan", "awa2", 0, 55.0), rec("wgan", "awa2", 1, 57.0),
    rec("lsgan", "awa2", 0, 50.0), rec("lsgan", "awa2", 1, 0.0, status="failed"),
    rec("cramer", "cub", 0, 40.0), rec("wgan", "cub", 0, 45.0),
    rec("cramer", "awa2", 0, 70.0, selection="oracle"),
]
SPEC = TableSpec(name="t", title="Models", rows=("model",), columns=("dataset",), metrics=("U", "S", "H"),
                 names={"cramer": "CramerGAN", "awa2": "AWA2", "cub": "CUB"})


def _md_rows(text: str) -> dict[str, list[str]]:
    rows = [line.strip("| ").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    return {r[0]: r[1:] for r in rows[1:]}, rows[0]


def test_mean_std_seed_count_and_marks() -> None:
    table = build_table(SPEC, RECORDS)
    md = to_markdown(table)
    rows, head = _md_rows(md)
    assert head == ["Model", "AWA2 U", "AWA2 S", "AWA2 H", "CUB U", "CUB S", "CUB H"]
    assert list(rows) == ["CramerGAN", "wgan", "lsgan", "CramerGAN (oracle)"]     # first appearance
    # mean 62, sample std 2 over three seeds, best on AWA2 H among honest rows
    assert rows["CramerGAN"][2] == f"62.0 ± 2.0 (n=3) {BEST}"
    assert rows["wgan"][2] == f"56.0 ± 1.4 (n=2) {SECOND}"
    assert rows["lsgan"][2] == "50.0 ± – (n=1) +1 failed"
    # the oracle row is labelled, shown, and never marked even though its H is highest
    assert rows["CramerGAN (oracle)"][2] == "70.0 ± – (n=1)"
    # an empty cell (no run of lsgan on CUB) renders as a dash, not as zero
    assert rows["lsgan"][5] == "–"
    assert rows["wgan"][5] == f"45.0 ± – (n=1) {BEST}" and rows["CramerGAN"][5] == f"40.0 ± – (n=1) {SECOND}"
    assert "oracle" in table.caption.lower() and "validation classes" in table.caption
    assert "n = seeds" in table.caption


def test_order_follows_the_grid_and_missing_cells_say_why() -> None:
    order = [{"model": m, "dataset": d} for m in ("wgan", "cramer", "began") for d in ("awa2", "cub")]
    missing = [{"model": "began", "dataset": "awa2", "missing": "features"}]
    rows, _ = _md_rows(render(SPEC, RECORDS[:5], missing=missing, order=order))
    assert list(rows) == ["wgan", "CramerGAN", "began"]
    assert rows["began"][0] == "n/a (missing features)"
    assert rows["began"][3] == "–"


def test_ties_share_the_mark_and_single_rows_are_unmarked() -> None:
    recs = [rec("a", "x", 0, 50.0), rec("b", "x", 0, 50.04), rec("c", "x", 0, 40.0)]
    table = build_table(TableSpec(name="t", rows=("model",), metrics=("H",)), recs)
    marks = {rk[0]: table.marks.get((rk, ("x",), "H")) for rk in table.row_keys}
    assert marks == {"a": BEST, "b": BEST, "c": SECOND}       # 50.0 and 50.0 displayed: a tie
    lone = build_table(TableSpec(name="t", rows=("model",), metrics=("H",)), recs[:1])
    assert lone.marks == {}


def test_collapsed_seeds_are_flagged() -> None:
    recs = [rec("a", "x", 0, 30.0), {**rec("a", "x", 1, 0.5), "collapsed": True, "reseeds": 2}, rec("b", "x", 0, 10.0)]
    table = build_table(TableSpec(name="t", rows=("model",), metrics=("H",)), recs)
    rows, _ = _md_rows(to_markdown(table))
    assert rows["a"] == [f"15.2 ± 20.9 (n=2) ‡1 {BEST}"]
    assert "‡k: k seeds stayed collapsed" in table.caption
    assert r"$^\ddagger$1" in to_latex(table)


def test_all_failed_cell() -> None:
    recs = [rec("a", "x", 0, 0, status="failed"), rec("a", "x", 1, 0, status="failed"), rec("b", "x", 0, 30.0)]
    rows, _ = _md_rows(render(TableSpec(name="t", rows=("model",), metrics=("H",)), recs))
    assert rows["a"] == ["failed (×2)"]
    assert format_stat(None) == "–"


def test_csv_and_latex() -> None:
    table = build_table(SPEC, RECORDS)
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    best = [r for r in rows if r["mark"] == "best" and r["metric"] == "H"]
    assert {(r["model"], r["dataset"]) for r in best} == {("cramer", "awa2"), ("wgan", "cub")}
    cr = next(r for r in rows if r["model"] == "cramer" and r["dataset"] == "awa2" and r["metric"] == "H"
              and r["selection"] == "validation")
    assert (float(cr["mean"]), float(cr["std"]), int(cr["n"])) == (62.0, 2.0, 3)
    tex = to_latex(table)
    assert r"\textbf{62.0 $\pm$ 2.0 (n=3)}" in tex and r"\underline{56.0 $\pm$ 1.4 (n=2)}" in tex
    assert r"\multicolumn{3}{c}{AWA2}" in tex and "CramerGAN (oracle)" in tex
    assert "🔴" not in tex


def test_table_spec_rejects_unknown_keys() -> None:
    from zsgm.core.errors import ZsgmError

    with pytest.raises(ZsgmError, match="unknown key"):
        TableSpec.from_dict({"name": "x", "colums": ["dataset"]})
    with pytest.raises(ZsgmError, match="unknown metric"):
        TableSpec.from_dict({"name": "x", "metrics": ["F1"]})


def test_store_helpers(tmp_path) -> None:
    from zsgm.evaluate.records import append_record

    store = tmp_path / "runs.jsonl"
    for r in RECORDS:
        append_record(r, store)
    append_record({**RECORDS[6], "status": "ok", "H": 51.0}, store)   # the failed seed retried
    recs = read_records(store)
    assert RECORDS[6]["id"] in finished_ids(recs)
    assert len(filter_records(recs, parse_filters(["model=cramer,wgan", "seed=0"]))) == 5
    out = export_records(recs, tmp_path / "r.csv", columns=["id", "model", "H", "status"])
    assert out.read_text().splitlines()[0] == "id,model,H,status"
    md = export_records(recs, tmp_path / "r.md", columns=["model", "H"]).read_text()
    assert md.splitlines()[2] == "| cramer | 60.0 |"


def test_parquet_export_reads_back_as_the_csv_does(tmp_path) -> None:
    """Every field of every record (nested ones as JSON text, a failed seed's missing numbers)."""
    import pandas as pd

    from zsgm.evaluate.records import to_frame

    parquet = pd.read_parquet(export_records(RECORDS, tmp_path / "r.parquet"))
    pd.testing.assert_frame_equal(parquet, to_frame(RECORDS), check_dtype=False)
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically


def test_plots_write_pngs(tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="the plots extra is not installed")
    import numpy as np

    from zsgm.evaluate import plots
    from zsgm.evaluate.ausuc import seen_unseen_curve

    def size(path) -> tuple[int, int]:
        head = path.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")

    bars = plots.h_bars(build_table(SPEC, RECORDS), tmp_path / "h.png")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 50)
    curve = seen_unseen_curve(rng.normal(size=(50, 6)) + 2 * np.eye(6)[labels], labels, [0, 1, 2])
    su = plots.seen_unseen({"a": curve}, tmp_path / "su.png", points={"a": (30.0, 60.0)})
    hist = [{"epoch": e, "loss_critic": 1 / e, "wall": 3.0 * e} for e in range(1, 6)]
    one = plots.training_curves(hist, tmp_path / "one.png")
    two = plots.training_curves([dict(h, eval_U=10.0, eval_S=50.0, eval_H=16.7) for h in hist], tmp_path / "two.png")
    assert all(min(size(p)) > 200 for p in (bars, su, one, two))
    assert size(two)[0] > 1.5 * size(one)[0]      # the evaluation panel appears only when evaluations were logged


def test_tables_name_the_pretrained_weights_used() -> None:
    """Issue 14: every table names the tag each pretrained backbone ran with (and timm's caveat)."""
    recs = [{**rec("a", "x", 0, 30.0), "weights": "vit_large_patch16_224.augreg_in21k_ft_in1k",
             "weights_note": "timm has no ImageNet-1k-only ViT-L/16"},
            {**rec("a", "x", 1, 32.0), "weights": "convnext_tiny.fb_in1k"},
            {**rec("b", "x", 0, 10.0), "weights": "scratch"}]
    table = build_table(TableSpec("t", rows=("model",), columns=("dataset",)), recs)
    assert ("Weights: convnext_tiny.fb_in1k, vit_large_patch16_224.augreg_in21k_ft_in1k "
            "(timm has no ImageNet-1k-only ViT-L/16)") in table.caption
    assert "scratch" not in table.caption.split("Weights:")[1]
