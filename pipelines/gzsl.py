"""One GZSL run, end to end: FeatureSet → generator → synthetic unseen features → final
classifier → U / S / H → a result record.

Selection rules:
* ``validation`` (default): train on ``fit`` images, score every ``eval_every`` epochs on
  validation classes (pseudo-unseen) and held-out seen images; pick the epoch and the
  calibration γ there; retrain that setting on all of trainval; evaluate once on test.
* ``oracle``: the seed repository's rule — best epoch chosen on the test set. Labelled so.
* ``fixed``: the configured budget, no search (for FeatureSets without validation classes).
"""
from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from zsgm.evaluate import scoring
from zsgm.evaluate.classifiers import CLASSIFIERS
from zsgm.evaluate.metrics import GZSLResult, gamma_grid, per_class_accuracy
from zsgm.evaluate.records import append_record, check_writable, default_runs_dir, finite_record
from zsgm.evaluate.scoring import Problem, Scores, make_problem, score
from zsgm.evaluate.selection import diverged, validation_split
from zsgm.core.device import pick_device
from zsgm.core.errors import ZsgmError
from zsgm.extract.featureset import FeatureSet
from zsgm.core.files import atomic_path, atomic_write_json, atomic_write_text, stable_hash
from zsgm.core.project import PROJECT_ROOT, versions
from zsgm.core.rng import seed_everything
from zsgm.generate.engine import Engine, TrainData
from zsgm.generate.registry import get as get_model
from zsgm.pipelines.config import DEMO_DIR, Resolved, RunConfig, apply_budget, resolve
from zsgm.pipelines import outcome

log = logging.getLogger("zsgm.gzsl")
VAL_HISTORY = "val_history.json"  # in runs/<id>/: the selection run's per-epoch history


# ---------------------------------------------------------------- inputs
def demo_path() -> Path:
    files = sorted(DEMO_DIR.glob("*.safetensors"))
    if not files:
        raise ZsgmError(f"no bundled demo FeatureSet in {DEMO_DIR}; restore it from git "
                        f"(git checkout -- data/demo) or pass --data/--features")
    return files[0]


def feature_cache_path(data: str, backbone: str, root: Path | None = None) -> Path:
    return (root or PROJECT_ROOT / "data" / "features") / data / f"{backbone}.safetensors"


def load_featureset(cfg: RunConfig) -> FeatureSet:
    """Precedence: --features, then the cache for --backbone, then the xlsa17 res101.mat."""
    if cfg.features:
        fs = FeatureSet.load(cfg.features)
        if cfg.data not in (None, "", "demo") and fs.dataset not in (cfg.data, "unknown"):
            raise ZsgmError(f"{cfg.features} holds features of dataset '{fs.dataset}', not '{cfg.data}' "
                            f"as asked; pass the right file or drop --data")
        if cfg.backbone and fs.meta.get("backbone") not in (cfg.backbone, None):
            raise ZsgmError(f"{cfg.features} was extracted with backbone '{fs.meta.get('backbone')}', "
                            f"not '{cfg.backbone}' as asked")
        return fs
    if cfg.data in (None, "", "demo"):
        return FeatureSet.load(demo_path())
    if cfg.backbone:
        path = feature_cache_path(cfg.data, cfg.backbone)
        if not path.is_file():
            raise ZsgmError(f"no cached features {path}; build them with "
                            f"`make extract DATA={cfg.data} BACKBONE={cfg.backbone}`")
        return FeatureSet.load(path)
    from zsgm.extract.xlsa17 import load_benchmark

    return load_benchmark(cfg.data, cfg.data_root)


# ---------------------------------------------------------------- one training + evaluation
def train_data(prob: Problem) -> TrainData:
    """The generator's training data: the problem's real training features."""
    return TrainData(prob.train_features, prob.train_labels, prob.attributes)


def classify(engine: Engine, prob: Problem, rc: Resolved, clf_options: dict | None = None) -> Scores:
    """evaluate's scorer (``evaluate.scoring.classify``) with this run's engine as the synthesiser of
    the unseen classes and its classifier options (the first candidate unless ``clf_options``)."""
    options = rc.classifier.candidates()[0] if clf_options is None else clf_options
    if not engine.family.synthesizes:
        return scoring.classify(prob, rc.classifier.name, options)
    return scoring.classify(prob, rc.classifier.name, options, engine.synthesize, rc.generator.n_synth)


# ---------------------------------------------------------------- the run
COLLAPSED_SPREAD = 1e-4  # without validation data: synthetic features this alike count as a collapse


@dataclass
class Attempt:
    seed: int
    result: GZSLResult
    epochs: int
    gamma: float
    collapsed: bool
    val: dict
    scores: Scores
    prob: Problem
    engine: Engine
    val_history: list = field(default_factory=list)
    val_prob: Problem | None = None  # the validation problem the selection scored (its labels)


def _train_and_select(rc: Resolved, prob: Problem, device, epochs: int, ckpt: Path, tune_gamma: bool,
                      progress: bool, desc: str, evaluate: bool = True) -> tuple[Engine, dict]:
    """Train with an epoch callback that scores ``prob`` every ``eval_every`` epochs;
    returns the engine and the best evaluation (epoch, γ, metrics). With ``evaluate`` False
    (a retraining on trainval, a fixed budget) nothing is scored during training: no test
    image is looked at before the one final evaluation, and no early stop can read it."""
    engine = Engine(rc.run.model, prob.train_features.shape[1], prob.attributes.shape[1], rc.generator, device)
    engine.resume(ckpt)
    best: dict = {}
    for h in engine.history:  # a resumed run recovers its selection state from the history
        if "eval_H" in h and (not best or h["eval_H"] > best["H"]):
            best = {"epoch": h["epoch"], "gamma": h["eval_gamma"], "H": h["eval_H"], "U": h["eval_U"],
                    "S": h["eval_S"], "zsl": h["eval_zsl"], "clf": h.get("eval_clf", rc.classifier.candidates()[0])}
    outcome.restore_best(ckpt, best, device)  # and the scores of that epoch, where they were kept
    patience, every = rc.selection.patience, rc.selection.eval_every

    def on_epoch(eng: Engine, epoch: int, logs: dict):
        if epoch % every and epoch != epochs and not eng.family.closed_form:
            return None
        here = None  # the best classifier setting at this epoch
        for options in rc.classifier.candidates():
            s = classify(eng, prob, rc, options)
            # γ is chosen on these scores, or 0 (no calibration: the retraining and a fixed budget)
            gamma, res = score(s, prob, None if tune_gamma else 0.0, rc.selection.calibration)
            if here is None or res.H > here[1].H:
                here = (gamma, res, s, options)
        gamma, res, s, options = here
        out = {"eval_U": res.U, "eval_S": res.S, "eval_H": res.H, "eval_zsl": res.zsl, "eval_gamma": gamma,
               "eval_clf": options}
        if not best or res.H > best["H"]:
            best.update(epoch=epoch, gamma=gamma, H=res.H, U=res.U, S=res.S, zsl=res.zsl, scores=s, clf=options)
            outcome.save_best(ckpt, best)  # a run resumed after this epoch still has these scores
        if patience and epoch - best["epoch"] >= patience * every:
            out["stop"] = True
        return out

    engine.fit(train_data(prob), epochs, outcome.ticking(ckpt, on_epoch if evaluate else None), checkpoint=ckpt,
               progress=progress, desc=desc, **_watching(desc, epochs))
    return engine, best


def run_gzsl(cfg: RunConfig, *, store: Path | None = None, runs_dir: Path | None = None,
             progress: bool = True, featureset: FeatureSet | None = None, keep: dict | None = None,
             keep_checkpoints: bool = False, name: str | None = None, tensorboard: str | Path | None = None,
             checked: bool = False) -> dict:
    """One run; returns its record. ``featureset`` is used instead of loading ``cfg``'s (the Python API's
    in-memory FeatureSet); ``keep``, a dict, receives the final attempt (its trained engine and problem),
    the FeatureSet, the resolved settings and the run's folder. The run's folder is ``runs_dir/<name or
    id>``; its checkpoints are removed once the record is written unless ``keep_checkpoints``;
    ``tensorboard``: a folder for TensorBoard event files of the same scalars as ``history.csv``;
    ``checked``: ``cfg`` was checked already (the CLI's, once per run)."""
    if not checked:
        cfg.check()
    cfg = apply_budget(cfg)  # a named budget's settings, under the run's own (idempotent)
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    get_model(cfg.model)  # unknown names fail before any work
    CLASSIFIERS.get_entry(cfg.classifier)  # likewise for the classifier
    check_writable(store, runs_dir or default_runs_dir())  # a store that cannot be written: before any work
    fs = featureset if featureset is not None else load_featureset(cfg)
    fs.check_gzsl(str(cfg.features or cfg.data))  # no test images of a split: an error, never a NaN
    rc = resolve(cfg, fs)
    log.info("%s", rc.describe())
    device = pick_device(cfg.device)
    selection = cfg.selection
    split = validation_split(fs, cfg.seed) if selection == "validation" else None
    if selection == "validation" and split is None:
        log.warning("%s has no validation classes: running with selection 'fixed' (the configured %d epochs, "
                    "no search)", fs.dataset, rc.generator.epochs)
        selection = "fixed"
    outcome.check_inputs(fs, rc, split, str(cfg.features or cfg.data))  # e.g. a kNN k past the data
    run_dir = run_path(cfg, runs_dir, name)
    run_dir.mkdir(parents=True, exist_ok=True)
    _start_watching(cfg, rc, run_dir, device, tensorboard)
    _drop_stale_checkpoints(run_dir, {"features": featureset_fingerprint(fs), "resolved": rc.to_dict(),
                                     "selection": selection})
    timer = outcome.Segments.start(run_dir, t0)  # a resumed run adds the segments before it
    seen, unseen = fs.seen_classes, fs.unseen_classes
    attempts: list[Attempt] = []
    for attempt in range(cfg.max_reseeds + 1):
        seed = cfg.seed + 1000 * attempt
        seed_everything(seed)
        val: dict = {}
        val_history: list = []
        vprob = None
        if selection == "validation":
            vprob = make_problem(fs, split.fit, split.train_classes, split.val_classes, split.val_seen,
                                 split.val_unseen, cfg.feature_normalisation, device)
            val_engine, val = _train_and_select(rc, vprob, device, rc.generator.epochs,
                                                run_dir / f"val_{attempt}.pt",
                                       cfg.calibrate, progress, f"{cfg.model} val")
            seed_everything(seed + 1)
            final_epochs, gamma = int(val["epoch"]), float(val["gamma"]) if cfg.calibrate else 0.0
            prob = make_problem(fs, fs.trainval_loc, seen, unseen, fs.test_seen_loc, fs.test_unseen_loc,
                                cfg.feature_normalisation, device)
            engine, _ = _train_and_select(rc, prob, device, final_epochs, run_dir / f"final_{attempt}.pt",
                                          False, progress, f"{cfg.model} final", evaluate=False)
            s = classify(engine, prob, rc, val["clf"])
            gamma, res = score(s, prob, gamma)
            # Either side of H vanishing is a collapse: no unseen class recognised (mode collapse),
            # or every seen image pulled to the unseen classes (synthetic features that swamp them).
            collapsed = min(val["U"], val["S"]) <= rc.selection.collapse_threshold
            val_history = val_engine.history
            # The retraining is scored by nothing before test: a blow-up there (seen on CUB-50 at lr 1e-3: a
            # critic loss from ~0.1 to 538 in one epoch, test U 14 after validation U 66) is caught by
            # comparing its losses with the selection run's, and re-seeded like a collapse.
            blew_up = diverged(val_history, engine.history)
            if blew_up:
                log.warning("the retraining on trainval diverged (%s); re-seeding", blew_up)
                collapsed = True
        else:
            prob = make_problem(fs, fs.trainval_loc, seen, unseen, fs.test_seen_loc, fs.test_unseen_loc,
                                cfg.feature_normalisation, device)
            oracle = selection == "oracle"
            epochs = rc.generator.epochs
            engine, best = _train_and_select(rc, prob, device, epochs, run_dir / f"{selection}_{attempt}.pt",
                                             oracle and cfg.calibrate, progress, f"{cfg.model} {selection}",
                                             evaluate=oracle)
            if oracle:
                # The seed's rule: the numbers of the epoch that scored best on test.
                final_epochs, gamma = int(best["epoch"]), float(best["gamma"])
                res = GZSLResult(best["U"], best["S"], best["H"], best["zsl"])
                s = best.get("scores") or classify(engine, prob, rc, best["clf"])
            else:
                final_epochs = engine.epoch
                s = classify(engine, prob, rc)
                gamma, res = score(s, prob, 0.0)  # no data to choose γ on: no calibration
            # Without validation data, collapse is judged on the synthetic features alone.
            collapsed = engine.family.synthesizes and s.synth_std < COLLAPSED_SPREAD
        collapsed = collapsed or not outcome.scores_finite(s, prob)  # NaN/inf scores: re-seeded like a collapse
        attempts.append(Attempt(seed, res, final_epochs, gamma, collapsed, val, s, prob, engine, val_history, vprob))
        if not collapsed:
            break
        if val:
            log.warning("seed %d: collapsed (validation U %.2f%%, S %.2f%%) or its retraining diverged; re-seeding",
                        seed, val["U"], val["S"])
        else:  # an oracle or fixed run has no validation scores: it is judged on its synthetic features
            log.warning("seed %d: collapsed (synthetic features' spread %.2g, below %g); re-seeding",
                        seed, s.synth_std, COLLAPSED_SPREAD)
    final = attempts[-1]
    # A degenerate result (NaN scores, every seed collapsed, one class predicted, U = 0) is recorded as
    # such, never as a success (zsgm gzsl exits with outcome.EXIT_DEGENERATE).
    status, reason = outcome.judge(final, attempts)
    segments = timer.segments()  # seconds: their sum (a resumed run counts the segments before it)
    record = _record(cfg, fs, selection, final, attempts, sum(s["seconds"] for s in segments), started, rc)
    record.update(status=status, segments=segments,
                  **({"degenerate": reason} if reason else {}), **({"error": reason} if status == "failed" else {}))
    if reason:
        log.warning("run %s %s: %s", record["id"], status, reason)
    record = finite_record(record)
    _save_run(run_dir, record, final, fs)
    append_record(record, store)
    _stop_watching(record, run_dir, keep_checkpoints)
    timer.finish()
    outcome.remember(record)
    if keep is not None:
        keep.update(attempt=final, featureset=fs, resolved=rc, run_dir=run_dir)
    return record


def run_path(cfg: RunConfig, runs_dir: Path | None = None, name: str | None = None) -> Path:
    """``runs/<id>/`` (or ``runs/<name>/``): the folder a run keeps its history, scores and checkpoints in."""
    return Path(runs_dir or default_runs_dir()) / (check_run_name(name) if name else cfg.run_id())


def val_history(cfg: RunConfig, runs_dir: Path | None = None) -> list[dict]:
    """A finished run's selection history: per epoch the losses and the engine's wall time, on evaluated
    epochs validation U / S / H / γ too (empty for a run without validation selection)."""
    path = run_path(cfg, runs_dir) / VAL_HISTORY
    return json.loads(path.read_text()) if path.is_file() else []


def featureset_fingerprint(fs: FeatureSet) -> str:
    """A hash of every tensor of ``fs`` (cheap next to training): the same path may hold other features.
    Computed once per FeatureSet object (the record states it too)."""
    cached = getattr(fs, "_fingerprint", None)
    if cached:
        return cached
    h = hashlib.sha256()
    for name, t in sorted(fs.tensors().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():  # an empty tensor has no bytes to view (and a stride that cannot be viewed)
            h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().data)
    digest = h.hexdigest()[:16]
    try:
        fs._fingerprint = digest
    except AttributeError:  # a frozen or slotted FeatureSet: hashed again next time
        pass
    return digest


def _drop_stale_checkpoints(run_dir: Path, inputs: dict) -> None:
    """Checkpoints are resumed only when they were made from the same inputs (features and resolved
    hyper-parameters, which the run id does not cover); stale ones are removed, never silently reused."""
    key, path = stable_hash(inputs, 16), run_dir / "inputs.json"
    try:
        old = json.loads(path.read_text()).get("key") if path.is_file() else None
    except ValueError:
        old = None
    if old != key:
        stale = sorted(run_dir.glob("*.pt"))
        if stale:
            log.warning("%s: checkpoints made from other inputs (features or hyper-parameters changed); "
                        "starting over", run_dir)
        for p in stale:
            p.unlink()
        atomic_write_json(path, {"key": key, "features": inputs["features"]})


def _record(cfg, fs, selection, final: Attempt, attempts, seconds, started, rc: Resolved) -> dict:
    r = final.result
    return {
        "id": cfg.run_id(), "dataset": fs.dataset if cfg.features else (cfg.data or fs.dataset),
        "backbone": fs.meta.get("backbone", "?"), "pretrained": fs.meta.get("pretrained", "?"),
        "weights": fs.meta.get("weights_name") or fs.meta.get("pretrained", "?"),
        "weights_note": fs.meta.get("weights_note", ""),
        # A scratch backbone was trained on every trainval image, the validation classes too:
        # selection then treats classes the features were trained on as unseen (optimistic).
        "selection_saw_val_classes": selection == "validation" and fs.meta.get("pretrained") == "scratch"
        and fs.meta.get("scratch_classes") != "train",
        # the run budget (configs/budgets.yaml; seed where none was named) and the dataset layer it read
        "budget": cfg.budget or "seed", "layer": rc.budget, "normalise": cfg.feature_normalisation,
        **_provenance(fs, final),
        "model": cfg.model, "classifier": cfg.classifier, "tricks": cfg.tricks, "seed": cfg.seed,
        "selection": selection, "U": round(r.U, 2), "S": round(r.S, 2), "H": round(r.H, 2),
        "zsl": round(r.zsl, 2), "epochs": final.epochs, "gamma": round(final.gamma, 4),
        "seconds": round(seconds, 2), "n_classes": fs.n_classes, "n_seen": len(fs.seen_classes),
        "n_unseen": len(fs.unseen_classes), "reseeds": len(attempts) - 1, "collapsed": final.collapsed,
        "seed_used": final.seed, "gamma_on_test": _gamma_on_test(final) if selection == "validation" else {},
        "val": {k: round(v, 4) if isinstance(v, float) else v for k, v in final.val.items()
                                        if k != "scores"},  # the scores tensors go to scores.safetensors
        "status": "ok", "started": started, "versions": versions(), "config": cfg.to_dict(),
        "resolved": rc.to_dict(),  # every setting the run computed with (the YAML layers and overrides, typed)
    }


def _gamma_on_test(final: Attempt) -> dict:
    """A diagnostic, never a result: the final scores with γ picked on test. The oracle's lead over
    validation selection splits into calibration (this H minus the result's) and the epoch choice
    with the retraining (the oracle's H minus this one)."""
    s = final.scores
    grid = torch.cat([gamma_grid(s.seen, s.unseen, s.seen_mask), torch.tensor([final.gamma])])  # never below H
    gamma, res = score(s, final.prob, None, grid=grid)
    return {"gamma": round(gamma, 4), **{k: round(v, 2) for k, v in res.as_dict().items()}}


def _save_run(run_dir: Path, record: dict, final: Attempt, fs: FeatureSet) -> None:
    """history.json (per-epoch losses and evaluations), per_class.json, scores.safetensors."""
    atomic_write_json(run_dir / "history.json", final.engine.history)
    atomic_write_text(run_dir / "history.csv", history_csv(final.engine.history))
    if final.val_history:  # the selection run's per-epoch losses and validation U/S/H
        atomic_write_json(run_dir / VAL_HISTORY, final.val_history)
        atomic_write_text(run_dir / "val_history.csv", history_csv(final.val_history))
    s, prob = final.scores, final.prob
    acc_s = per_class_accuracy((s.seen - final.gamma * s.seen_mask).argmax(1), prob.eval_seen[1])
    acc_u = per_class_accuracy((s.unseen - final.gamma * s.seen_mask).argmax(1), prob.eval_unseen[1])
    names = fs.class_names or [str(i) for i in range(fs.n_classes)]
    per_class = {"seen": {names[c]: round(100 * float(a), 2) for c, a in
                          zip(torch.unique(prob.eval_seen[1]).tolist(), acc_s)},
                 "unseen": {names[c]: round(100 * float(a), 2) for c, a in
                            zip(torch.unique(prob.eval_unseen[1]).tolist(), acc_u)}}
    atomic_write_json(run_dir / "per_class.json", per_class)
    tensors = _score_tensors(s, prob)
    if final.val_prob is not None and final.val.get("scores") is not None:
        # the selection's own evidence: the validation scores γ was chosen on, at the chosen epoch
        tensors.update({f"val_{k}": v for k, v in _score_tensors(final.val["scores"], final.val_prob).items()})
    with atomic_path(run_dir / "scores.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"gamma": str(final.gamma)})
    atomic_write_json(run_dir / "record.json", record)


def _score_tensors(s: Scores, prob: Problem) -> dict:
    return {"scores_seen": s.seen.cpu().contiguous(), "labels_seen": prob.eval_seen[1].cpu().contiguous(),
            "scores_unseen": s.unseen.cpu().contiguous(), "labels_unseen": prob.eval_unseen[1].cpu().contiguous(),
            "seen_mask": s.seen_mask.cpu().contiguous()}


def final_line(record: dict) -> str:
    tag = " [ORACLE: epoch chosen on test]" if record["selection"] == "oracle" else ""
    tag += outcome.mark(record)  # COLLAPSED / FAILED: not a result

    def num(k: str) -> str:
        return "n/a" if record.get(k) is None else f"{record[k]:.2f}"

    return (f"U={num('U')} S={num('S')} H={num('H')} ZSL={num('zsl')} "
            f"({record['dataset']}, {record['model']}+{record['classifier']}, seed {record['seed']}, "
            f"selection {record['selection']}, {record['n_classes']} classes, {record['seconds']:.1f}s){tag}")


def record_json(record: dict) -> str:
    keys = ("id", "dataset", "backbone", "model", "classifier", "tricks", "seed", "selection", "U", "S", "H", "zsl",
            "epochs", "seconds", "n_classes", "reseeds", "collapsed", "status", "degenerate")
    return json.dumps({k: record.get(k) for k in keys})


# ---------------------------------------------------------------- watching a run: estimate, TensorBoard, provenance
# Set by run_gzsl for the run in progress: its TensorBoard writer, folder and evaluation cadence.
_WATCH: contextvars.ContextVar[dict] = contextvars.ContextVar("zsgm_gzsl_watch", default={})


def check_run_name(name: str) -> str:
    """``--name``: one folder name (no path separator, not hidden, not '.' or '..')."""
    text = str(name)
    if not text.strip() or text.startswith(".") or any(c in text for c in "/\\\0") or text != text.strip():
        raise ZsgmError(f"--name {name!r}: a run's name is one folder name (no '/', not starting with '.', no "
                        f"surrounding spaces), e.g. --name cub50-cramer; --out DIR chooses the folder it goes in")
    return text


def tensorboard_writer(log_dir: Path):
    """torch's SummaryWriter for ``log_dir``, or a clear error where TensorBoard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ZsgmError("--tensorboard needs TensorBoard: pip install 'zsgm[tensorboard]' (or pip install "
                        "tensorboard); history.csv beside history.json holds the same scalars") from exc
    return SummaryWriter(log_dir=str(log_dir))


def _start_watching(cfg: RunConfig, rc: Resolved, run_dir: Path, device, tensorboard) -> None:
    writer = tensorboard_writer(Path(tensorboard) / run_dir.name) if tensorboard else None
    if writer is not None:
        log.info("TensorBoard scalars in %s (tensorboard --logdir %s)", Path(tensorboard) / run_dir.name, tensorboard)
    _WATCH.set({"writer": writer, "run_dir": run_dir, "every": rc.selection.eval_every, "estimated": set()})


def _watching(desc: str, epochs: int) -> dict:
    """What a training of this run hands the engine besides its callback: a sink for each epoch's history
    entry that logs the run's estimated duration (after the first epoch, refined after the first
    evaluation) and writes the scalars to TensorBoard."""
    ctx = _WATCH.get()
    if not ctx:
        return {}
    phase = desc.rsplit(" ", 1)[-1]  # val | final | oracle | fixed (run_gzsl's descriptions)

    def sink(entry: dict) -> None:
        epoch = int(entry.get("epoch", 0))
        _estimate(ctx, phase, epochs, epoch, entry)
        writer = ctx.get("writer")
        if writer is not None:
            for key, value in entry.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "epoch":
                    writer.add_scalar(f"{phase}/{key}", value, epoch)

    return {"sink": sink}


def _estimate(ctx: dict, phase: str, epochs: int, epoch: int, entry: dict) -> None:
    """Log the run's estimated duration from the measured pace: once after the first epoch (training
    alone, evaluations not yet measured) and once after the first evaluated epoch (with them)."""
    from zsgm.core.logs import duration

    done = ctx["estimated"]
    evaluated = "eval_H" in entry
    key = "eval" if evaluated else "epoch"
    if phase in ("final",) or key in done or (key == "epoch" and epoch != 1) or epoch < 1:
        return
    done.add(key)
    if evaluated:
        done.add("epoch")
    per_epoch = float(entry.get("seconds", 0.0)) / epoch
    retrain = phase == "val"  # a selection run is followed by a retraining of up to as many epochs on trainval
    training = per_epoch * epochs * (2 if retrain else 1)
    then = f", then up to {epochs} on all of trainval" if retrain else ""
    if not evaluated:
        log.info("estimated duration: about %s of training (epoch 1 took %.1fs; %d epochs%s)%s",
                 duration(training), per_epoch, epochs, then,
                 "; evaluations add to it (measured at the first)" if phase in ("val", "oracle") else "")
        return
    n_evals = max(1, sum(1 for e in range(1, epochs + 1) if e % ctx["every"] == 0 or e == epochs))
    per_eval = max(0.0, float(entry.get("wall", 0.0)) - float(entry.get("seconds", 0.0))) / max(
        1, sum(1 for e in range(1, epoch + 1) if e % ctx["every"] == 0 or e == epoch))
    log.info("estimated duration: about %s in all (%.1fs per epoch, %.1fs per evaluation, %d evaluations over "
             "%d epochs%s)", duration(training + per_eval * (n_evals + (1 if retrain else 0))), per_epoch, per_eval,
             n_evals, epochs, then)


def _stop_watching(record: dict, run_dir: Path, keep_checkpoints: bool) -> None:
    """After the record is written: the test numbers to TensorBoard, and the checkpoints dropped
    (``runs/<id>/*.pt``, what a resume needs) unless ``keep_checkpoints``."""
    ctx = _WATCH.get()
    writer = ctx.get("writer")
    if writer is not None:
        for key in ("U", "S", "H", "zsl"):
            if isinstance(record.get(key), (int, float)):
                writer.add_scalar(f"test/{key}", record[key], int(record.get("epochs") or 0))
        writer.close()
    _WATCH.set({})
    if not keep_checkpoints:
        from zsgm.pipelines.runner import drop_checkpoints

        drop_checkpoints(run_dir.parent, run_dir.name)


def _provenance(fs: FeatureSet, final: Attempt) -> dict:
    """Where a record's numbers come from: the code (git commit and whether the checkout had changes to
    tracked files; None outside a checkout), the device actually used (GPU name, or CPU model) with torch's
    thread count, the FeatureSet's hash and the run's folder."""
    from zsgm.core.project import device_info, git_info

    git = git_info()
    run_dir = _WATCH.get().get("run_dir")
    return {"commit": git.get("commit"), "dirty": git.get("dirty"), "device": device_info(final.engine.device),
            "threads": torch.get_num_threads(), "features_hash": featureset_fingerprint(fs),
            "run_dir": str(run_dir) if run_dir else None}


def history_csv(history: list[dict]) -> str:
    """A history (one dict per epoch) as CSV: one column per key in order of appearance, nested values
    (the classifier options chosen) as JSON, absent ones empty."""
    import csv
    import io

    columns = list(dict.fromkeys(k for h in history for k in h))
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(columns)
    for h in history:
        out.writerow(["" if h.get(k) is None else json.dumps(h[k], sort_keys=True)
                      if isinstance(h[k], (dict, list)) else h[k] for k in columns])
    return buf.getvalue()
