"""``zsgm bench``: how fast zsgm is, measured side by side in one process.

Sections (every figure a median of ``repeats`` runs, with min and max; ratios pair by pair):

a. engine throughput — generator / critic iterations per second of the one engine for
   ``wgan`` and ``cramer`` on a CUB-sized planted FeatureSet, and of the field's reference
   loop (``pipelines/reference.py``) on the same data; on CUDA also with bf16 autocast and
   with a compiled generator (the options the engine offers), so that one can see whether
   they pay on the device at hand.
b. full runs, zsgm vs the field's loop — for each model × classifier pair the same number of
   generator epochs (capped, early stopping off), both selecting the best epoch on test as
   the field did (``selection: oracle``, labelled so), wall time and H of each, and the
   ratio per repeat.
c. time to result — zsgm's honest default (validation selection, then retraining on
   trainval, one test evaluation): full-run wall time and time-to-H, the training +
   evaluation time until validation H is within 1 point of its final value.
d. the bundled demo end to end: ``make gzsl`` as a fresh process, start-up included.
e. extraction throughput (``extract/bench.py``): pipeline vs bare forward (``--backbones``, ``--images``,
   ``--decode`` choose what it times).

Sections run in the order pairs (b), ttr (c), throughput (a), demo (d), extraction (e); the result
files are rewritten after each, so that a run cut short keeps what it measured.

Results go to ``bench/results/<date>-<host>.json`` and ``.md`` (written atomically).
Timings on a shared machine are noisy: compare only ratios measured in one process.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import platform
import resource
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from zsgm.core.device import pick_device
from zsgm.core.errors import ZsgmError
from zsgm.core.files import atomic_write_json, atomic_write_text
from zsgm.core.project import PROJECT_ROOT, versions

log = logging.getLogger("zsgm.bench")
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"

BUDGETS_FILE = Path(__file__).with_name("budgets.yaml")


@dataclass
class Budget:
    """What one benchmark measures with: the fields and their types; the values (``seed``: the seed
    study's budget on a CUB-sized set; ``cpu``: the same data with narrower networks, so that a 2-core
    machine finishes in minutes; ``quick``: a small smoke problem) and what each field means are
    ``bench/budgets.yaml``'s."""
    name: str
    counts: tuple[int, int, int]   # trainval, test seen, test unseen
    n_classes: int
    n_unseen: int
    n_val: int
    feature_dim: int
    hp: dict
    clf_hp: dict
    epochs: int
    eval_every: int
    throughput_iters: int
    ref_clf_epochs: int
    ttr_epochs: int | None
    backbones: tuple[str, ...]
    images: int
    extract_batch: int


def load_budgets(path: Path = BUDGETS_FILE) -> dict[str, Budget]:
    """The budgets of ``path``: ``seed`` names every field of :class:`Budget`; every other budget is
    ``seed`` with the fields it names replaced."""
    from zsgm.pipelines.config import load_yaml

    doc = load_yaml(path)
    fields = {f.name: f.type for f in dataclasses.fields(Budget) if f.name != "name"}
    if set(doc.get("seed") or {}) != set(fields):
        raise ZsgmError(f"{path}: 'seed' must name every budget field: {', '.join(fields)}")
    out = {}
    for name, over in doc.items():
        if not isinstance(over, dict) or set(over) - set(fields):
            raise ZsgmError(f"{path}: budget '{name}' must map some of {', '.join(fields)} to values")
        values = copy.deepcopy({**doc["seed"], **over})
        out[name] = Budget(name, **{k: tuple(v) if fields[k].startswith("tuple") else v for k, v in values.items()})
    return out


BUDGETS = load_budgets()


@dataclass
class BenchConfig:
    device: str = "auto"
    quick: bool = False
    repeats: int = 3
    ttr_repeats: int | None = None    # repeats of the time-to-result runs (default: repeats)
    tag: str = ""                     # appended to the result file name
    budget: str = "auto"              # auto: seed on CUDA, cpu on CPU (quick with --quick)
    epochs: int | None = None         # override the budget's compared epochs
    ttr_epochs: int | None = None     # override the epochs of the time-to-result runs
    eval_every: int | None = None
    also_eval_every: tuple[int, ...] = ()  # more zsgm cadences, each compared with the same reference runs
    models: tuple[str, ...] = ("wgan", "cramer")
    classifiers: tuple[str, ...] = ("softmax", "prototype")
    sections: tuple[str, ...] = ("pairs", "ttr", "throughput", "demo", "extraction")
    speed_options: bool = True        # measure the speed options: bf16 (CPU, CUDA); graphs off, compile (CUDA)
    clf_set: dict = field(default_factory=dict)  # final-classifier settings for zsgm's runs (not the reference's)
    demo_compare: tuple[str, ...] = ()  # demo section: extra zsgm gzsl arguments of a compared run (before / after)
    backbones: tuple[str, ...] = ()   # extraction: backbones to time (default: the budget's)
    images: int | None = None         # extraction: images per backbone (default: the budget's)
    decoders: tuple[str, ...] = ()    # extraction: decoder variants (default: pil, on CUDA also gpu and gpu-inline)
    out_dir: Path | None = None
    seed: int = 0

    def resolve_budget(self, device: torch.device) -> Budget:
        name = "quick" if self.quick else self.budget
        if name == "auto":
            name = "seed" if device.type == "cuda" else "cpu"
        if name not in BUDGETS:
            raise ZsgmError(f"unknown budget '{name}'; use one of {', '.join(BUDGETS)} or auto")
        b = dataclasses.replace(BUDGETS[name])
        if self.epochs:
            b.epochs = int(self.epochs)
        if self.eval_every:
            b.eval_every = int(self.eval_every)
        if self.ttr_epochs:
            b.ttr_epochs = int(self.ttr_epochs)
        if self.backbones:
            b.backbones = tuple(self.backbones)
        if self.images:
            b.images = int(self.images)
        return b


# ---------------------------------------------------------------- statistics
def stat(values: list[float], digits: int = 4) -> dict:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {"median": round(statistics.median(vals), digits), "min": round(min(vals), digits),
            "max": round(max(vals), digits), "n": len(vals), "values": [round(v, digits) for v in vals]}


def fmt(s: dict, digits: int = 2, unit: str = "") -> str:
    if not s or s.get("median") is None:
        return "n/a"
    if s["n"] == 1:
        return f"{s['median']:.{digits}f}{unit}"
    return f"{s['median']:.{digits}f}{unit} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if platform.system() == "Darwin" else rss / 1024


def load_avg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ---------------------------------------------------------------- the data
def make_featureset(budget: Budget, seed: int):
    from zsgm.testing import planted_featureset

    return planted_featureset(counts=budget.counts, n_classes=budget.n_classes, n_unseen=budget.n_unseen,
                              n_val=budget.n_val, feature_dim=budget.feature_dim, seed=seed)


def model_config(model: str, budget: Budget, **extra):
    """The model's GeneratorConfig (its YAML defaults, attribute noise on) under the budget's overrides."""
    from zsgm.pipelines.config import generator_defaults

    return generator_defaults(model, **{**budget.hp, **extra})


# ---------------------------------------------------------------- a. engine throughput
def _engine_timer(model: str, config, data, device: torch.device):
    """A warmed-up engine; the returned function times ``iters`` generator iterations
    (each after critic_iters critic steps) and returns seconds."""
    from zsgm.generate.engine import Engine

    eng = Engine(model, data.features.shape[1], data.attributes.shape[1],
                 dataclasses.replace(config, steps_per_epoch=5), device)
    eng.prepare_regulariser(data)
    eng.train_epoch(data)  # warm-up (allocator, kernels, compilation, CUDA graph capture)

    def timed(iters: int) -> float:
        _sync(device)
        t0 = time.perf_counter()
        eng.train_epoch(data, steps=iters)
        _sync(device)
        return time.perf_counter() - t0

    return timed


def _reference_timer(model: str, config, prob_cpu, device: torch.device):
    from zsgm.bench.reference import ReferenceGAN

    gan = ReferenceGAN(model, config, prob_cpu.train_features, prob_cpu.train_labels, prob_cpu.attributes,
                       prob_cpu.seen, device)
    gan.train_iters(1)

    def timed(iters: int) -> float:
        _sync(device)
        t0 = time.perf_counter()
        gan.train_iters(iters)
        _sync(device)
        return time.perf_counter() - t0

    return timed


def bench_throughput(cfg: BenchConfig, budget: Budget, prob_cpu, device: torch.device, progress) -> list[dict]:
    from zsgm.pipelines.gzsl import train_data

    data = train_data(prob_cpu).to(device)
    iters = budget.throughput_iters
    rows = []
    for model in cfg.models:
        # the regulariser's pre-training is not what is timed here: one epoch of it suffices
        config = model_config(model, budget, cls_pretrain_epochs=1)
        variants = {"engine": {}}
        if cfg.speed_options:  # the engine's speed options, each measured where it applies
            variants["engine+bf16"] = {"amp": "bf16"}
            if device.type == "cuda":
                # "engine" is the default: one CUDA graph per generator iteration where the family allows
                variants.update({"engine eager (no CUDA graphs)": {"cuda_graphs": "off"},
                                 "engine+compile (eager)": {"compile": True}})
        times: dict[str, list[float]] = {k: [] for k in [*variants, "reference"]}
        timers: dict = {}
        for r in range(cfg.repeats):
            order = list(variants) + ["reference"]
            if r % 2:
                order.reverse()  # alternate the order: load drifts hit both sides alike
            for name in order:
                progress(f"throughput {model} {name} (repeat {r + 1}/{cfg.repeats})")
                try:
                    if name not in timers:  # built and warmed once, timed every repeat
                        timers[name] = _reference_timer(model, config, prob_cpu, device) if name == "reference" \
                            else _engine_timer(model, dataclasses.replace(config, **variants[name]), data, device)
                    times[name].append(timers[name](iters))
                except Exception as exc:  # a GPU option that fails here is reported, not fatal
                    log.warning("throughput %s %s failed: %s", model, name, exc)
                    timers[name] = None
                    times[name].append(None)
        crit = config.critic_iters
        base = times["engine"]
        for name, ts in times.items():
            ok = [t for t in ts if t]
            rows.append({
                "model": model, "loop": name, "generator_iters": iters, "critic_iters_per_generator_iter": crit,
                "generator_it_s": stat([iters / t for t in ok]),
                "critic_it_s": stat([iters * crit / t for t in ok]),
                # > 1: this loop is that many times faster than the plain engine, repeat by repeat
                "speed_vs_engine": stat([b / t for b, t in zip(base, ts) if b and t]),
            })
    return rows


# ---------------------------------------------------------------- b. / c. full runs
def _run_ours(cfg: BenchConfig, budget: Budget, fs_path: Path, model: str, classifier: str, selection: str,
              device: torch.device, work: Path, tag: str, eval_every: int | None = None) -> dict:
    from zsgm.pipelines.config import RunConfig
    from zsgm.pipelines.gzsl import run_gzsl, val_history

    # The compared runs train the budget's capped epochs; a time-to-result run trains what the
    # model would by default (the seed study's epochs at the seed budget).
    epochs = budget.epochs if selection != "validation" else budget.ttr_epochs
    rc = RunConfig(features=str(fs_path), data="planted", model=model, classifier=classifier, seed=cfg.seed,
                   epochs=epochs, selection=selection, hp={**budget.hp, "patience": 0},
                   clf_hp={**budget.clf_hp.get(classifier, {}), **cfg.clf_set}, max_reseeds=0,
                   eval_every=eval_every or budget.eval_every,
                   device=str(device))
    runs_dir = work / f"runs-{tag}"
    _sync(device)
    t0 = time.perf_counter()
    rec = run_gzsl(rc, store=work / f"store-{tag}.jsonl", runs_dir=runs_dir, progress=False)
    _sync(device)
    wall = time.perf_counter() - t0
    out = {"seconds": wall, "H": rec["H"], "U": rec["U"], "S": rec["S"], "epochs": rec["epochs"]}
    if selection == "validation":
        hist = val_history(rc, runs_dir)
        out.update(time_to_h(hist))
        out["val_epochs"] = max((h["epoch"] for h in hist), default=0)
    return out


def time_to_h(history: list[dict], tol: float = 1.0) -> dict:
    """Engine wall time (training + evaluation, from the first epoch) until validation H is
    within ``tol`` points of its final value, from a run's per-epoch history."""
    evals = [h for h in history if "eval_H" in h]
    if not evals:
        return {"time_to_h": None, "epoch_to_h": None, "final_val_H": None, "val_wall": None}
    final = evals[-1]["eval_H"]
    hit = next(h for h in evals if h["eval_H"] >= final - tol)
    return {"time_to_h": hit.get("wall", hit.get("seconds")), "epoch_to_h": hit["epoch"], "final_val_H": final,
            "val_wall": evals[-1].get("wall", evals[-1].get("seconds"))}


def _run_reference(budget: Budget, prob_cpu, model: str, classifier: str, device: torch.device,
                   seed: int = 0) -> dict:
    from zsgm.bench.reference import reference_run

    # the reference's classifier is the field's (its own epochs, batch and width), but for what the budget narrows
    over = budget.clf_hp.get(classifier, {})
    out = reference_run(model, classifier, model_config(model, budget), budget.epochs, prob_cpu.train_features,
                        prob_cpu.train_labels, prob_cpu.attributes, prob_cpu.seen, prob_cpu.unseen,
                        prob_cpu.eval_seen, prob_cpu.eval_unseen, device, clf_epochs=budget.ref_clf_epochs,
                        **{f"clf_{k}": over[k] for k in ("batch_size", "hidden") if k in over},
                        seed=seed)
    b = out["best"]
    return {"seconds": out["seconds"], "H": round(b["H"], 2), "U": round(b["U"], 2), "S": round(b["S"], 2),
            "epochs": budget.epochs, "H_per_epoch": [round(h["H"], 2) for h in out["history"]]}


def h_at_epochs_scored(h_per_epoch: list[float], every: int) -> float | None:
    """The reference's best H over the epochs zsgm scores with cadence ``every`` (every K-th and
    the last): the reference scores every epoch, so this is the like-for-like comparison."""
    n = len(h_per_epoch)
    same = [h for e, h in enumerate(h_per_epoch, 1) if e % every == 0 or e == n]
    return round(max(same), 2) if same else None


def bench_pairs(cfg: BenchConfig, budget: Budget, fs_path: Path, prob_cpu, device: torch.device, work: Path,
                progress, memory: dict, with_pairs: bool = True,
                with_ttr: bool = True) -> tuple[list[dict], list[dict]]:
    """b. zsgm vs the reference (``with_pairs``) and c. time to result (``with_ttr``), per
    model × classifier, repeat by repeat in alternating order."""
    pairs, ttr = [], []
    n_ttr = cfg.ttr_repeats if cfg.ttr_repeats is not None else cfg.repeats
    cadences = list(dict.fromkeys([budget.eval_every, *cfg.also_eval_every]))
    for model in cfg.models:
        for clf in cfg.classifiers:
            ours: dict[int, list[dict]] = {k: [] for k in cadences}
            ref, val = [], []
            for r in range(max(cfg.repeats if with_pairs else 0, n_ttr if with_ttr else 0)):
                tag = f"{model}-{clf}-{r}"
                mine = [("ours", k) for k in cadences]
                steps = ([*mine, ("ref", None)] if r % 2 == 0 else [("ref", None), *mine]) \
                    if with_pairs and r < cfg.repeats else []
                if with_ttr and r < n_ttr:
                    steps.append(("val", None))
                for step, k in steps:
                    progress(f"{model}+{clf} {step}{f' (every {k})' if k else ''} (repeat {r + 1})")
                    if step == "ours":
                        ours[k].append(_run_ours(cfg, budget, fs_path, model, clf, "oracle", device, work,
                                                 f"{tag}-o{k}", eval_every=k))
                        if "after_first_run_mb" not in memory:
                            memory["after_first_run_mb"] = round(peak_rss_mb(), 1)
                    elif step == "ref":
                        ref.append(_run_reference(budget, prob_cpu, model, clf, device, cfg.seed))
                    else:
                        val.append(_run_ours(cfg, budget, fs_path, model, clf, "validation", device, work,
                                             tag + "-v"))
            for k in cadences if with_pairs else []:
                pairs.append(_pair_row(model, clf, budget.epochs, k, ours[k], ref))
            if with_ttr:
                ttr.append({
                    "model": model, "classifier": clf, "selection": "validation",
                    "epochs": stat([v["val_epochs"] for v in val], 0), "eval_every": budget.eval_every,
                    "full_run_seconds": stat([v["seconds"] for v in val], 2),
                    "time_to_h_seconds": stat([v["time_to_h"] for v in val], 2),
                    "epoch_to_h": stat([v["epoch_to_h"] for v in val], 1),
                    "val_training_seconds": stat([v["val_wall"] for v in val], 2),
                    "final_val_H": stat([v["final_val_H"] for v in val], 2),
                    "test_H": stat([v["H"] for v in val], 2),
                })
    return pairs, ttr


def _pair_row(model: str, clf: str, epochs: int, every: int, ours: list[dict], ref: list[dict]) -> dict:
    """zsgm (scoring every ``every`` epochs) against the reference, repeat by repeat."""
    return {
        "model": model, "classifier": clf, "epochs": epochs, "eval_every": every,
        "selection": "oracle (both: best epoch on test, as the field did)",
        "zsgm_seconds": stat([o["seconds"] for o in ours], 2),
        "reference_seconds": stat([o["seconds"] for o in ref], 2),
        "zsgm_s_per_epoch": stat([o["seconds"] / epochs for o in ours], 3),
        "reference_s_per_epoch": stat([o["seconds"] / epochs for o in ref], 3),
        "ratio": stat([f["seconds"] / o["seconds"] for f, o in zip(ref, ours)], 2),
        "zsgm_H": stat([o["H"] for o in ours], 2), "reference_H": stat([o["H"] for o in ref], 2),
        "reference_H_at_zsgm_epochs": stat([h_at_epochs_scored(o["H_per_epoch"], every) for o in ref], 2),
        "reference_H_per_epoch": [o["H_per_epoch"] for o in ref],
        "H_gain": stat([o["H"] - f["H"] for f, o in zip(ref, ours)], 2),
    }


# ---------------------------------------------------------------- e. extraction
def check_decoders(decoders) -> None:
    from zsgm.bench.extraction import VARIANTS

    bad = [d for d in decoders if d not in VARIANTS]
    if bad:
        raise ZsgmError(f"--decode {','.join(bad)}: use some of {', '.join(VARIANTS)}")


def bench_extraction(cfg: BenchConfig, budget: Budget, device: torch.device, progress) -> dict:
    try:
        from zsgm.bench import extraction as xb
    except ImportError as exc:
        return {"status": f"not available ({exc})", "rows": []}
    runs: list[list[dict]] = []
    for r in range(cfg.repeats):
        progress(f"extraction (repeat {r + 1}/{cfg.repeats})")
        try:
            # on a GPU both decoders: PIL in the workers and nvJPEG on the device (the default there),
            # the latter with and without its decode-ahead thread
            runs.append(xb.run(list(budget.backbones), n_images=budget.images,
                               batch_size=max(1, min(budget.extract_batch, budget.images // 2)), device=str(device),
                               decoders=tuple(cfg.decoders) or (("pil", "gpu", "gpu-inline") if device.type == "cuda"
                                                                 else ("pil",))))
        except Exception as exc:  # e.g. a backbone timm cannot build offline
            log.warning("extraction bench failed: %s", exc)
            return {"status": f"failed: {type(exc).__name__}: {exc}", "rows": []}
    rows = []
    for i, first in enumerate(runs[0]):
        per = [run[i] for run in runs]
        rows.append({"backbone": first["backbone"], "device": first["device"], "decode": first["decode"],
                     "decode_ahead": first.get("decode_ahead", 0), "images": first["images"],
                     "batch_size": first["batch_size"], "workers": first["workers"],
                     **{k: stat([p[k] for p in per], 3) for k in
                        ("pipeline_img_s", "bare_forward_img_s", "ratio", "decode_ms", "transform_ms", "forward_ms",
                         "decode_share")}})
    return {"status": "ok", "rows": rows}


def _mean_std(s: dict | None) -> str:
    """Per-seed values (a :func:`stat`) as the tables print them: mean ± std (n)."""
    from zsgm.evaluate.tables import Stat, format_stat

    return format_stat(Stat(list(s["values"])) if s else None, digits=2)


def _decoder_label(row: dict) -> str:
    from zsgm.bench.extraction import decoder_label

    return decoder_label(row)


# ---------------------------------------------------------------- d. the demo, end to end
def bench_demo(cfg: BenchConfig, device: torch.device, progress) -> dict:
    """``make gzsl`` on the bundled demo as a user runs it: a fresh ``zsgm gzsl`` process
    (start-up, imports, training, evaluation, record) per seed 0 .. repeats-1, wall time from
    outside, at this process's torch thread count. With ``demo_compare`` (extra ``zsgm gzsl``
    arguments, e.g. an earlier budget's settings) the same seeds run that way too, interleaved
    seed by seed so that both see the same load, and the wall ratio is taken seed by seed."""
    import shlex
    import subprocess
    import sys

    threads = torch.get_num_threads()
    variants = {"demo": []}
    if cfg.demo_compare:
        variants["compared"] = list(cfg.demo_compare)
    walls: dict[str, list[float]] = {k: [] for k in variants}
    hs: dict[str, list[float]] = {k: [] for k in variants}
    for seed in range(cfg.repeats):
        for name, extra in variants.items():
            progress(f"demo gzsl seed {seed} ({name}, {seed + 1}/{cfg.repeats})")
            with tempfile.TemporaryDirectory(prefix="zsgm-bench-demo-") as tmp:
                env = {**os.environ, "ZSGM_RESULTS": str(Path(tmp) / "results")}  # fresh records and runs/
                cmd = [sys.executable, "-m", "zsgm.pipelines.cli", "gzsl", "--device", str(device), "--seed",
                       str(seed), "--threads", str(threads), "--json", *extra]
                t0 = time.perf_counter()
                out = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
                walls[name].append(time.perf_counter() - t0)
            if out.returncode != 0:
                last = out.stderr.strip().splitlines()[-1:] or [f"exit code {out.returncode}"]
                return {"status": f"failed ({name}, seed {seed}): {last[0]}", "wall_seconds": stat([])}
            try:
                hs[name].append(json.loads(out.stdout.strip().splitlines()[-1])["H"])
            except (ValueError, KeyError, IndexError):
                pass
    res = {"status": "ok", "command": "zsgm gzsl --seed S (= make gzsl SEED=S: the bundled demo, cramer + prototype, "
                                      "validation-selected)", "threads": threads, "seeds": cfg.repeats,
           "wall_seconds": stat(walls["demo"], 2), "H": stat(hs["demo"], 2)}
    if cfg.demo_compare:
        res["compared"] = {"args": shlex.join(cfg.demo_compare), "wall_seconds": stat(walls["compared"], 2),
                           "H": stat(hs["compared"], 2),
                           "speedup": stat([c / d for c, d in zip(walls["compared"], walls["demo"])], 2)}
    return res


# ---------------------------------------------------------------- the whole benchmark
SECTIONS = ("pairs", "ttr", "throughput", "demo", "extraction")


def run_bench(cfg: BenchConfig, progress=None, on_section=None) -> dict:
    """Run the sections of ``cfg.sections`` in order; ``on_section(result)`` gets the result
    so far after each one (the verb writes it, so that a run cut short keeps what it measured)."""
    progress = progress or (lambda msg: log.info("bench: %s", msg))
    device = pick_device(cfg.device)
    if cfg.repeats < 1:
        raise ZsgmError(f"--repeats must be >= 1, got {cfg.repeats}")
    if not cfg.sections:
        raise ZsgmError(f"no bench section asked for; use some of {', '.join(SECTIONS)}")
    unknown = set(cfg.sections) - set(SECTIONS)
    if unknown:
        raise ZsgmError(f"unknown bench section(s) {', '.join(sorted(unknown))}; use {', '.join(SECTIONS)}")
    check_decoders(cfg.decoders)
    if cfg.images is not None and cfg.images < 1:
        raise ZsgmError(f"--images must be >= 1, got {cfg.images}")
    budget = cfg.resolve_budget(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t_start = time.perf_counter()
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine(),
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "repeats": cfg.repeats,
        "ttr_repeats": cfg.ttr_repeats if cfg.ttr_repeats is not None else cfg.repeats,
        "budget": dataclasses.asdict(budget), "clf_set": cfg.clf_set, "models": list(cfg.models),
        "classifiers": list(cfg.classifiers),
        "sections": list(cfg.sections), "load_avg_before": load_avg(), "versions": versions(),
    }
    memory: dict = {"start_mb": round(peak_rss_mb(), 1)}
    result = {"meta": meta, "throughput": [], "pairs": [], "time_to_result": [], "demo": None,
              "extraction": {"status": "not run (section not asked for)", "rows": []}, "memory": memory,
              "targets": {}}

    def done_section() -> None:
        memory["peak_mb"] = round(peak_rss_mb(), 1)
        if device.type == "cuda":
            memory["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        meta["load_avg_after"] = load_avg()
        meta["seconds"] = round(time.perf_counter() - t_start, 1)
        result["targets"] = targets(result["pairs"], result["demo"], result["extraction"]["rows"])
        if on_section:
            on_section(result)

    if {"pairs", "ttr", "throughput"} & set(cfg.sections):
        from zsgm.extract.featureset import FeatureSet
        from zsgm.evaluate.scoring import make_problem

        fs = make_featureset(budget, cfg.seed)
        with tempfile.TemporaryDirectory(prefix="zsgm-bench-") as tmp:
            work = Path(tmp)
            fs_path = fs.save(work / "planted.safetensors")
            fs = FeatureSet.load(fs_path)  # memory-mapped, as a real run reads it
            meta["featureset"] = fs.summary()
            memory["featureset_mb"] = round(fs_path.stat().st_size / 2**20, 1)
            prob_cpu = make_problem(fs, fs.trainval_loc, fs.seen_classes, fs.unseen_classes, fs.test_seen_loc,
                                    fs.test_unseen_loc, "minmax", torch.device("cpu"))
            # the headline comparison first: a run cut short still has it
            if {"pairs", "ttr"} & set(cfg.sections):
                result["pairs"], result["time_to_result"] = bench_pairs(
                    cfg, budget, fs_path, prob_cpu, device, work, progress, memory,
                    with_pairs="pairs" in cfg.sections, with_ttr="ttr" in cfg.sections)
                done_section()
            if "throughput" in cfg.sections:
                result["throughput"] = bench_throughput(cfg, budget, prob_cpu, device, progress)
                done_section()
    if "demo" in cfg.sections:
        result["demo"] = bench_demo(cfg, device, progress)
        done_section()
    if "extraction" in cfg.sections:
        result["extraction"] = bench_extraction(cfg, budget, device, progress)
        done_section()
    return result


def targets(pairs: list[dict], demo: dict | None = None, extraction: list[dict] | None = None) -> dict:
    """The issue's targets, reported (never asserted)."""
    out = {}
    best: dict[str, dict] = {}  # extraction, per backbone: its best decoder's ratio to the bare forward pass
    for r in extraction or []:
        ratio = r["ratio"]["median"]
        if ratio is not None and ratio > best.get(r["backbone"], {}).get("ratio", -1):
            best[r["backbone"]] = {"ratio": ratio, "decoder": _decoder_label(r), "met": ratio >= 0.9}
    if best:
        out["extraction_90pct"] = best
    if demo and demo.get("wall_seconds", {}).get("median") is not None:
        wall = demo["wall_seconds"]["median"]
        out["demo_under_30s"] = {"wall_median": wall, "H": demo.get("H"), "met": wall < 30}
    for p in pairs:  # one entry per zsgm cadence K, each against the reference's best epoch on test
        if p["model"] == "cramer" and p["classifier"] == "prototype":
            ratio = p["ratio"]["median"]
            gain = p["H_gain"]["median"]
            out.setdefault("cramer_prototype_10x", []).append(
                {"eval_every": p["eval_every"], "ratio_median": ratio, "H_gain_median": gain,
                 "met": bool(ratio and ratio >= 10 and gain is not None and gain >= 0)})
    return out


# ---------------------------------------------------------------- output
def to_markdown(res: dict) -> str:
    m, b = res["meta"], res["meta"]["budget"]
    lines = [f"# zsgm bench — {m['host']}, {m['started']}", "",
             f"Device **{m['device']}** ({m['device_name']}), {m['cpus']} CPUs, torch threads {m['torch_threads']}; "
             f"budget **{b['name']}**; {m['repeats']} repeat(s) ({m['ttr_repeats']} for time to result): every figure is median (min–max); ratios are "
             f"taken repeat by repeat. Load average before {m['load_avg_before']}, after {m['load_avg_after']}. "
             f"Total {m['seconds']:.0f} s.", "",
             f"Sections: {', '.join(m.get('sections', SECTIONS))}.", "",
             f"Data: {m.get('featureset', 'n/a')} (planted features on real CUB attributes; fabricated, fine for timing). "
             f"Engine overrides of the seed defaults: `{json.dumps(b['hp'])}`; classifier overrides: "
             f"`{json.dumps(b['clf_hp'])}`" + (f"; zsgm's classifier only: `{json.dumps(m['clf_set'])}`"
                                              if m.get("clf_set") else "") + ".", "",
             "## a. Engine throughput (generator iterations, each after the critic steps)", "",
             "| model | loop | generator it/s | critic it/s | speed vs engine |", "|---|---|---|---|---|"]
    for r in res["throughput"]:
        lines.append(f"| {r['model']} | {r['loop']} | {fmt(r['generator_it_s'])} | {fmt(r['critic_it_s'])} | "
                     f"{fmt(r['speed_vs_engine'], unit='×')} |")
    lines += ["", f"## b. Full runs: zsgm vs the field's loop ({b['epochs']} generator epochs, early stopping off)",
              "",
              f"Both pick the best epoch on test (the field's rule, labelled oracle). zsgm evaluates every K "
              f"epochs (K = {b['eval_every']} unless the row says otherwise) with its batched synthesis and "
              f"on-device classifier; the reference synthesises class by class and trains a fresh "
              f"{b['ref_clf_epochs']}-epoch classifier over per-sample tuples through a DataLoader after every "
              f"epoch (`pipelines/reference.py`). ΔH is zsgm's H minus the reference's best over all its epochs.",
              "",
              "| model | classifier | K | zsgm s | reference s | ratio (ref/zsgm) | zsgm H | "
              "reference H (all epochs) | "
              "reference H (zsgm's epochs) | ΔH |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for p in res["pairs"]:
        lines.append(f"| {p['model']} | {p['classifier']} | {p.get('eval_every', b['eval_every'])} | "
                     f"{fmt(p['zsgm_seconds'], 1)} | "
                     f"{fmt(p['reference_seconds'], 1)} | {fmt(p['ratio'], 1, '×')} | {fmt(p['zsgm_H'])} | "
                     f"{fmt(p['reference_H'])} | {fmt(p.get('reference_H_at_zsgm_epochs'))} | "
                     f"{fmt(p['H_gain'])} |")
    lines += ["", "## c. Time to result (zsgm default: validation selection, retrain on trainval, one test "
              "evaluation)", "",
              "time-to-H: training + evaluation time of the validation run until validation H is within 1 point "
              "of its final value.", "",
              "| model | classifier | full run s | time-to-H s | epoch reached / trained | validation run s | "
              "final val H | test H |", "|---|---|---|---|---|---|---|---|"]
    for t in res["time_to_result"]:
        lines.append(f"| {t['model']} | {t['classifier']} | {fmt(t['full_run_seconds'], 1)} | "
                     f"{fmt(t['time_to_h_seconds'], 1)} | {fmt(t['epoch_to_h'], 0)} / {fmt(t['epochs'], 0)} | "
                     f"{fmt(t['val_training_seconds'], 1)} | {fmt(t['final_val_H'])} | {fmt(t['test_H'])} |")
    demo = res.get("demo")
    lines += ["", "## d. The bundled demo end to end (`make gzsl`: a fresh process, start-up included)", ""]
    if demo and demo.get("status") == "ok":
        lines += [f"`{demo['command']}`, seeds 0–{demo['seeds'] - 1}, {demo['threads']} torch thread(s); "
                  "wall time from outside the process, test H after validation selection.", "",
                  "| run | wall s | H (mean ± std over seeds) | H per seed, median (min–max) |", "|---|---|---|---|",
                  f"| demo | {fmt(demo['wall_seconds'], 1)} | {_mean_std(demo['H'])} | {fmt(demo['H'])} |"]
        if demo.get("compared"):
            c = demo["compared"]
            lines += [f"| demo `{c['args']}` | {fmt(c['wall_seconds'], 1)} | {_mean_std(c['H'])} | "
                      f"{fmt(c['H'])} |", "",
                      f"The demo is {fmt(c['speedup'], 2, '×')} as fast as the compared run (wall ratio seed by seed)."]
    else:
        lines.append(f"Demo run {demo['status'] if demo else 'not run'}.")
    ex = res["extraction"]
    lines += ["", "## e. Extraction throughput (`extract/bench.py`)", ""]
    if ex["rows"]:
        lines += ["| backbone | device | decoder | pipeline img/s | bare forward img/s | ratio | "
                  "decode+transform ms/img | decode share |", "|---|---|---|---|---|---|---|---|"]
        for r in ex["rows"]:
            dt = {k: (r["decode_ms"][k] or 0) + (r["transform_ms"][k] or 0) for k in ("median", "min", "max")}
            dt.update(n=r["decode_ms"]["n"])
            lines.append(f"| {r['backbone']} | {r['device']} | {_decoder_label(r)} | "
                         f"{fmt(r['pipeline_img_s'], 1)} | "
                         f"{fmt(r['bare_forward_img_s'], 1)} | {fmt(r['ratio'])} | {fmt(dt, 1)} | "
                         f"{fmt(r['decode_share'])} |")
    else:
        lines.append(f"Extraction benchmark {ex['status']}.")
    mem = res["memory"]
    lines += ["", "## Memory", "",
              f"Peak RSS after the first zsgm run on the data above: {mem.get('after_first_run_mb', 'n/a')} MiB; "
              f"process peak at the end (reference loops and extraction included): {mem['peak_mb']} MiB; "
              f"FeatureSet file {mem.get('featureset_mb', 'n/a')} MiB (read memory-mapped)."
              + (f" CUDA peak allocated: {mem['cuda_peak_allocated_mb']} MiB." if "cuda_peak_allocated_mb" in mem
                 else "")]
    tg = res["targets"].get("cramer_prototype_10x")
    td = res["targets"].get("demo_under_30s")
    tx = res["targets"].get("extraction_90pct")
    if tg or td or tx:
        lines += ["", "## Targets (reported, not asserted)", ""]
    if td:
        lines.append(f"- `make gzsl` on the demo under 30 s wall: {td['wall_median']} s, "
                     f"H {_mean_std(td['H'])} → "
                     f"{'met' if td['met'] else 'NOT met'} ({m['cpus']} CPUs, device {m['device']}).")
    for t in tg or []:
        lines += [f"- cramer + prototype ≥ 10× the reference for the same epochs at equal or better H (zsgm "
                  f"scoring every {t['eval_every']} epochs): ratio {t['ratio_median']}×, ΔH {t['H_gain_median']} → "
                  f"{'met' if t['met'] else 'NOT met'} (budget {b['name']})."]
    for name, t in (tx or {}).items():
        lines.append(f"- extraction keeps ≥ 90% of bare-forward throughput, {name}: {t['ratio']:.2f} with "
                     f"{t['decoder']} → {'met' if t['met'] else 'NOT met'} (device {m['device']}).")
    return "\n".join(lines) + "\n"


def write_results(res: dict, out_dir: Path | None = None, tag: str = "") -> tuple[Path, Path]:
    out_dir = Path(out_dir or RESULTS_DIR)
    stem = f"{time.strftime('%Y-%m-%d')}-{res['meta']['host']}" + (f"-{tag}" if tag else "")
    jp, mp = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    atomic_write_json(jp, res)
    atomic_write_text(mp, to_markdown(res))
    return jp, mp
