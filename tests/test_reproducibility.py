"""Reproducibility: one seed gives bit-identical records on CPU; ``zsgm rerun`` repeats a record
from its stored config and says whether the numbers match; stale caches (run checkpoints made
from other features, an extraction cache of other images) are rebuilt, never reused."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from zsgm.evaluate.records import read_records
from zsgm.pipelines.cli import main
from zsgm.pipelines.config import RunConfig, resolve
from zsgm.pipelines.gzsl import run_gzsl

TINY_HP = {"hidden": 64, "n_synth": 20, "cls_pretrain_epochs": 1}
TINY_CLF = {"epochs": 2, "min_steps": 0}
NUMBERS = ("U", "S", "H", "zsl", "epochs", "gamma", "reseeds", "collapsed", "seed_used", "val", "resolved", "id")


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core box, spinning OpenMP threads make tiny nets 4x slower.
    (Bit-identity holds for any fixed thread count; the compared runs share this one.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def planted(path: Path, seed: int = 0) -> Path:
    from zsgm.testing import planted_featureset

    fs = planted_featureset(attributes=torch.rand(40, 16, generator=torch.Generator().manual_seed(0)), n_classes=12,
                            n_unseen=3, n_val=3, n_per_class=20, feature_dim=32, seed=seed)
    return fs.save(path)


def config(features: Path, seed: int = 0, **kw) -> RunConfig:
    return RunConfig.from_dict({"features": str(features), "model": "cramer", "classifier": "softmax", "epochs": 2,
                                "seed": seed, "hp": dict(TINY_HP), "clf_hp": dict(TINY_CLF), "device": "cpu", **kw})


def history(runs: Path, record: dict) -> list[dict]:
    h = json.loads((runs / record["id"] / "history.json").read_text())
    return [{k: v for k, v in e.items() if k not in ("seconds", "wall")} for e in h]


def test_one_seed_gives_identical_records(tmp_path):
    feats = planted(tmp_path / "p.safetensors")
    a = run_gzsl(config(feats), store=tmp_path / "a.jsonl", runs_dir=tmp_path / "ra", progress=False)
    b = run_gzsl(config(feats), store=tmp_path / "b.jsonl", runs_dir=tmp_path / "rb", progress=False)
    assert {k: a[k] for k in NUMBERS} == {k: b[k] for k in NUMBERS}
    assert history(tmp_path / "ra", a) == history(tmp_path / "rb", b)  # every loss of every epoch
    # The test has teeth: another seed changes the trace.
    c = run_gzsl(config(feats, seed=1), store=tmp_path / "c.jsonl", runs_dir=tmp_path / "rc", progress=False)
    assert history(tmp_path / "rc", c) != history(tmp_path / "ra", a)
    # The record carries what a rerun needs.
    assert {"torch", "timm", "zsgm", "numpy", "python"} <= set(a["versions"])
    assert RunConfig.from_dict(a["config"]).run_id() == a["id"] and a["resolved"]["generator"]["hidden"] == 64


def test_rerun_verb_repeats_a_record(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    feats = planted(tmp_path / "p.safetensors")
    args = ["gzsl", "--features", str(feats), "--model", "cramer", "--classifier", "softmax", "--epochs", "2",
            "--device", "cpu", "--no-progress", "--json"] + \
        [a for k, v in TINY_HP.items() for a in ("--set", f"{k}={v}")] + \
        [a for k, v in TINY_CLF.items() for a in ("--clf-set", f"{k}={v}")]
    assert main(args) == 0
    rid = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["id"]
    store = tmp_path / "results" / "runs.jsonl"

    assert main(["rerun", rid[:8], "--no-progress", "--json"]) == 0  # a unique prefix is enough
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert report["match"] and report["id"] == rid and report["new_id"] == rid
    assert all(f["match"] for f in report["fields"].values()) and "numbers match" in out
    assert len(read_records(store)) == 1  # a check: nothing appended without --append

    # A record whose numbers were not what the config gives is caught.
    rec = read_records(store)[0]
    rec["H"] = round(rec["H"] + 1.0, 2)
    store.write_text(json.dumps(rec) + "\n")
    assert main(["rerun", rid, "--no-progress", "--json", "--append"]) == 1
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert not report["match"] and not report["fields"]["H"]["match"] and report["fields"]["U"]["match"]
    assert "DIFFERS" in out and [r.get("rerun_of") for r in read_records(store)] == [None, rid]


def test_rerun_pins_changed_defaults(tmp_path, monkeypatch, caplog):
    """If the shipped defaults moved since the record, the rerun uses the recorded values."""
    from zsgm.pipelines.verbs import rerun

    rec = {"id": "x-s0", "config": config(tmp_path / "p.safetensors").to_dict(),
           "resolved": resolve(config(tmp_path / "p")).to_dict()}
    rec["resolved"]["generator"]["lr"] = 0.123
    rec["resolved"]["classifier"]["options"]["lr"] = 0.5
    with caplog.at_level(logging.WARNING, logger="zsgm.rerun"):
        cfg, pinned = rerun.config_of(rec, None, None)
    assert pinned == {"lr": 0.123, "clf.lr": 0.5} and cfg.hp["lr"] == 0.123 and cfg.clf_hp["lr"] == 0.5
    assert "defaults changed" in caplog.text


@pytest.mark.parametrize("key, words", [("zzzz", "no record with id 'zzzz'"), ("", "ambiguous")])
def test_rerun_bad_ids(tmp_path, capsys, key, words):
    store = tmp_path / "runs.jsonl"
    store.write_text('{"id": "abc-s0"}\n{"id": "abd-s0"}\n')
    assert main(["rerun", key, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert main(["rerun", "abc", "--store", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------- stale caches
def test_checkpoints_of_other_features_are_not_resumed(tmp_path, caplog):
    """Same command, same run id, but the features file now holds other features: the old
    checkpoints are stale and the run starts over (it gives the numbers of a fresh run)."""
    feats = tmp_path / "p.safetensors"
    planted(feats, seed=0)
    runs = tmp_path / "runs"
    run_gzsl(config(feats), store=tmp_path / "s.jsonl", runs_dir=runs, progress=False, keep_checkpoints=True)
    planted(feats, seed=5)  # re-extracted into the same path
    with caplog.at_level(logging.WARNING, logger="zsgm.gzsl"):
        again = run_gzsl(config(feats), store=tmp_path / "s.jsonl", runs_dir=runs, progress=False)
    assert "other inputs" in caplog.text
    fresh = run_gzsl(config(feats), store=tmp_path / "f.jsonl", runs_dir=tmp_path / "fresh", progress=False)
    assert {k: again[k] for k in NUMBERS} == {k: fresh[k] for k in NUMBERS}
    assert history(runs, again) == history(tmp_path / "fresh", fresh)


def test_same_inputs_resume_from_checkpoints(tmp_path, caplog):
    """The other side of the fingerprint: unchanged inputs do resume (no needless retraining)."""
    feats = planted(tmp_path / "p.safetensors")
    runs = tmp_path / "runs"
    first = run_gzsl(config(feats, selection="fixed"), store=tmp_path / "s.jsonl", runs_dir=runs, progress=False,
                     keep_checkpoints=True)
    with caplog.at_level(logging.INFO, logger="zsgm"):
        again = run_gzsl(config(feats, selection="fixed"), store=tmp_path / "s.jsonl", runs_dir=runs,
                         progress=False)
    assert "resumed cramer" in caplog.text and "other inputs" not in caplog.text
    assert {k: first[k] for k in NUMBERS} == {k: again[k] for k in NUMBERS}


def test_stale_extraction_cache_is_rebuilt(tmp_path):
    """An extracted FeatureSet whose image list no longer matches the root is rebuilt; an
    unreadable (truncated) cache is rebuilt too, not reported as an error."""
    from fixtures_images import make_cub

    from zsgm.extract.extractor import EngineConfig
    from zsgm.extract.featureset import FeatureSet
    from zsgm.extract.job import ExtractRequest, run

    def request(out: Path) -> ExtractRequest:
        return ExtractRequest(data="cub", backbone="resnet10t", random_init=True, img_size=32,
                              data_root=str(tmp_path / "root"), out=str(out),
                              engine=EngineConfig(batch_size=8, workers=0, shard_size=16, progress=False))

    fx = make_cub(tmp_path / "root", present_ids=(1, 2, 3), per_small=3)
    out = tmp_path / "cache.safetensors"
    first = FeatureSet.load(run(request(out)))
    assert first.features.shape[0] == len(fx.paths)
    gone = fx.paths[max(fx.paths)].parent  # a class folder removed: another image list
    n_gone = len(list(gone.iterdir()))
    shutil.rmtree(gone)
    second = FeatureSet.load(run(request(out)))
    assert second.features.shape[0] == len(fx.paths) - n_gone
    assert second.meta["image_list_hash"] != first.meta["image_list_hash"]
    want = second.features.clone()
    del second  # the features are memory-mapped: truncating the mapped file in place would SIGBUS us
    out.write_bytes(out.read_bytes()[:100])  # a torn cache (written by something else than zsgm)
    third = FeatureSet.load(run(request(out)))
    assert torch.equal(third.features, want)
