"""The GPU decoder's logic, run on the CPU: ``decode_jpeg`` and the tensor transform take a device
argument, so everything but nvJPEG itself is checked here against PIL + timm's transform
(tests/test_cuda.py repeats the comparison on a GPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import create_transform
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from zsgm.extract import gpu_decode, images
from zsgm.core.errors import ZsgmError
from zsgm.extract.extractor import EngineConfig
from zsgm.extract.featureset import FeatureSet
from zsgm.extract.job import ExtractRequest, run
from zsgm.extract.layouts.base import Record
from fixtures_images import jpeg, make_apy, make_cub

IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def timm_eval(interpolation: str = "bicubic", size: int = 64, crop_pct: float = 0.875, **norm):
    return create_transform(input_size=(3, size, size), interpolation=interpolation, crop_pct=crop_pct,
                            is_training=False, **(norm or IMAGENET))


def photos(tmp_path) -> list:
    """JPEGs of assorted shapes (landscape, portrait, tiny, square) and one greyscale JPEG.
    Noise images are the hard case: bicubic overshoots at every sharp edge."""
    files = [jpeg(tmp_path / f"{i}.jpg", seed=i, size=s)
             for i, s in enumerate([(120, 90), (90, 131), (33, 47), (64, 64), (200, 75)])]
    grey = tmp_path / "grey.jpg"
    Image.fromarray(np.random.default_rng(9).integers(0, 256, (70, 100), dtype=np.uint8)).save(grey, quality=90)
    return files + [grey]


def decode_on(device, files, tf, boxes=None):
    data, _, ok, err, is_jpeg = gpu_decode.read_batch(files)
    dec = gpu_decode.GpuDecoder(gpu_decode.TensorTransform.from_timm(tf), device)
    return dec(data, ok, err, is_jpeg, boxes or [None] * len(files))


def grey_levels(x: torch.Tensor, std) -> torch.Tensor:
    return x * torch.tensor(std, device=x.device).view(1, -1, 1, 1) * 255


@pytest.mark.parametrize("interpolation,norm", [("bicubic", IMAGENET), ("bilinear", dict(mean=(0.5,) * 3,
                                                                                           std=(0.5,) * 3))])
def test_tensor_path_matches_pil_and_timm_within_two_grey_levels(tmp_path, interpolation, norm):
    files = photos(tmp_path)
    tf = timm_eval(interpolation, **norm)
    x, ok, err = decode_on("cpu", files, tf)
    ref = torch.stack([tf(images.decode(p)) for p in files])
    assert ok.all() and x.shape == ref.shape == (len(files), 3, 64, 64)
    diff = grey_levels((x - ref).abs(), norm["std"])
    # PIL's weights and its rounding after each pass; one float pass (torch's interpolate, no
    # rounding between width and height) was off by up to 13 grey levels on these images
    assert diff.max() <= 1.01 and diff.mean() < 0.01


def test_resized_size_is_torchvisions(tmp_path):
    for resize, max_size in [(73, None), ((40, 50), None), (64, 80)]:
        tt = gpu_decode.TensorTransform(resize, InterpolationMode.BICUBIC, max_size, None, (0,) * 3, (1,) * 3)
        for h, w in [(90, 120), (131, 90), (64, 64), (47, 33), (75, 200)]:
            want = TF.resize(torch.zeros(3, h, w, dtype=torch.uint8), [resize] if isinstance(resize, int)
                             else list(resize), max_size=max_size, antialias=True).shape[1:]
            assert tt.resized_size(h, w) == list(want), (resize, max_size, h, w)


def test_a_batch_split_by_size_gives_the_same_pixels(tmp_path, monkeypatch):
    """Padding is capped: images are grouped by area, each group padded to its own largest."""
    files = photos(tmp_path)
    whole, _, _ = decode_on("cpu", files, timm_eval())
    cap = 3 * 131 * 120 * 2
    monkeypatch.setattr(gpu_decode, "PAD_CAP", cap)
    sizes = [(90, 120), (131, 90), (33, 47), (64, 64), (75, 200), (70, 100)]  # (h, w) of photos()
    groups = gpu_decode._size_groups(sizes)
    assert sorted(i for g in groups for i in g) == list(range(6)) and len(groups) > 1
    for g in groups:
        padded = 3 * len(g) * max(sizes[i][0] for i in g) * max(sizes[i][1] for i in g)
        assert padded <= cap or len(g) == 1
    split, _, _ = decode_on("cpu", files, timm_eval())
    assert torch.equal(whole, split)


def test_crop_boxes_match_pil_even_past_the_edge(tmp_path):
    files = photos(tmp_path)[:3]
    boxes = [(10, 5, 80, 70), (-20, 30, 60, 400), (30, 40, 31, 41)]  # inside, past the edges, 1 pixel
    tf = timm_eval()
    x, ok, _ = decode_on("cpu", files, tf, boxes)
    ref = torch.stack([tf(images.decode(p, b)) for p, b in zip(files, boxes)])
    assert ok.all() and grey_levels((x - ref).abs(), IMAGENET["std"]).max() <= 1.01


def test_workers_send_bytes_for_jpegs_and_pil_pixels_or_a_reason_for_the_rest(tmp_path):
    good, png, cut = jpeg(tmp_path / "a.jpg", 1, (50, 40)), tmp_path / "b.png", jpeg(tmp_path / "c.jpg", 2, (50, 40))
    Image.open(good).save(png)
    cut.write_bytes(cut.read_bytes()[:300])
    ds = gpu_decode.EncodedImages([Record(i, p, 0) for i, p in enumerate([good, png, cut, tmp_path / "gone.jpg"])])
    (d0, _, ok0, _, j0), (d1, _, ok1, _, j1), (_, _, ok2, e2, _), (_, _, ok3, e3, _) = (ds[i] for i in range(4))
    assert ok0 and j0 and d0.numel() == good.stat().st_size  # the file's bytes, decoded later on the device
    assert ok1 and not j1 and torch.equal(d1, torch.from_numpy(np.array(Image.open(png))).permute(2, 0, 1))
    assert not ok2 and "truncated" in e2.lower()  # no end marker: PIL decodes it and reports why it cannot
    assert not ok3 and "gone.jpg" in e3


def test_a_batch_with_unreadable_images_keeps_their_rows_flagged(tmp_path):
    files = photos(tmp_path)[:3]
    files[1].write_bytes(files[1].read_bytes()[:200])
    x, ok, err = decode_on("cpu", files, timm_eval())
    assert ok.tolist() == [True, False, True] and "truncated" in err[1].lower()
    assert x.shape == (3, 3, 64, 64) and torch.isfinite(x).all()
    bad = [jpeg(tmp_path / "z.jpg", 3)]
    bad[0].write_bytes(b"\xff\xd8 not a jpeg")
    x, ok, err = decode_on("cpu", bad, timm_eval())  # nothing decodable: a blank row, flagged
    assert not ok[0] and err[0] and x.shape == (1, 3, 64, 64)


def test_transforms_it_cannot_apply_name_the_fix():
    with pytest.raises(ZsgmError, match="--decode pil"):
        gpu_decode.TensorTransform.from_timm(T.Compose([T.RandomHorizontalFlip(), T.ToTensor()]))
    with pytest.raises(ZsgmError, match="fixed output size"):
        gpu_decode.TensorTransform.from_timm(T.Compose([T.Resize(64), T.ToTensor()]))


def test_decoder_choice(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(gpu_decode, "nvjpeg_error", lambda device: None)  # as on a GPU box
    assert gpu_decode.resolve_decoder("auto", cpu, None) == "pil"
    assert gpu_decode.resolve_decoder("auto", cuda, None, timm_eval()) == "gpu"
    assert gpu_decode.resolve_decoder("auto", cuda, 256) == "pil"  # --fast-decode is PIL's
    assert gpu_decode.resolve_decoder("pil", cuda, None) == "pil"
    odd = T.Compose([T.Resize(64), T.RandomHorizontalFlip(), T.ToTensor()])
    assert gpu_decode.resolve_decoder("auto", cuda, None, odd) == "pil"  # a transform it cannot apply
    for args, why in [((cpu, None), "needs a CUDA device"), ((cuda, 256), "--fast-decode"),
                      ((cuda, None, odd), "RandomHorizontalFlip")]:
        with pytest.raises(ZsgmError, match=why):
            gpu_decode.resolve_decoder("gpu", *args)
    with pytest.raises(ZsgmError, match="auto, pil, gpu"):
        gpu_decode.resolve_decoder("nvjpeg", cuda, None)
    monkeypatch.setattr(gpu_decode, "nvjpeg_error", lambda device: "nvJPEG does not run here (test)")
    assert gpu_decode.resolve_decoder("auto", cuda, None) == "pil"
    with pytest.raises(ZsgmError, match="nvJPEG does not run here"):
        gpu_decode.resolve_decoder("gpu", cuda, None)


def test_nvjpeg_probe_reports_why_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the probe succeeds (tests/test_cuda.py)")
    assert "nvJPEG does not run here" in gpu_decode.nvjpeg_error(torch.device("cuda"))


def _extract(root, out, data="cub", on_bad_image="fail", device="cpu", decode="auto"):
    eng = EngineConfig(batch_size=4, workers=0, shard_size=8, progress=False, on_bad_image=on_bad_image,
                       decode=decode)
    return FeatureSet.load(run(ExtractRequest(data=data, data_root=str(root), out=str(out), engine=eng,
                                              backbone="resnet10t", random_init=True, img_size=32, device=device)))


@pytest.mark.parametrize("maker", ["cub", "apy"])
def test_engine_on_the_gpu_decoder_path_gives_pils_features(tmp_path, monkeypatch, maker):
    """The whole engine with the GPU decoder's code path (its device the CPU): same rows as PIL's
    run, features equal up to a grey level, a provenance of its own; APY's boxes crop alike."""
    if maker == "cub":
        make_cub(tmp_path / "root")
    else:
        from zsgm.extract import specs

        _, spec = make_apy(tmp_path / "root")
        monkeypatch.setitem(specs.DATASETS, "apy", spec)
    pil = _extract(tmp_path / "root", tmp_path / "pil.safetensors", maker)
    monkeypatch.setattr(gpu_decode, "resolve_decoder", lambda *args: "gpu")
    gpu = _extract(tmp_path / "root", tmp_path / "gpu.safetensors", maker)
    assert gpu.meta["decode"] == "gpu" and pil.meta["decode"] == "pil"
    assert gpu.meta["provenance_key"] != pil.meta["provenance_key"]
    assert torch.equal(gpu.labels, pil.labels) and gpu.features.shape == pil.features.shape
    cos = torch.nn.functional.cosine_similarity(gpu.features.float(), pil.features.float())
    assert cos.min() > 0.999


def test_engine_on_the_gpu_decoder_path_skips_a_truncated_image_by_path(tmp_path, monkeypatch):
    fx = make_cub(tmp_path / "root")
    fx.paths[3].write_bytes(fx.paths[3].read_bytes()[:400])
    monkeypatch.setattr(gpu_decode, "resolve_decoder", lambda *args: "gpu")
    with pytest.raises(ZsgmError, match="--on-bad-image skip") as e:
        _extract(tmp_path / "root", tmp_path / "x.safetensors")
    assert str(fx.paths[3]) in str(e.value)
    assert not _decode_threads()  # the run that failed stopped its decode thread
    fs = _extract(tmp_path / "root", tmp_path / "x.safetensors", on_bad_image="skip")
    assert 3 not in fs.extra["xlsa17_index"].tolist() and fx.paths[3].name in fs.meta["skipped_images"]


def _decode_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "zsgm-gpu-decode"]


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_decoding_ahead_keeps_the_batches_and_their_order(depth):
    out = list(gpu_decode.decode_ahead(range(10), lambda b: (b, torch.full((2,), float(b))), depth, "cpu"))
    assert [b for b, _ in out] == list(range(10))
    assert all(torch.equal(x, torch.full((2,), float(b))) for b, x in out)
    assert not _decode_threads()


def test_decoding_ahead_runs_ahead_of_the_consumer():
    import time

    calls = []
    gen = gpu_decode.decode_ahead(range(10), lambda b: calls.append(b) or b, 2, "cpu")
    assert next(gen) == 0
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:  # 2 waiting in the hand-over, 1 more decoded
        time.sleep(0.01)
    assert len(calls) >= 3, calls
    assert len(calls) <= 4  # bounded: the thread waits for the consumer
    gen.close()
    assert not _decode_threads()


def test_decoding_ahead_raises_the_threads_error_in_the_caller():
    def decode(b):
        if b == 3:
            raise ValueError("cannot decode batch 3")
        return b

    got = []
    with pytest.raises(ValueError, match="batch 3"):
        for b in gpu_decode.decode_ahead(range(10), decode, 2, "cpu"):
            got.append(b)
    assert got == [0, 1, 2] and not _decode_threads()
