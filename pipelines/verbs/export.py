"""``zsgm export``: a FeatureSet → xlsa17 ``res101.mat`` + ``att_splits.mat`` that the field's
GZSL codebases (tfvaegan, CE-GZSL, f-CLSWGAN ...) read unchanged."""
from __future__ import annotations

HELP = "write a FeatureSet as xlsa17 res101.mat + att_splits.mat for other GZSL codebases"


def add_arguments(p) -> None:
    p.add_argument("--features", required=True,
                   help="a FeatureSet (.safetensors, e.g. data/features/cub/vit_large_patch16_224.safetensors) "
                        "or an xlsa17 res101.mat")
    p.add_argument("--out", required=True, help="folder to write res101.mat and the split file into")
    p.add_argument("--split-name", choices=("att_splits.mat", "sent_splits.mat"),
                   help="name of the split file (default: sent_splits.mat for cub_sent, else att_splits.mat)")
    p.add_argument("--force", action="store_true", help="overwrite files already in --out")


def run(args) -> int:
    from pathlib import Path

    from zsgm.core.errors import ZsgmError
    from zsgm.extract.featureset import FeatureSet
    from zsgm.extract.xlsa17 import export_locations, to_xlsa17

    fs = FeatureSet.load(args.features)
    split_name = args.split_name or ("sent_splits.mat" if fs.dataset == "cub_sent" else "att_splits.mat")
    out = Path(args.out)
    existing = [out / n for n in ("res101.mat", split_name) if (out / n).exists()]
    if existing and not args.force:
        raise ZsgmError(f"{existing[0]} already exists; pass --force to overwrite it or choose another --out")
    if out.resolve() == Path(args.features).resolve().parent and existing:
        raise ZsgmError(f"--out {out} is the folder of --features itself; choose another folder")
    res, split = to_xlsa17(fs, out, split_name)
    locs = export_locations(fs)
    val = fs.val_classes
    print(f"{res}: features [{fs.feature_dim} x {fs.features.shape[0]}], labels 1..{fs.n_classes}"
          f"{', image_files' if fs.image_files else ''}")
    print(f"{split}: att [{fs.attributes.shape[1]} x {fs.n_classes}], original_att, "
          + ", ".join(f"{k} {len(v)}" for k, v in locs.items())
          + f" (1-based); {len(val) if val is not None else 0} validation classes; "
            f"{fs.dataset}, backbone {fs.meta.get('backbone', '?')}")
    return 0
