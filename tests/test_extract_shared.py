"""The real staged subsets (../shared/data: 20 CUB classes, 20 FLO classes) extract, and the
committed demo FeatureSet is what data/README.md says it is."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
import torch

from zsgm.core.project import PROJECT_ROOT, shared_data_root
from zsgm.extract.extractor import EngineConfig
from zsgm.extract.featureset import FeatureSet
from zsgm.extract.job import ExtractRequest, run

SHARED = shared_data_root()
needs_shared = pytest.mark.skipif(SHARED is None or not (SHARED / "CUB" / "images").is_dir(),
                                  reason="../shared/data (or $ZSGM_DATA) with the staged images is absent")
DEMO = PROJECT_ROOT / "data" / "demo" / "cub20_lite0.safetensors"


def _quick(data: str, classes: list[str], out) -> FeatureSet:
    """Plumbing only: a tiny random backbone at 32 px, JPEGs decoded at reduced scale."""
    eng = EngineConfig(batch_size=32, workers=1, shard_size=64, progress=False, draft=48)
    req = ExtractRequest(data=data, backbone="resnet10t", random_init=True, img_size=32, data_root=str(SHARED),
                         out=str(out), classes=classes, engine=eng)
    return FeatureSet.load(run(req))


@needs_shared
def test_shared_cub_subset_extracts(tmp_path):
    fs = _quick("cub", ["001", "004"], tmp_path / "cub.safetensors")
    images = {c: sorted((SHARED / "CUB" / "images" / c).glob("*.jpg"))
              for c in ("001.Black_footed_Albatross", "004.Groove_billed_Ani")}
    assert fs.features.shape[0] == sum(map(len, images.values()))
    # 004 is xlsa17-unseen: all of its images are test_unseen; 001 is seen
    unseen = fs.class_names.index("004.Groove_billed_Ani")
    assert set(fs.labels[fs.test_unseen_loc].tolist()) == {unseen}
    assert len(fs.test_unseen_loc) == len(images["004.Groove_billed_Ani"])
    # xlsa17 index = CUB image id - 1, as the staged manifest records
    manifest = (SHARED / "IMAGES_MANIFEST.tsv").read_text().splitlines()[1:]
    ids = {row.split("\t")[0]: int(row.split("\t")[-1].split("=")[1]) for row in manifest
           if row.startswith("CUB/") and "cub_image_id=" in row}
    for f, i in zip(fs.image_files, fs.extra["xlsa17_index"].tolist()):
        assert ids["CUB/" + f] == i + 1


@needs_shared
def test_shared_flo_subset_extracts(tmp_path):
    fs = _quick("flo", ["001", "042"], tmp_path / "flo.safetensors")
    n = {lab: len(list((SHARED / "FLO" / "images" / lab).glob("*.jpg"))) for lab in ("001", "042")}
    assert fs.features.shape[0] == sum(n.values())
    assert [c.split(".")[0] for c in fs.class_names] == ["001", "042"]
    assert len(fs.test_unseen_loc) == n["001"]  # label 1 is unseen in xlsa17 FLO
    assert len(fs.trainval_loc) + len(fs.test_seen_loc) == n["042"]


@pytest.mark.skipif(not DEMO.is_file(), reason="the demo FeatureSet is not built")
def test_demo_featureset_matches_its_description():
    fs = FeatureSet.load(DEMO)
    assert fs.features.shape == (1113, 1280) and fs.features.dtype == torch.float16
    assert fs.n_classes == 20 and len(fs.seen_classes) == 10
    assert (len(fs.trainval_loc), len(fs.test_seen_loc), len(fs.test_unseen_loc)) == (403, 118, 592)
    assert fs.attributes.shape == (20, 312) and fs.meta["n_classes_total"] == "200"
    assert fs.meta["backbone"] == "tf_efficientnet_lite0" and fs.meta["pretrained"] == "imagenet"
    assert len(fs.meta["weights_sha256"]) == 64 and fs.val_classes is not None
    if SHARED is not None and (SHARED / "CUB" / "att_splits.mat").is_file():
        m = sio.loadmat(str(SHARED / "CUB" / "att_splits.mat"))
        names = [str(x[0][0]) for x in m["allclasses_names"]]
        cols = [names.index(n) for n in fs.class_names]
        assert np.allclose(fs.attributes.numpy(), m["att"].T[cols], atol=1e-6)
