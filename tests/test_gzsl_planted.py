"""Learning outcomes on a planted GZSL problem: features are a fixed random non-linear map
of the real CUB attributes plus noise, so unseen classes are learnable from attributes.

Chance for ZSL top-1 is 100 / n_unseen; the margins below are several times that and hold
across seeds (the budgets are small so that CI stays quick).
"""
from __future__ import annotations

import pytest
import torch

from zsgm.extract.featureset import FeatureSet
from zsgm.testing import planted_featureset
from zsgm.pipelines.config import RunConfig
from zsgm.pipelines.gzsl import run_gzsl

N_UNSEEN = 10
CHANCE = 100 / N_UNSEEN
# A short budget (small nets, a fast learning rate, two critic steps) so that CI stays quick.
BUDGET = {"hidden": 256, "steps_per_epoch": 20, "n_synth": 50, "lr": 1e-3, "critic_iters": 2,
          "latent_dim": 32, "cls_pretrain_epochs": 10}
EPOCHS, EVAL_EVERY = 30, 10
CLF = {"min_steps": 300}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    fs = planted_featureset(n_classes=50, n_unseen=N_UNSEEN, n_val=8, n_per_class=16, feature_dim=64, seed=0)
    path = tmp_path_factory.mktemp("planted") / "planted.safetensors"
    fs.save(path)
    return path


def run(path, tmp_path, **kw):
    kw = {"epochs": EPOCHS, "eval_every": EVAL_EVERY, **kw}
    cfg = RunConfig(features=str(path), hp={**BUDGET, **kw.pop("hp", {})}, clf_hp=dict(CLF), **kw)
    return run_gzsl(cfg, store=tmp_path / "runs.jsonl", runs_dir=tmp_path / "runs", progress=False)


def test_seen_only_classifier_never_predicts_unseen(planted, tmp_path):
    rec = run(planted, tmp_path, model="none", classifier="softmax", calibrate=False)
    assert rec["U"] <= 2.0
    assert rec["S"] >= 80.0  # the seen side is easy: the failure is the unseen side


@pytest.mark.parametrize("model", ["wgan", "cramer"])
@pytest.mark.parametrize("classifier", ["softmax", "prototype"])
def test_generative_models_learn_unseen_classes(planted, tmp_path, model, classifier):
    rec = run(planted, tmp_path, model=model, classifier=classifier)
    print(model, classifier, {k: rec[k] for k in ("U", "S", "H", "zsl", "epochs", "gamma")})
    assert rec["zsl"] >= 2 * CHANCE, rec
    assert rec["U"] >= CHANCE and rec["H"] >= CHANCE, rec
    assert rec["selection"] == "validation" and 1 <= rec["epochs"] <= EPOCHS
    assert (tmp_path / "runs.jsonl").read_text().count("\n") == 1


def test_bf16_autocast_still_learns(planted, tmp_path):
    """``amp: bf16`` (CPU autocast here, CUDA on a GPU) trades precision for speed; the
    planted problem must stay solved under it."""
    rec = run(planted, tmp_path, model="wgan", classifier="softmax", hp={"amp": "bf16"})
    assert rec["zsl"] >= 2 * CHANCE, rec
    assert rec["U"] >= CHANCE and rec["H"] >= CHANCE, rec


def test_validation_selection_never_reads_test_images(planted, tmp_path, monkeypatch):
    """Instrument the one door to image data; nothing of test_seen/test_unseen may pass it
    before the final evaluation."""
    fs = FeatureSet.load(planted)
    test = set(fs.test_seen_loc.tolist()) | set(fs.test_unseen_loc.tolist())
    reads: list[tuple[str, set]] = []
    phase = {"name": "selection"}
    real_take = FeatureSet.take

    def watched(self, idx):
        reads.append((phase["name"], set(torch.as_tensor(idx).tolist())))
        return real_take(self, idx)

    import zsgm.pipelines.gzsl as gz

    real_train = gz._train_and_select

    def train(*args, **kwargs):
        out = real_train(*args, **kwargs)
        if str(args[-1] if args else kwargs.get("desc", "")).endswith("val"):
            phase["name"] = "final"
        return out

    monkeypatch.setattr(FeatureSet, "take", watched)
    monkeypatch.setattr(gz, "_train_and_select", train)
    run(planted, tmp_path, model="cramer", classifier="softmax", epochs=5)
    selection_reads = set().union(*[r for p, r in reads if p == "selection"])
    assert selection_reads and not selection_reads & test
    assert set().union(*[r for p, r in reads if p == "final"]) & test  # the final evaluation does read test


def test_attributes_are_used_at_unit_norm_whatever_their_scale(planted):
    """cub_sent's sentence embeddings have norm ~20 where xlsa17's attributes have norm 1: the
    problem a run trains on holds both at unit norm, while rows already of unit norm reach the
    nets bit for bit (runs on such files do not move)."""
    from zsgm.evaluate.scoring import make_problem, unit_attributes

    att = torch.nn.functional.normalize(torch.rand(6, 12, generator=torch.Generator().manual_seed(0)), dim=1)
    assert torch.equal(unit_attributes(att), att)
    scaled = unit_attributes(torch.cat([att[:3] * 20, att[3:]]))
    assert torch.allclose(scaled, att, atol=1e-6) and torch.equal(scaled[3:], att[3:])

    fs = FeatureSet.load(planted, mmap_features=False)
    raw = torch.rand(fs.attributes.shape, generator=torch.Generator().manual_seed(1)) * 6.5  # cub_sent-like
    problems = []
    for a in (raw, raw * 20):
        fs.attributes = a
        problems.append(make_problem(fs, fs.trainval_loc, fs.seen_classes, fs.unseen_classes, fs.test_seen_loc,
                                     fs.test_unseen_loc, "l2", torch.device("cpu")))
    one, other = (p.attributes for p in problems)
    assert torch.allclose(one.norm(dim=1), torch.ones(len(one))) and torch.allclose(one, other, atol=1e-6)
