"""The GPU path: CUDA-graph replay of generator iterations (skipped where no GPU is present;
`bench/gpu.sh` runs this file on a lent GPU machine)."""
from __future__ import annotations

import pytest
import torch

from zsgm.generate.engine import Engine, TrainData
from zsgm.generate.registry import MODELS
from zsgm.pipelines.config import classifier_defaults, generator_defaults
from zsgm.testing import planted_hp

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

DEV = torch.device("cuda")
TRAINED = sorted(m for m, e in MODELS.items() if not e.cls.closed_form)


def _data(seed: int = 0, n: int = 400, classes: int = 10, d: int = 32, a: int = 12) -> TrainData:
    g = torch.Generator().manual_seed(seed)
    att = torch.rand(classes, a, generator=g)
    w = torch.randn(a, d, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    x = torch.relu(att[y] @ w + 0.3 * torch.randn(n, d, generator=g))
    return TrainData(x, y, att).to(DEV)


def _engine(model: str, **hp) -> Engine:
    base = generator_defaults(model, **{"hidden": 64, "batch_size": 32, "cls_pretrain_epochs": 2, **planted_hp(model),
                                        **hp})
    torch.manual_seed(0)
    return Engine(model, 32, 12, base, DEV)


@pytest.mark.parametrize("model", TRAINED)
def test_every_trained_family_is_captured_and_learns_finite(model):
    data = _data()
    eng = _engine(model, steps_per_epoch=8)
    eng.prepare_regulariser(data)
    logs = [eng.train_epoch(data) for _ in range(3)]
    if MODELS[model].cls.graph_safe:
        assert eng.graphs and eng._graph is not None, f"{model}: not captured"
    else:  # trained eagerly, by declaration
        assert not eng.graphs and eng._graph is None
    assert all(torch.isfinite(torch.tensor(v)) for lg in logs for v in lg.values())
    # the sums cover every step: a replayed epoch logs the same keys as the eager warm-up epoch
    assert set(logs[0]) == set(logs[-1])


@pytest.mark.parametrize("model, hp", [("wgan", {}), ("cramer", {}), ("fisher", {}), ("began", {}),
                                       ("cramer", {"center_weight": 1.0})],  # the demo's class-centre term
                         ids=["wgan", "cramer", "fisher", "began", "cramer-center"])
def test_graph_replay_matches_eager_training(model, hp):
    """Same initial weights and RNG state: the graphed epoch (3 eager warm-up iterations, then
    replays) must land on the weights of an eager epoch, up to float rounding."""
    data = _data()
    graphed = _engine(model, steps_per_epoch=6, **hp)
    eager = _engine(model, steps_per_epoch=6, cuda_graphs="off", **hp)
    eager.family.load_state_dict(graphed.family.state_dict())
    for eng in (graphed, eager):
        eng.prepare_regulariser(data)
    eager.seen_clf.load_state_dict(graphed.seen_clf.state_dict())
    torch.cuda.manual_seed(123)
    graphed.train_epoch(data)
    torch.cuda.manual_seed(123)
    eager.train_epoch(data)
    assert graphed._graph is not None and not eager.graphs
    for (name, a), b in zip(graphed.family.state_dict().items(), eager.family.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), f"{model}: {name} differs by {(a - b).abs().max()}"


def test_batched_gzsl_run_on_cuda_learns(tmp_path):
    """A whole validation-selected run on the GPU (graphs on) still solves the planted problem."""
    from zsgm.testing import planted_featureset
    from zsgm.pipelines.config import RunConfig
    from zsgm.pipelines.gzsl import run_gzsl

    fs = planted_featureset(n_classes=30, n_unseen=6, n_val=5, feature_dim=64, seed=0)
    path = fs.save(tmp_path / "planted.safetensors")
    cfg = RunConfig(features=str(path), data="planted", model="wgan", classifier="softmax", epochs=20,
                    hp={"hidden": 128, "steps_per_epoch": 20, "n_synth": 50, "lr": 1e-3}, eval_every=5,
                    device="cuda")
    rec = run_gzsl(cfg, store=tmp_path / "runs.jsonl", runs_dir=tmp_path / "runs", progress=False)
    assert rec["U"] > 100 / 30 * 3, rec  # chance over all 30 classes is 3.3 %


# ---------------------------------------------------------------- JPEG decoding on the GPU
def _smooth_photos(tmp_path) -> list:
    """Photo-like JPEGs (gradients and shapes, 4:2:0 chroma as PIL saves them): noise images
    would measure chroma upsampling rather than decoding."""
    from PIL import Image, ImageDraw

    files = []
    for i, (w, h) in enumerate([(500, 375), (375, 500), (320, 223), (480, 360)]):
        yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        rgb = torch.stack([xx, yy, (xx + yy) / 2]) * 200 + 25 * i
        im = Image.fromarray(rgb.clamp(0, 255).byte().permute(1, 2, 0).numpy())
        draw = ImageDraw.Draw(im)
        draw.ellipse((w // 4, h // 4, w // 2, h // 2), fill=(200, 40 * i, 30))
        draw.rectangle((w // 2, h // 3, w - 20, h - 30), outline=(10, 10, 10), width=3)
        files.append(tmp_path / f"s{i}.jpg")
        im.save(files[-1], quality=90)
    return files


def test_nvjpeg_batch_is_close_to_pil(tmp_path):
    """nvJPEG's IDCT and chroma upsampling are not libjpeg-turbo's: close, not equal (torchvision's
    own test allows a mean of 2 grey levels between its CUDA and CPU decodes). On the CPU the same
    code is within 1 grey level of PIL (tests/test_gpu_decode.py)."""
    from test_gpu_decode import IMAGENET, decode_on, grey_levels, timm_eval

    from zsgm.extract import images

    files = _smooth_photos(tmp_path)
    tf = timm_eval(size=224)
    x, ok, err = decode_on(DEV, files, tf)
    ref = torch.stack([tf(images.decode(p)) for p in files]).to(DEV)
    diff = grey_levels((x - ref).abs(), IMAGENET["std"])
    corr = torch.nn.functional.cosine_similarity((x - x.mean()).flatten(1), (ref - ref.mean()).flatten(1))
    print(f"nvJPEG vs PIL: mean {diff.mean():.3f}, max {diff.max():.1f} grey levels, min correlation {corr.min():.5f}")
    assert ok.all() and x.is_cuda and x.shape == ref.shape
    assert diff.mean() < 2.0 and corr.min() > 0.99


def test_extraction_on_cuda_decodes_on_the_gpu_by_default(tmp_path):
    from test_gpu_decode import _extract

    from fixtures_images import make_cub

    from zsgm.extract import gpu_decode

    assert gpu_decode.nvjpeg_error(DEV) is None
    fx = make_cub(tmp_path / "root")
    fx.paths[3].write_bytes(fx.paths[3].read_bytes()[:400])
    gpu = _extract(tmp_path / "root", tmp_path / "gpu.safetensors", on_bad_image="skip", device="cuda")
    pil = _extract(tmp_path / "root", tmp_path / "pil.safetensors", on_bad_image="skip", device="cuda", decode="pil")
    assert gpu.meta["decode"] == "gpu" and pil.meta["decode"] == "pil"
    assert fx.paths[3].name in gpu.meta["skipped_images"] and torch.equal(gpu.labels, pil.labels)
    cos = torch.nn.functional.cosine_similarity(gpu.features.float(), pil.features.float())
    print(f"GPU-decoded vs PIL-decoded features: min cosine {cos.min():.5f}")
    assert cos.min() > 0.98  # noise images, 32 px: chroma upsampling differences show


def test_decoding_ahead_on_cuda_gives_the_inline_batches(tmp_path):
    """The decode thread queues on the caller's stream: the batches are the very ones decoded in the loop."""
    from test_gpu_decode import timm_eval

    from zsgm.extract.extractor import EngineConfig, input_batches
    from zsgm.extract.layouts.base import Record

    files = _smooth_photos(tmp_path) * 5
    records = [Record(i, p, 0) for i, p in enumerate(files)]
    sampler = [list(range(b, min(len(files), b + 3))) for b in range(0, len(files), 3)]
    out = {}
    for ahead in (0, 2):
        cfg = EngineConfig(batch_size=3, workers=2, device=DEV, decode="gpu", decode_ahead=ahead)
        out[ahead] = [(x.clone(), idx) for x, idx, ok, err in input_batches(records, timm_eval(size=224), cfg, sampler)]
    assert len(out[0]) == len(out[2]) == len(sampler)
    for (a, ia), (b, ib) in zip(out[0], out[2]):
        assert a.is_cuda and torch.equal(ia, ib) and torch.equal(a, b)


# ---------------------------------------------------------------- the final classifiers' CUDA graphs
def test_graphed_classifier_steps_land_on_the_eager_weights():
    """train_minibatch with each step a CUDA-graph replay (padded, weighted last batch; a StepLR
    filling the tensor lr in place) against eager steps from the same weights and permutations."""
    from zsgm.core.training import adam, train_minibatch

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(1000, 24, generator=g).to(DEV), torch.randint(0, 7, (1000,), generator=g).to(DEV)
    runs = {}
    for graphs in (True, False):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(24, 32), torch.nn.ReLU(), torch.nn.Linear(32, 7)).to(DEV)
        opt = adam(net.parameters(), lr=1e-2, weight_decay=1e-4, capturable=graphs, scheduled=graphs)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
        torch.cuda.manual_seed(7)
        losses = train_minibatch(net, net, x, y, 5, 96, opt, sched, graphs=graphs)  # 1000 = 10 x 96 + 40
        runs[graphs] = (net, losses, opt.param_groups[0]["lr"])
    (ga, la, lr_a), (eb, lb, lr_b) = runs[True], runs[False]
    assert torch.is_tensor(lr_a) and float(lr_a) == pytest.approx(lr_b) == pytest.approx(1e-4)
    assert la == pytest.approx(lb, rel=1e-3)
    for (name, a), b in zip(ga.state_dict().items(), eb.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), f"{name} differs by {(a - b).abs().max()}"


@pytest.mark.parametrize("name", ["prototype", "softmax"])
def test_graphed_final_classifier_predicts_as_the_eager_one(name):
    from zsgm.evaluate.classifiers import build
    from zsgm.testing import planted_featureset

    fs = planted_featureset(n_classes=20, n_unseen=5, n_val=4, feature_dim=64, seed=1)
    x, y = fs.features.float().to(DEV), fs.labels.long().to(DEV)
    att = fs.attributes.float().to(DEV)
    preds = {}
    for graphs in ("auto", "off"):
        torch.manual_seed(0)
        torch.cuda.manual_seed(0)
        clf = build(name, classifier_defaults(name, epochs=10, cuda_graphs=graphs)).fit(x, y, 20, att)
        preds[graphs] = clf.scores(x).argmax(1)
    agree = (preds["auto"] == preds["off"]).float().mean()
    acc = (preds["auto"] == y).float().mean()
    print(f"{name}: graphed vs eager predictions agree on {agree:.4f}; accuracy {acc:.3f}")
    assert agree > 0.99 and acc > 0.5


def test_graphed_seen_classifier_of_the_regulariser_predicts_as_the_eager_one():
    """f-CLSWGAN's pre-trained seen classifier: graphed steps by default on CUDA, off with cuda_graphs=off."""
    data = _data(n=2000)  # 20 epochs of 8 steps: 92 % training accuracy on the CPU
    preds = {}
    for graphs in ("auto", "off"):
        eng = _engine("wgan", cls_weight=0.01, cls_pretrain_epochs=20, cuda_graphs=graphs)
        eng.prepare_regulariser(data)
        preds[graphs] = eng.seen_clf(data.features).argmax(1)
    mapped = eng.class_map[data.labels]
    agree = (preds["auto"] == preds["off"]).float().mean()
    acc = (preds["auto"] == mapped).float().mean()
    print(f"seen classifier: graphed vs eager predictions agree on {agree:.4f}; accuracy {acc:.3f}")
    assert agree > 0.98 and acc > 0.8
