"""Plots (matplotlib, the ``plots`` extra): pure functions of tables, curves and histories → PNG.

* :func:`h_bars` — H per row of a comparison table, one bar group per dataset, ± std error bars.
* :func:`pretrained_vs_scratch` — H of each backbone, ImageNet weights against from scratch, one panel
  per dataset, one bar per GZSL configuration (the last row field).
* :func:`seen_unseen` — the seen–unseen curve swept by calibrated stacking, AUSUC in the legend.
* :func:`training_curves` — a run's losses and validation U / S / H per epoch (``history.json``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

from zsgm.evaluate.ausuc import SeenUnseenCurve
from zsgm.evaluate.selection import loss_keys
from zsgm.evaluate.tables import Table, row_label
from zsgm.core.errors import ZsgmError
from zsgm.core.files import atomic_path

log = logging.getLogger("zsgm.plots")


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ZsgmError("plots need matplotlib: pip install 'zsgm[plots]'") from exc
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def wrap(title: str, width: int) -> str:
    """A title broken into lines of at most ``width`` characters: a long one never runs into the
    next panel's or off the figure."""
    import textwrap

    return "\n".join(textwrap.fill(line, width) for line in str(title).splitlines()) if title else ""


def has_curves(history: Sequence[dict]) -> bool:
    """Whether a history holds training curves to draw: a loss or an evaluation over at least one epoch
    (a closed-form baseline's single entry holds neither)."""
    return any(isinstance(h.get(k), (int, float)) for h in history for k in (*loss_keys(list(history)), "eval_H"))


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def h_bars(table: Table, path: str | Path, metric: str = "H") -> Path:
    """Grouped bars: x = rows of ``table``, one colour per column group, error bar = std."""
    import numpy as np

    plt = _pyplot()
    rows, groups = table.row_keys, table.col_keys
    labels = [" / ".join(row_label(table, rk)) for rk in rows]
    width = 0.8 / max(1, len(groups))
    width_in = max(5.0, 0.55 * len(rows) * max(1, len(groups)) + 2)
    fig, ax = plt.subplots(figsize=(width_in, 3.8), layout="constrained")
    x = np.arange(len(rows))
    for g, ck in enumerate(groups):
        stats = [table.cells.get((rk, ck, metric)) for rk in rows]
        means = [s.mean if s and s.mean is not None else np.nan for s in stats]
        stds = [s.std if s and s.std is not None else 0.0 for s in stats]
        name = " ".join(str(table.spec.names.get(str(v), v)) for v in ck) or metric
        bars = ax.bar(x + (g - (len(groups) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=name)
        for bar, s in zip(bars, stats):
            if s and s.mean is not None:
                ax.annotate(f"n={s.n}", (bar.get_x() + bar.get_width() / 2, 0), xytext=(0, 2),
                            textcoords="offset points", ha="center", fontsize=7, color="white")
    ax.set_xticks(x, labels, rotation=30 if len(rows) > 4 else 0, ha="right" if len(rows) > 4 else "center")
    ax.set_ylabel(f"{metric} (%) — mean ± std over seeds")
    ax.set_title(wrap(table.spec.title or table.spec.name, int(width_in * 11)))
    if len(groups) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, Path(path))


def pretrained_vs_scratch(table: Table, path: str | Path, metric: str = "H") -> Path:
    """One panel per column group (dataset); x = the table's rows without their last field (backbone,
    weights), one bar per value of that last field (the GZSL configuration); scratch bars hatched."""
    import numpy as np

    plt = _pyplot()
    spec = table.spec
    at = spec.rows.index("pretrained")
    backbones = list(dict.fromkeys(rk[:-2] for rk in table.row_keys))
    configs = list(dict.fromkeys(rk[-2] for rk in table.row_keys))
    groups = table.col_keys
    fig, axes = plt.subplots(1, len(groups), figsize=(max(4.0, 0.5 * len(backbones) * len(configs) + 1.5) * len(groups),
                                                     4.2), sharey=True, squeeze=False)
    width = 0.8 / max(1, len(configs))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, ck in zip(axes[0], groups):
        x = np.arange(len(backbones))
        for j, conf in enumerate(configs):
            for i, bb in enumerate(backbones):
                # the row of this backbone and configuration that has this column (its selection may differ:
                # a FeatureSet without validation classes runs selection fixed)
                s = next((c for r in table.row_keys if r[:-2] == bb and r[-2] == conf
                          and (c := table.cells.get((r, ck, metric))) is not None and c.mean is not None), None)
                if s is None or s.mean is None:
                    continue
                scratch = str(bb[at]) == "scratch"
                ax.bar(x[i] + (j - (len(configs) - 1) / 2) * width, s.mean, width, yerr=s.std or 0.0, capsize=2,
                       color=colours[j % len(colours)], hatch="//" if scratch else None, edgecolor="white",
                       label=str(spec.names.get(str(conf), conf)))
        ax.set_xticks(x, ["\n".join(str(spec.names.get(str(v), v)) for v in bb) for bb in backbones], fontsize=8)
        ax.set_title(" ".join(str(spec.names.get(str(v), v)) for v in ck), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(f"{metric} (%) — mean ± std over seeds; hatched: from scratch")
    uniq = {}
    for ax in axes[0]:
        handles, labels = ax.get_legend_handles_labels()
        uniq.update({lab: h for h, lab in zip(handles, labels) if lab not in uniq})
    fig.legend(uniq.values(), uniq.keys(), loc="lower center", ncol=len(uniq), fontsize=8, bbox_to_anchor=(0.5, -0.02))
    title = wrap(spec.title or spec.name, int(fig.get_figwidth() * 11))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1 - 0.05 * (title.count("\n") + 1)))  # room for every title line
    return _save(fig, Path(path))


def seen_unseen(curves: Mapping[str, SeenUnseenCurve], path: str | Path, title: str = "",
                points: Mapping[str, tuple[float, float]] | None = None) -> Path:
    """S against U for each labelled curve; ``points`` mark each run's chosen operating point (U, S)."""
    import textwrap

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 5.2))
    for name, c in curves.items():
        line, = ax.step(c.U, c.S, where="post", label=f"{name} (AUSUC {c.auc:.1f})")
        if points and name in points:
            u, s = points[name]
            ax.plot([u], [s], "o", color=line.get_color(), markersize=6)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("unseen accuracy U (%)")
    ax.set_ylabel("seen accuracy S (%)")
    ax.set_title(textwrap.fill(title or "seen–unseen curve (calibrated stacking)", 60), fontsize=9)
    ax.grid(alpha=0.3)
    # Below the axes: curves hug the top-left corner, where a legend would hide them.
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    return _save(fig, Path(path))


def training_curves(history: Sequence[dict], path: str | Path, title: str = "",
                    eval_label: str = "U / S / H per evaluation") -> Path:
    """Left: every loss the engine logged per epoch; right: the ``eval_U/S/H`` it logged, titled
    ``eval_label`` (which images they were measured on depends on the run's selection rule)."""
    import textwrap

    plt = _pyplot()
    if not has_curves(history):
        raise ZsgmError(f"{path}: the history holds no losses and no evaluations to plot (a closed-form model); "
                        f"check has_curves() first")
    evals = any(isinstance(h.get("eval_H"), (int, float)) for h in history)
    # A run that scored nothing while training (a retraining, a fixed budget) gets the losses alone.
    # Constrained layout: the figure's title sits above the panels' titles, never on them.
    fig, axes = plt.subplots(1, 2 if evals else 1, figsize=(10 if evals else 5.5, 3.6), squeeze=False,
                             layout="constrained")
    left, right = axes[0][0], (axes[0][1] if evals else None)
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    losses = loss_keys(list(history))
    for k in losses:
        pts = [(e, h[k]) for e, h in zip(epochs, history) if isinstance(h.get(k), (int, float))]
        left.plot(*zip(*pts), label=k, marker="." if len(pts) < 30 else None)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.set_title("training losses")
    if losses:
        left.legend(fontsize=7)
    left.grid(alpha=0.3)
    if epochs and len(set(epochs)) < 3:  # one or two epochs: keep the ticks on whole epochs
        for ax in (left, right):
            if ax is not None:
                ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
                ax.set_xticks(sorted(set(epochs)))
    few = len(set(epochs)) < 3
    if right is None:
        if not few:
            left.xaxis.set_major_locator(_integer_ticks())
        if title:
            fig.suptitle(wrap(title, 60), fontsize=10)
        return _save(fig, Path(path))
    for k, style in (("eval_U", "--"), ("eval_S", ":"), ("eval_H", "-")):
        pts = [(e, h[k]) for e, h in zip(epochs, history) if isinstance(h.get(k), (int, float))]
        if pts:
            right.plot(*zip(*pts), style, marker="o", markersize=3, label=k.removeprefix("eval_"))
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy (%)")
    right.set_title(textwrap.fill(eval_label, 55), fontsize=9)
    for ax in (left, right) if not few else ():
        ax.xaxis.set_major_locator(_integer_ticks())
    right.set_ylim(0, 100)
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    if title:
        fig.suptitle(wrap(title, 110), fontsize=10)
    return _save(fig, Path(path))


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def curve_from_run(run_dir: str | Path) -> SeenUnseenCurve | None:
    """The test seen–unseen curve of a finished run from its ``scores.safetensors``, if saved."""
    import torch
    from safetensors.torch import load_file

    from zsgm.evaluate.ausuc import seen_unseen_curve

    path = Path(run_dir) / "scores.safetensors"
    if not path.is_file():
        return None
    t = load_file(str(path))
    scores = torch.cat([t["scores_seen"], t["scores_unseen"]])
    labels = torch.cat([t["labels_seen"], t["labels_unseen"]])
    keep = torch.isfinite(scores).all(0)  # columns of classes outside the problem are -inf
    remap = torch.full((scores.shape[1],), -1, dtype=torch.long)
    remap[keep] = torch.arange(int(keep.sum()))
    seen = remap[t["seen_mask"].bool() & keep]
    return seen_unseen_curve(scores[:, keep], remap[labels], seen)
