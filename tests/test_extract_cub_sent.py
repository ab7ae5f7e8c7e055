"""One extraction serves cub and cub_sent: same images, so the second FeatureSet reuses the first's features."""
from __future__ import annotations

import pytest
import torch

from zsgm.extract import job
from zsgm.extract.extractor import EngineConfig
from zsgm.extract.featureset import FeatureSet
from zsgm.extract.job import ExtractRequest, run
from fixtures_images import make_cub, write_split


def _req(root, out, data, **kw):
    eng = EngineConfig(batch_size=4, workers=0, shard_size=8, progress=False)
    return ExtractRequest(data=data, data_root=str(root), out=str(out), engine=eng, backbone="resnet10t",
                          random_init=True, img_size=kw.pop("img_size", 32), **kw)


def test_cub_sent_reuses_the_cub_features(tmp_path, monkeypatch):
    src = make_cub(tmp_path / "root")
    write_split(src.root / "CUB" / "sent_splits.mat", src.labels, src.info["seen"], 200, 1024, src.names,
                n_test_seen=1764)
    feats = tmp_path / "features"
    cub = FeatureSet.load(run(_req(src.root, feats / "cub" / "r.safetensors", "cub")))

    def no_decoding(*a, **k):
        raise AssertionError("cub_sent decoded images again")

    with monkeypatch.context() as mp:
        mp.setattr(job.extractor, "run", no_decoding)
        sent = FeatureSet.load(run(_req(src.root, feats / "cub_sent" / "r.safetensors", "cub_sent")))
    assert torch.equal(sent.features, cub.features) and torch.equal(sent.labels, cub.labels)
    for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc"):
        assert torch.equal(getattr(sent, k), getattr(cub, k))
    assert sent.attributes.shape[1] == 1024 and cub.attributes.shape[1] == 312  # only the semantics differ
    assert sent.meta["dataset"] == "cub_sent" and sent.meta["features_from"].endswith("cub/r.safetensors")
    assert sent.meta["weights_sha256"] == cub.meta["weights_sha256"]
    assert sent.meta["provenance_key"] != cub.meta["provenance_key"]
    # up to date now: a second run neither decodes nor rewrites
    with monkeypatch.context() as mp:
        mp.setattr(job.extractor, "run", no_decoding)
        mp.setattr(job, "_derive", no_decoding)
        run(_req(src.root, feats / "cub_sent" / "r.safetensors", "cub_sent"))
    # another transform (input size) is other features: extracted, not reused
    calls = []
    real = job.extractor.run
    monkeypatch.setattr(job.extractor, "run", lambda *a, **k: calls.append(1) or real(*a, **k))
    run(_req(src.root, feats / "cub_sent" / "r48.safetensors", "cub_sent", img_size=48))
    assert calls == [1]
