"""The benchmark datasets of GZSL (xlsa17 splits, Xian et al. 2018) and their expected counts."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zsgm.core.errors import ZsgmError, unknown_name_error
from zsgm.core.project import data_root


@dataclass(frozen=True)
class DatasetSpec:
    name: str            # the name users type: --data cub
    folder: str          # folder under the data root, as the xlsa17 release names it
    split_file: str      # att_splits.mat or sent_splits.mat
    n_images: int
    n_trainval: int
    n_test_seen: int
    n_test_unseen: int
    n_seen: int
    n_unseen: int
    att_dim: int
    description: str

    @property
    def n_classes(self) -> int:
        return self.n_seen + self.n_unseen

    def folder_path(self, root: str | Path | None = None) -> Path:
        return data_root(root) / self.folder

    def split_path(self, root: str | Path | None = None) -> Path:
        return self.folder_path(root) / self.split_file

    def features_path(self, root: str | Path | None = None) -> Path:
        return self.folder_path(root) / "res101.mat"


DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec("apy", "APY", "att_splits.mat", 15339, 5932, 1483, 7924, 20, 12, 64,
                    "aPascal & aYahoo objects, 64 attributes"),
        DatasetSpec("awa1", "AWA1", "att_splits.mat", 30475, 19832, 4958, 5685, 40, 10, 85,
                    "Animals with Attributes 1, 85 attributes"),
        DatasetSpec("awa2", "AWA2", "att_splits.mat", 37322, 23527, 5882, 7913, 40, 10, 85,
                    "Animals with Attributes 2, 85 attributes"),
        DatasetSpec("cub", "CUB", "att_splits.mat", 11788, 7057, 1764, 2967, 150, 50, 312,
                    "Caltech-UCSD Birds 200-2011, 312 attributes"),
        DatasetSpec("cub_sent", "CUB", "sent_splits.mat", 11788, 7057, 1764, 2967, 150, 50, 1024,
                    "CUB with 1024-d sentence embeddings (Reed et al.)"),
        DatasetSpec("flo", "FLO", "att_splits.mat", 8189, 5631, 1403, 1155, 82, 20, 1024,
                    "Oxford-102 Flowers, 1024-d sentence embeddings"),
        DatasetSpec("sun", "SUN", "att_splits.mat", 14340, 10320, 2580, 1440, 645, 72, 102,
                    "SUN attribute scenes, 102 attributes"),
    ]
}


def get_spec(name: str) -> DatasetSpec:
    key = name.lower()
    if key not in DATASETS:
        raise unknown_name_error("dataset", name, list(DATASETS) + ["demo"])
    return DATASETS[key]
