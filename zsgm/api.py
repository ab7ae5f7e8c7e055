"""The public Python API: load a FeatureSet, run a configuration, synthesise features.

    import zsgm

    fs = zsgm.load_featureset("data/demo/cub20_lite0.safetensors")   # or an xlsa17 res101.mat
    result = zsgm.run(fs, model="cramer", classifier="prototype", seed=0, epochs=5)
    print(result.H, result.record["selection"])
    x, y = result.synthesize(["Laysan_Albatross"], n=10)           # class names or indices

``run`` takes the fields of the CLI's run (``RunConfig``: model, classifier, seed, epochs, selection,
noise, hp, clf_hp, ...) and checks them as ``zsgm gzsl`` does; its record goes to the same store
(``$ZSGM_RESULTS/runs.jsonl`` unless ``store=``) and, like the CLI, it drops the run's checkpoints
unless ``keep_checkpoints=True``.
"""
from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from zsgm.core.errors import ZsgmError
from zsgm.evaluate.records import results_dir
from zsgm.evaluate.scoring import Problem
from zsgm.extract.featureset import FeatureSet
from zsgm.generate.engine import Engine
from zsgm.pipelines.config import RunConfig
from zsgm.pipelines.gzsl import featureset_fingerprint, run_gzsl

# id(FeatureSet) -> (a weak reference to it, the file it was loaded from); the reference tells a live
# FeatureSet from a later one that reuses a collected one's id
_SOURCES: dict[int, tuple[weakref.ref, str]] = {}


def load_featureset(path: str | Path) -> FeatureSet:
    """A FeatureSet from a ``.safetensors`` file (``zsgm extract``'s) or an xlsa17 ``res101.mat`` with its
    split file beside it."""
    fs = FeatureSet.load(path)
    _SOURCES[id(fs)] = (weakref.ref(fs), str(Path(path)))
    return fs


def _record_metric(key: str, doc: str) -> property:
    return property(lambda self: self.record[key], doc=f"{key}: {doc}, from the record")


@dataclass
class Result:
    """One finished run: its record, per-class test accuracies and the trained generator."""
    record: dict
    per_class: dict[str, dict[str, float]]   # {"seen": {class name: accuracy %}, "unseen": {...}}
    engine: Engine                            # the trained generator (the final training on trainval)
    featureset: FeatureSet
    problem: Problem                          # the final problem, in the run's normalised feature space
    run_dir: Path

    U = _record_metric("U", "unseen-class accuracy (%) among all classes")
    S = _record_metric("S", "seen-class accuracy (%) among all classes")
    H = _record_metric("H", "their harmonic mean")
    zsl = _record_metric("zsl", "unseen-class accuracy (%) among the unseen classes only")

    def class_index(self, c: int | str) -> int:
        names = self.featureset.class_names
        if isinstance(c, str):
            matches = [i for i, n in enumerate(names) if n == c or n.split(".", 1)[-1] == c]
            if len(matches) != 1:
                raise ZsgmError(f"class {c!r}: {'no' if not matches else 'more than one'} class of this FeatureSet "
                                f"has that name; use an index 0..{self.featureset.n_classes - 1} or one of "
                                f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}")
            return matches[0]
        if not 0 <= int(c) < self.featureset.n_classes:
            raise ZsgmError(f"class {c}: the FeatureSet has classes 0..{self.featureset.n_classes - 1}")
        return int(c)

    def synthesize(self, classes: Sequence[int | str] | None = None, n: int = 100,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` synthetic features for each class (indices or names; default: the unseen classes), from
        the class attributes alone, with the run's attribute-noise setting. Features are in the run's
        normalised feature space (what its final classifier was trained on); returns (features, labels)."""
        if not self.engine.family.synthesizes:
            raise ZsgmError(f"model {self.record['model']} has no generator to synthesise with")
        if n < 1:
            raise ZsgmError(f"n must be >= 1, got {n}")
        idx = [self.class_index(c) for c in classes] if classes is not None else self.problem.unseen.tolist()
        cls = torch.tensor(idx, dtype=torch.long)
        gen = torch.Generator(device=self.engine.device).manual_seed(seed)
        x = self.engine.synthesize(self.problem.attributes[cls.to(self.problem.attributes.device)], n, gen)
        return x.cpu(), cls.repeat_interleave(n)


def run(features: str | Path | FeatureSet | None = None, *, store: str | Path | None = None,
        runs_dir: str | Path | None = None, keep_checkpoints: bool = False, progress: bool = False,
        **settings: Any) -> Result:
    """Run one GZSL configuration on ``features`` (a path, a FeatureSet, or None for ``settings['data']``)
    and return its :class:`Result`. ``settings`` are the run's fields (``RunConfig``), checked before any
    work as the CLI checks them."""
    fs = None
    if isinstance(features, FeatureSet):
        fs = features
        ref, path = _SOURCES.get(id(fs), (None, None))
        path = path if ref is not None and ref() is fs else None
        if path is None:  # a FeatureSet built in memory: its identity is a file, as every run's is
            path = str(results_dir() / "featuresets" / f"{featureset_fingerprint(fs)[:16]}.safetensors")
            if not Path(path).is_file():
                fs.save(path)
        settings["features"] = path
    elif features is not None:
        settings["features"] = str(features)
    if "features" in settings and fs is None:
        fs = load_featureset(settings["features"])
    cfg = RunConfig.from_dict(settings, "zsgm.run")
    keep: dict = {}
    record = run_gzsl(cfg, store=Path(store) if store else None, runs_dir=Path(runs_dir) if runs_dir else None,
                      progress=progress, featureset=fs, keep=keep, keep_checkpoints=keep_checkpoints)
    run_dir = keep["run_dir"]
    attempt = keep["attempt"]
    per_class = json.loads((run_dir / "per_class.json").read_text())
    return Result(record, per_class, attempt.engine, keep["featureset"], attempt.prob, run_dir)


__all__ = ["FeatureSet", "Result", "RunConfig", "load_featureset", "run"]
