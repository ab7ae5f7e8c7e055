"""The GZSL scorer: a problem in normalised feature space, the final classifier trained on its
real seen features plus synthetic features of its unseen classes, and U / S / H with
calibrated stacking.

The synthetic features come from a callable the caller hands over (``pipelines`` wires the
generator's engine in), so that ``evaluate`` never imports ``generate``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from zsgm.evaluate.classifiers import build as build_classifier
from zsgm.evaluate.metrics import GZSLResult, best_gamma, gzsl_evaluate
from zsgm.extract.featureset import FeatureSet, fit_normaliser

# (attributes [K, A] of the classes to synthesise, n per class) -> features [K * n, D], class-major
Synthesize = Callable[[torch.Tensor, int], torch.Tensor]


@dataclass
class Problem:
    """A GZSL problem in normalised feature space: what to train on and what to score."""
    train_features: torch.Tensor    # [N, D] real training features (the generator's data)
    train_labels: torch.Tensor      # [N] their classes (rows of ``attributes``)
    attributes: torch.Tensor        # [C, A] every class
    seen: torch.Tensor              # seen (training) classes
    unseen: torch.Tensor            # classes to synthesise
    eval_seen: tuple[torch.Tensor, torch.Tensor]
    eval_unseen: tuple[torch.Tensor, torch.Tensor]
    classes: torch.Tensor = field(default=None)  # the classes of this problem's universe


def unit_attributes(att: torch.Tensor) -> torch.Tensor:
    """Class attributes scaled to unit L2 norm per class, the field's habit (xlsa17's ``att`` already is,
    except ``cub_sent``'s sentence embeddings, of norm ~20). Measured on CUB-50 with cub_sent's
    attributes (lab/results/2026-12-02-cub50-sent.md, 3 seeds): f-CLSWGAN's validation-selected
    test H 55.0 raw against 72.0 at unit norm, and raw ones made lsgan's and vae's runs collapse and
    re-seed. Rows already of unit norm are returned as they are, bit for bit, so that runs on such
    files do not move."""
    norm = att.norm(dim=1, keepdim=True)
    off = ((norm - 1).abs() > 1e-4) & (norm > 0)
    return torch.where(off, att / norm.clamp_min(1e-12), att)


def make_problem(fs: FeatureSet, train_idx, seen, unseen, eval_seen_idx, eval_unseen_idx, normalise: str,
                 device: torch.device) -> Problem:
    x_train, y_train = fs.take(train_idx)
    norm = fit_normaliser(x_train, normalise)
    att = unit_attributes(fs.attributes.float()).to(device)

    def part(idx):
        x, y = fs.take(idx)
        return norm(x).to(device), y.to(device)

    return Problem(norm(x_train).to(device), y_train.to(device), att, seen.to(device),
                   unseen.to(device), part(eval_seen_idx), part(eval_unseen_idx),
                   torch.cat([seen, unseen]).to(device))


@dataclass
class Scores:
    seen: torch.Tensor
    unseen: torch.Tensor
    seen_mask: torch.Tensor
    synth_std: float


def classify(prob: Problem, classifier: str, options: dict, synthesize: Synthesize | None = None,
             n_synth: int = 0) -> Scores:
    """Synthesise ``n_synth`` features of each unseen class (``synthesize`` None: a family that
    synthesises nothing), train the final classifier ``classifier`` with ``options``, score the
    evaluation images.

    Scores are restricted to the problem's classes (others get -inf) so that validation
    problems never predict a test-unseen class.
    """
    n_all = prob.attributes.shape[0]
    xs, ys = [prob.train_features], [prob.train_labels]
    synth_std = float("nan")
    if synthesize is not None and len(prob.unseen):
        fake = synthesize(prob.attributes[prob.unseen], n_synth)
        xs.append(fake)
        ys.append(prob.unseen.repeat_interleave(n_synth))
        synth_std = float(fake.std(0).mean())
    x, y = torch.cat(xs), torch.cat(ys)
    seen_mask = torch.zeros(n_all, dtype=torch.bool, device=x.device)
    seen_mask[prob.seen] = True
    # Classifiers work in the problem's own class indices 0..k-1.
    local = torch.full((n_all,), -1, dtype=torch.long, device=x.device)
    local[prob.classes] = torch.arange(len(prob.classes), device=x.device)
    clf = build_classifier(classifier, options)
    clf.fit(x, local[y], len(prob.classes), prob.attributes[prob.classes], seen_mask[prob.classes])

    def full(xe):
        out = torch.full((xe.shape[0], n_all), float("-inf"), device=xe.device)
        out[:, prob.classes] = clf.scores(xe)
        return out

    return Scores(full(prob.eval_seen[0]), full(prob.eval_unseen[0]), seen_mask, synth_std)


def score(s: Scores, prob: Problem, gamma: float | None, rule: str = "max_h",
          grid: torch.Tensor | None = None) -> tuple[float, GZSLResult]:
    """With ``gamma`` None the calibration of ``grid`` (default: ``gamma_grid`` of these scores) is
    chosen on these very scores by ``rule``."""
    args = (s.seen, prob.eval_seen[1], s.unseen, prob.eval_unseen[1], s.seen_mask)
    if gamma is None:
        return best_gamma(*args, grid=grid, rule=rule)
    return gamma, gzsl_evaluate(*args, gamma=gamma)
