"""Correctness of what the speed work touched (issue 6). No test here asserts a time.

* batched synthesis equals a per-class generator loop under a fixed seed;
* the single critic call over [real; fake(; fake2)] equals separate calls (losses, gradients);
* the on-device minibatch classifiers match the slow per-sample DataLoader reference, and the
  CUDA-graph step's static, padded batches match the plain loop;
* the engine's sync-free loss accumulation still detects divergence;
* early stopping / model selection never reads a test index before the final evaluation;
* ``zsgm bench --quick`` writes a JSON with the expected keys and positive numbers.
"""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from zsgm.evaluate.classifiers import build as build_classifier
from zsgm.evaluate.metrics import mean_class_accuracy
from zsgm.extract.featureset import FeatureSet
from zsgm.testing import planted_featureset
from zsgm.generate.engine import DivergenceError, Engine, TrainData
from zsgm.pipelines.config import classifier_defaults, generator_defaults

A_DIM, D_DIM = 12, 16


@pytest.fixture(autouse=True)
def one_thread():
    """These problems are tiny: one torch thread avoids OpenMP hand-offs, which on a loaded
    2-core machine (several test processes at once) made them an order of magnitude slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_hp(model: str, **extra):
    return generator_defaults(model, **{"hidden": 32, "batch_size": 16, "cls_weight": 0.0, **extra})


# ---------------------------------------------------------------- synthesis
@pytest.mark.parametrize("model", ["wgan", "cramer"])
def test_batched_synthesis_equals_per_class_reference(model):
    torch.manual_seed(0)
    eng = Engine(model, D_DIM, A_DIM, small_hp(model))
    att = torch.rand(7, A_DIM)
    n, std, frac = 9, eng.config.noise.unseen, eng.config.noise.fraction
    assert std > 0 and 0 < frac < 1  # the shipped defaults: noise on part of each class
    fast = eng.synthesize(att, n, gen=torch.Generator().manual_seed(123))

    # The per-class reference (f-CLSWGAN's generate_syn_feature: one generator call per class)
    # fed with the very same random numbers, drawn in the order ``synthesize`` draws them:
    # first the attribute noise for every row, then the latent codes.
    g = torch.Generator().manual_seed(123)
    eps = torch.randn(att.shape[0] * n, A_DIM, generator=g)
    z = torch.randn(att.shape[0] * n, eng.family.latent_dim, generator=g)
    k = int(round(n * frac))
    unit = eng._noise_unit(att)  # noise is in units of each attribute's spread (the engine's convention)
    gen_net = eng.family.generator.eval()
    slow = []
    with torch.no_grad():
        for c in range(att.shape[0]):
            rows = att[c].repeat(n, 1)
            rows[:k] = rows[:k] + std * unit * eps[c * n:c * n + k]
            slow.append(gen_net(z[c * n:(c + 1) * n], rows))
    slow = torch.cat(slow)
    assert fast.shape == (att.shape[0] * n, D_DIM)
    # Same inputs, same weights; the only difference is the batch size of the matrix products.
    # BLAS kernels may block a 63-row product differently from a 9-row one, which can change
    # float32 rounding in the last bits, so "exact" is checked to float32 precision.
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    # Class-major layout and the noisy half: the first k samples of every class carry noise.
    assert torch.equal(fast.view(att.shape[0], n, D_DIM)[3], fast[3 * n:4 * n])


def test_synthesis_is_reproducible_and_chunking_keeps_shapes():
    eng = Engine("cramer", D_DIM, A_DIM, small_hp("cramer"))
    att = torch.rand(5, A_DIM)
    a = eng.synthesize(att, 8, gen=torch.Generator().manual_seed(1))
    b = eng.synthesize(att, 8, gen=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    c = eng.synthesize(att, 8, gen=torch.Generator().manual_seed(1), chunk=7)
    assert c.shape == a.shape and torch.isfinite(c).all()


# ---------------------------------------------------------------- batched critic calls
def _grads(module):
    return [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("model", ["wgan", "cramer"])
def test_one_critic_call_equals_separate_calls(model):
    torch.manual_seed(0)
    eng = Engine(model, D_DIM, A_DIM, small_hp(model))
    fam = eng.family
    real, fake, att = torch.rand(10, D_DIM), torch.rand(10, D_DIM), torch.rand(10, A_DIM)

    torch.manual_seed(5)
    loss, _ = fam.critic_loss(real, fake, att)
    fam.zero_grad()
    loss.backward()
    g_fast = _grads(fam.critic)

    # the straightforward formulas, one critic call per input
    torch.manual_seed(5)
    if model == "wgan":
        ref = fam.critic(fake, att).mean() - fam.critic(real, att).mean()
    else:
        from zsgm.generate.families.cramer import l2

        with torch.no_grad():
            fake2 = fam.sample(att)
        h2 = fam.critic(fake2, att)

        def f(x):
            hx = fam.critic(x, att)
            return l2(hx - h2) - l2(hx)

        ref = -(f(real).mean() - f(fake).mean())
    fam.zero_grad()
    ref.backward()
    g_ref = _grads(fam.critic)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_cramer_penalty_reuses_the_step_critic_value():
    torch.manual_seed(0)
    fam = Engine("cramer", D_DIM, A_DIM, small_hp("cramer")).family
    real, fake, att = torch.rand(6, D_DIM), torch.rand(6, D_DIM), torch.rand(6, A_DIM)
    fam.critic_loss(real, fake, att)
    score = fam.penalty_score(fake, att)
    x = torch.rand(6, D_DIM)
    from zsgm.generate.families.cramer import l2

    hx, h2 = fam.critic(x, att), fam.critic(fam._fake2, att)
    torch.testing.assert_close(score(x), l2(hx - h2) - l2(hx), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- engine bookkeeping
def test_epoch_logs_are_floats_and_divergence_is_caught():
    torch.manual_seed(0)
    eng = Engine("wgan", D_DIM, A_DIM, small_hp("wgan", steps_per_epoch=3, critic_iters=2))
    data = TrainData(torch.rand(40, D_DIM), torch.randint(0, 4, (40,)), torch.rand(4, A_DIM))
    logs = eng.train_epoch(data)
    assert logs and all(isinstance(v, float) for v in logs.values())
    assert {"loss_critic", "loss_generator", "critic_penalty"} <= set(logs)
    eng.fit(data, 2, progress=False)
    assert all("wall" in h and h["wall"] >= h["seconds"] for h in eng.history)

    orig = eng.family.critic_loss

    def nan_loss(real, fake, att):
        loss, logs = orig(real, fake, att)
        return loss * float("nan"), logs

    eng.family.critic_loss = nan_loss
    with pytest.raises(DivergenceError, match="critic loss"):
        eng.train_epoch(data)


@pytest.mark.parametrize("every,saved_after", [(30, [4]), (0, [1, 2, 3, 4])])
def test_a_short_run_writes_only_its_last_checkpoint(tmp_path, every, saved_after):
    """Checkpoints at most every ``checkpoint_seconds`` and at the end: a run shorter than that
    pays for one (a seed-budget checkpoint costs more than a GPU epoch); 0 saves every epoch."""
    torch.manual_seed(0)
    eng = Engine("wgan", D_DIM, A_DIM, small_hp("wgan", steps_per_epoch=2, critic_iters=1, checkpoint_seconds=every))
    data = TrainData(torch.rand(40, D_DIM), torch.randint(0, 4, (40,)), torch.rand(4, A_DIM))
    saved, save = [], eng.save
    eng.save = lambda path: saved.append(eng.epoch) or save(path)
    eng.fit(data, 4, checkpoint=tmp_path / "ck.pt", progress=False)
    assert saved == saved_after and (tmp_path / "ck.pt").is_file()
    again = Engine("wgan", D_DIM, A_DIM, small_hp("wgan"))
    again.resume(tmp_path / "ck.pt")
    assert again.epoch == 4


# ---------------------------------------------------------------- classifiers: fast vs slow reference
@pytest.mark.parametrize("kind,batch", [("softmax", 32), ("prototype", 32), ("prototype", 128)])
def test_fast_classifier_matches_per_sample_reference(kind, batch):
    """On-device batches (and, for the prototype classifier, batches 4x the reference's, as its
    default is) reach the accuracy of the field's per-sample DataLoader loop at batch 32."""
    from zsgm.bench.reference import train_classifier_tuples

    fs = planted_featureset(n_classes=22, n_unseen=2, n_val=0, n_per_class=40, feature_dim=32, seed=3)
    xtr, ytr = fs.take(fs.trainval_loc)
    xte, yte = fs.take(fs.test_seen_loc)
    scale = xtr.max()
    xtr, xte = xtr / scale, xte / scale
    att = fs.attributes.float()
    hp = {"epochs": 20, "batch_size": batch, "min_steps": 0}
    if kind == "prototype":
        hp.update(hidden=64, lr_step=10, seen_scale=1.0)
    fast_acc, slow_acc = [], []
    for seed in (0, 1):
        torch.manual_seed(seed)
        clf = build_classifier(kind, classifier_defaults(kind, **hp)).fit(xtr, ytr, fs.n_classes, att, None)
        fast_acc.append(mean_class_accuracy(clf.scores(xte).argmax(1), yte))
        torch.manual_seed(seed)
        net = train_classifier_tuples(kind, xtr, ytr, fs.n_classes, att, torch.device("cpu"), epochs=20,
                                      batch_size=32, hidden=64)
        with torch.no_grad():
            slow_acc.append(mean_class_accuracy(net.logits(xte).argmax(1), yte))
    fast, slow = sum(fast_acc) / 2, sum(slow_acc) / 2
    assert fast > 3 * 100 / fs.n_classes, f"fast classifier barely learns: {fast_acc}"
    # within noise: two seeds each, a planted problem with a few hundred test images
    assert abs(fast - slow) <= 6.0, f"fast {fast_acc} vs per-sample reference {slow_acc}"


def test_static_batch_steps_equal_the_eager_loop():
    """The CUDA-graph step's arithmetic, run eagerly on the CPU: a static index buffer, the short
    last batch padded and weighted 0, the loss summed on the device; same weights and losses as the
    plain loop (and the same permutations: the static path draws no random numbers)."""
    from zsgm.core.training import adam, train_minibatch

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 8, generator=g), torch.randint(0, 5, (300,), generator=g)
    runs = []
    for graphs in (True, False):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5))
        opt = adam(net.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
        runs.append((net, train_minibatch(net, net, x, y, 4, 64, opt, sched, graphs=graphs)))  # 300 = 4 x 64 + 44
    (a, la), (b, lb) = runs
    assert la == pytest.approx(lb, rel=1e-5) and la[-1] < la[0]
    for wa, wb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(wa, wb, rtol=1e-5, atol=1e-6)


def test_graphed_step_keeps_its_lr_tensor_when_a_schedule_replaces_it():
    """A captured step reads the lr tensor it was captured with: a scheduler that put a new lr
    in the group (rather than filling the tensor) must not be ignored."""
    from zsgm.core.training import GraphedStep

    net = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(net.parameters(), lr=torch.tensor(1e-2))
    step = GraphedStep(net, torch.randn(10, 4), torch.arange(10) % 3, 5, opt)
    captured = opt.param_groups[0]["lr"]
    opt.param_groups[0]["lr"] = torch.tensor(1e-3)  # what an older scheduler would do
    step.follow_lr()
    assert opt.param_groups[0]["lr"] is captured and float(captured) == pytest.approx(1e-3)


def test_cuda_graphs_setting_is_checked_and_means_nothing_off_cuda():
    from zsgm.core.errors import ZsgmError
    from zsgm.core.training import cuda_graphs_wanted

    assert cuda_graphs_wanted("auto", "cuda", "x") and cuda_graphs_wanted(True, "cuda:0", "x")
    assert not cuda_graphs_wanted("auto", "cpu", "x") and not cuda_graphs_wanted(False, "cuda", "x")
    with pytest.raises(ZsgmError, match="prototype classifier: cuda_graphs must be auto, on or off"):
        build_classifier("prototype", classifier_defaults("prototype", cuda_graphs="sometimes")).fit(
            torch.randn(8, 4), torch.arange(8) % 2, 2, torch.randn(2, 3))


# ---------------------------------------------------------------- selection never reads test
def test_early_stopping_never_reads_test_indices(tmp_path, monkeypatch):
    import zsgm.pipelines.gzsl as gzsl
    from zsgm.pipelines.config import RunConfig

    fs = planted_featureset(n_classes=24, n_unseen=6, n_val=4, n_per_class=24, feature_dim=24, seed=1)
    path = fs.save(tmp_path / "planted.safetensors")
    test_idx = set(fs.test_seen_loc.tolist()) | set(fs.test_unseen_loc.tolist())
    events: list[tuple] = []
    orig_take = FeatureSet.take

    def take(self, idx):
        events.append(("take", set(torch.as_tensor(idx).tolist())))
        return orig_take(self, idx)

    orig_select = gzsl._train_and_select

    def select(rc, prob, device, epochs, ckpt, tune_gamma, progress, desc, **kw):
        events.append(("select_start", desc))
        engine, best = orig_select(rc, prob, device, epochs, ckpt, tune_gamma, progress, desc, **kw)
        events.append(("select_end", desc, len(engine.history), dict(best)))
        return engine, best

    orig_classify = gzsl.classify

    def classify(engine, prob, rc, *options):
        on_test = bool(set(prob.eval_unseen[1].tolist()) & set(fs.labels[fs.test_unseen_loc].tolist()))
        events.append(("classify", "test" if on_test else "val", engine.epoch))
        return orig_classify(engine, prob, rc, *options)

    monkeypatch.setattr(FeatureSet, "take", take)
    monkeypatch.setattr(gzsl, "_train_and_select", select)
    monkeypatch.setattr(gzsl, "classify", classify)
    cfg = RunConfig(features=str(path), data="planted", model="cramer", classifier="softmax", epochs=6,
                    hp={"hidden": 32, "n_synth": 10, "patience": 1, "cls_pretrain_epochs": 2},
                    clf_hp={"epochs": 3, "min_steps": 0}, eval_every=1, max_reseeds=0)
    rec = gzsl.run_gzsl(cfg, store=tmp_path / "runs.jsonl", runs_dir=tmp_path / "runs", progress=False)
    assert rec["selection"] == "validation"

    first_test = next(i for i, e in enumerate(events) if e[0] == "take" and e[1] & test_idx)
    val_end = next(i for i, e in enumerate(events) if e[0] == "select_end" and "val" in e[1])
    # every read before the validation selection (with early stopping) ended avoided test images
    assert val_end < first_test, "a test index was read before model selection finished"
    for e in events[:first_test]:
        if e[0] == "take":
            assert not (e[1] & test_idx)
    # the final retraining uses the epoch chosen on validation, fixed before any test read, and
    # trains exactly that long: nothing scores test images during it (no early stop can read them)
    chosen = events[val_end][3]["epoch"]
    assert rec["epochs"] == chosen
    test_scorings = [e for e in events if e[0] == "classify" and e[1] == "test"]
    assert len(test_scorings) == 1 and test_scorings[0][2] == chosen, test_scorings
    assert all(e[1] == "val" for e in events[:val_end] if e[0] == "classify")
    history = json.loads((tmp_path / "runs" / cfg.run_id() / "history.json").read_text())
    assert len(history) == chosen and not any("eval_H" in h for h in history)


# ---------------------------------------------------------------- the bench smoke
def test_the_reference_loop_is_seeded_so_repeats_differ_only_in_time():
    from zsgm.bench.suite import BUDGETS, _run_reference, make_featureset
    from zsgm.evaluate.scoring import make_problem

    budget = BUDGETS["quick"]
    fs = make_featureset(budget, seed=0)
    prob = make_problem(fs, fs.trainval_loc, fs.seen_classes, fs.unseen_classes, fs.test_seen_loc,
                        fs.test_unseen_loc, "minmax", torch.device("cpu"))
    runs = [_run_reference(budget, prob, "wgan", "softmax", torch.device("cpu"), seed) for seed in (3, 3, 4)]
    assert runs[0]["H_per_epoch"] == runs[1]["H_per_epoch"]
    assert runs[0]["H_per_epoch"] != runs[2]["H_per_epoch"]


def test_reference_h_like_for_like_takes_the_epochs_zsgm_scores():
    from zsgm.bench.suite import h_at_epochs_scored

    h = [50.0, 10.0, 20.0, 30.0, 25.0]
    assert h_at_epochs_scored(h, 1) == 50.0   # every epoch: the reference's own best
    assert h_at_epochs_scored(h, 2) == 30.0   # epochs 2, 4 and the last (5)
    assert h_at_epochs_scored(h, 5) == 25.0   # the last only
    assert h_at_epochs_scored([], 5) is None



@pytest.mark.slow
def test_bench_quick_smoke(tmp_path):
    from zsgm.pipelines.cli import main

    rc = main(["bench", "--quick", "--repeats", "1", "--models", "cramer", "--classifiers", "prototype",
               "--clf-set", "scale=5e0", "--also-eval-every", "2", "--out", str(tmp_path)])
    assert rc == 0
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1 and files[0].with_suffix(".md").is_file()
    res = json.loads(files[0].read_text())
    assert {"meta", "throughput", "pairs", "time_to_result", "extraction", "memory", "targets"} <= set(res)
    for row in res["throughput"]:
        assert row["generator_it_s"]["median"] > 0 and row["critic_it_s"]["median"] > 0
    assert {r["loop"] for r in res["throughput"]} >= {"engine", "reference"}
    pair, every2 = res["pairs"]  # the budget's K = 1, then K = 2 against the same reference run
    assert (pair["eval_every"], every2["eval_every"]) == (1, 2)
    assert every2["reference_seconds"] == pair["reference_seconds"]
    (h_per_epoch,) = pair["reference_H_per_epoch"]
    assert pair["reference_H_at_zsgm_epochs"]["median"] == max(h_per_epoch)
    assert every2["reference_H_at_zsgm_epochs"]["median"] == h_per_epoch[1]  # 2 epochs: zsgm scores only the 2nd
    for key in ("zsgm_seconds", "reference_seconds", "ratio"):
        s = pair[key]
        assert s["n"] == 1 and 0 < s["min"] <= s["median"] <= s["max"]
    assert 0 <= pair["zsgm_H"]["median"] <= 100
    assert [t["eval_every"] for t in res["targets"]["cramer_prototype_10x"]] == [1, 2]
    (ttr,) = res["time_to_result"]
    assert ttr["full_run_seconds"]["median"] > 0 and ttr["time_to_h_seconds"]["median"] > 0
    assert res["memory"]["peak_mb"] > 0 and res["memory"]["after_first_run_mb"] > 0
    assert res["meta"]["repeats"] == 1 and res["meta"]["budget"]["name"] == "quick"
    assert res["meta"]["clf_set"] == {"scale": 5.0}
    md = files[0].with_suffix(".md").read_text()
    assert "zsgm's classifier only" in md and "(zsgm scoring every 2 epochs)" in md
    assert "| cramer | prototype | 2 |" in md
