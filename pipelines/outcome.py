"""How a GZSL run ends: inputs that would make a degenerate run refused before training, a degenerate
result told apart from a success, and what a resumed run must not lose.

* Before training (exit 2): a k-nearest-neighbour classifier asked for more neighbours than it will
  have features (every image would get the same vote shares: one class predicted everywhere).
  Zero attribute rows and overflowing features are refused by the FeatureSet's own checks.
* After training: a run whose test scores hold NaN/inf is ``status: failed``; a run whose every seed
  collapsed, whose predictions are all one class, or whose U is 0 with unseen test images present is
  ``status: collapsed``. (S = 0 alone is left to the validation collapse check: a retraining that
  pulls every seen test image to the unseen classes still counts as a result, its H 0.) Either is recorded (``zsgm results --status``), its final line is marked,
  and ``zsgm gzsl`` exits with :data:`EXIT_DEGENERATE`.
* Resume: the total seconds of a run cut short and resumed is the sum of its segments
  (``runs/<id>/segments.json``, kept up to date while the run trains), and the validation scores γ
  was chosen on are kept beside the selection's checkpoint (``<checkpoint>.best.pt``), so that a run
  resumed after its selection finished still writes them (``scores.safetensors`` ``val_*``).
"""
from __future__ import annotations

import contextvars
import json
import logging
import time
from pathlib import Path
from typing import Callable

import torch

from zsgm.core.errors import ZsgmError
from zsgm.core.files import atomic_torch_save, atomic_write_json

log = logging.getLogger("zsgm.gzsl")

EXIT_DEGENERATE = 3          # zsgm gzsl's exit code for a run recorded as collapsed or failed
STATUSES = ("ok", "collapsed", "failed")
SEGMENTS = "segments.json"   # in runs/<id>/: the wall time of each segment of a run cut short
TICK_SECONDS = 1.0           # how often a running segment's time is written (a kill loses no more)


# ---------------------------------------------------------------- before training
def check_inputs(fs, rc, split, source: str) -> None:
    """Refuse (ZsgmError, exit 2) what would make the run degenerate whatever it learns: a kNN ``k``
    larger than the features it would vote among (real training features plus the synthetic ones)."""
    options = rc.classifier.candidates()
    ks = sorted({int(o["k"]) for o in options if "k" in o})
    if not ks:
        return
    n_synth = int(rc.generator.n_synth)
    sizes = {"the final training set": len(fs.trainval_loc) + n_synth * len(fs.unseen_classes)}
    if split is not None:
        sizes["the validation training set"] = len(split.fit) + n_synth * len(split.val_classes)
    where, size = min(sizes.items(), key=lambda kv: kv[1])
    if ks[-1] > size:
        raise ZsgmError(f"{source}: --clf-set k={ks[-1]}: the kNN classifier would vote among only {size} features "
                        f"({where}: real training images + n_synth {n_synth} x unseen classes), so every image "
                        f"would get the same votes; use k <= {size} (the default is 20)")


# ---------------------------------------------------------------- after training
def scores_finite(scores, prob) -> bool:
    """True when every score of the problem's classes is a finite number (other classes hold -inf by
    design: they are outside the problem)."""
    cols = prob.classes if getattr(prob, "classes", None) is not None else torch.arange(scores.seen.shape[1])
    cols = cols.to(scores.seen.device)
    return bool(torch.isfinite(scores.seen[:, cols]).all() and torch.isfinite(scores.unseen[:, cols]).all())


def judge(final, attempts: list) -> tuple[str, str]:
    """(status, reason) of a run's final attempt: ``ok``, ``failed`` (non-finite scores) or ``collapsed``."""
    s, prob, r = final.scores, final.prob, final.result
    if not scores_finite(s, prob):
        cols = prob.classes.to(s.seen.device) if prob.classes is not None else slice(None)
        both = torch.cat([s.seen[:, cols], s.unseen[:, cols]])
        share = float((~torch.isfinite(both)).float().mean()) * 100
        return "failed", (f"the test scores hold non-finite values ({share:.0f}% NaN/inf after {len(attempts)} "
                          f"seed(s)); the numbers are not a result (lower the learning rates, --set lr / "
                          f"--clf-set lr)")
    if final.collapsed:
        seeds = ", ".join(str(a.seed) for a in attempts)
        return "collapsed", (f"every seed collapsed ({len(attempts)} tried: {seeds}); the numbers are those of "
                             f"the last")
    mask = s.seen_mask.to(s.seen.dtype) * final.gamma
    preds = torch.cat([(s.seen - mask).argmax(1), (s.unseen - mask).argmax(1)])
    if preds.numel() > 1 and len(torch.unique(preds)) == 1:
        return "collapsed", f"every test image is predicted as one class ({int(preds[0])})"
    if len(prob.eval_unseen[1]) and r.U == 0:
        return "collapsed", (f"U = 0: none of the {len(prob.eval_unseen[1])} unseen test images is recognised "
                             f"(seen-class bias or a collapsed generator)")
    return "ok", ""


def mark(record: dict) -> str:
    """The final line's tag of a record that is not an ordinary success ('' for one that is)."""
    status = record.get("status", "ok")
    if status == "ok":
        return ""
    return f" [{status.upper()}: {record.get('degenerate') or record.get('error') or 'not a result'}]"


def exit_code(record: dict) -> int:
    """0 for a success, :data:`EXIT_DEGENERATE` for a run recorded as collapsed or failed."""
    return 0 if record.get("status", "ok") == "ok" else EXIT_DEGENERATE


# The last record run_gzsl produced in this context: the console script's exit code reads it.
_LAST: contextvars.ContextVar[dict | None] = contextvars.ContextVar("zsgm_last_record", default=None)


def remember(record: dict) -> None:
    _LAST.set(record)


def forget() -> None:
    _LAST.set(None)


def last_record() -> dict | None:
    return _LAST.get()


# ---------------------------------------------------------------- resume: the run's time
class Segments:
    """The wall time of a run over its segments (each start of the same run after a kill), kept in
    ``runs/<id>/segments.json`` at most :data:`TICK_SECONDS` stale. Started when the run starts; a
    finished run removes the file, so that a fresh run of the same id starts from zero. The file is
    also reset when the run's inputs changed (``inputs.json``'s key: its checkpoints were dropped)."""

    _active: dict[str, "Segments"] = {}

    def __init__(self, run_dir: Path, since: float | None = None):
        self.path = Path(run_dir) / SEGMENTS
        self.key = _inputs_key(Path(run_dir))
        self.done: list[dict] = []
        self.t0 = time.perf_counter() if since is None else since
        self.last = 0.0
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    @classmethod
    def start(cls, run_dir: Path, since: float | None = None) -> "Segments":
        """This segment counts from ``since`` (a ``time.perf_counter()`` value; default now)."""
        seg = cls(run_dir, since)
        try:
            old = json.loads(seg.path.read_text()) if seg.path.is_file() else {}
        except (OSError, ValueError):
            old = {}
        if old.get("key") == seg.key and isinstance(old.get("segments"), list):
            seg.done = [s for s in old["segments"] if isinstance(s, dict) and isinstance(s.get("seconds"), (int, float))]
            if seg.done:
                log.info("%s: resuming a run cut short after %.1f s in %d segment(s)", run_dir,
                         sum(s["seconds"] for s in seg.done), len(seg.done))
        cls._active[str(Path(run_dir))] = seg
        seg.write()
        return seg

    @classmethod
    def of(cls, run_dir: Path) -> "Segments | None":
        return cls._active.get(str(Path(run_dir)))

    def segments(self) -> list[dict]:
        return [*self.done, {"started": self.started, "seconds": round(time.perf_counter() - self.t0, 2)}]

    def total(self) -> float:
        return round(sum(s["seconds"] for s in self.segments()), 2)

    def write(self) -> None:
        self.last = time.perf_counter()
        try:
            atomic_write_json(self.path, {"key": self.key, "segments": self.segments()})
        except OSError as exc:  # the time is a courtesy: never fail a run for it
            log.debug("could not write %s: %s", self.path, exc)

    def tick(self) -> None:
        if time.perf_counter() - self.last >= TICK_SECONDS:
            self.write()

    def finish(self) -> None:
        """The run is recorded: nothing to resume, the file goes."""
        self._active.pop(str(self.path.parent), None)
        try:
            self.path.unlink()
        except OSError:
            pass


def _inputs_key(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "inputs.json").read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return None


def ticking(ckpt: Path, on_epoch: Callable | None) -> Callable | None:
    """``on_epoch`` (or nothing) with the run's time written after every epoch (throttled)."""
    seg = Segments.of(Path(ckpt).parent)
    if seg is None:
        return on_epoch

    def wrapped(engine, epoch, logs):
        out = on_epoch(engine, epoch, logs) if on_epoch else None
        seg.tick()
        return out

    return wrapped


# ---------------------------------------------------------------- resume: the selection's scores
def best_path(ckpt: Path) -> Path:
    return Path(ckpt).with_name(Path(ckpt).stem + ".best.pt")


def save_best(ckpt: Path, best: dict) -> None:
    """The scores of the selection's best epoch so far, beside its checkpoint (removed with it)."""
    s = best.get("scores")
    if s is None:
        return
    atomic_torch_save({"epoch": int(best["epoch"]), "seen": s.seen.cpu(), "unseen": s.unseen.cpu(),
                       "seen_mask": s.seen_mask.cpu(), "synth_std": float(s.synth_std)}, best_path(ckpt))


def restore_best(ckpt: Path, best: dict, device) -> None:
    """Put back the scores of ``best``'s epoch (recovered from a resumed history) when they were kept."""
    from zsgm.evaluate.scoring import Scores

    path = best_path(ckpt)
    if not best or best.get("scores") is not None or not path.is_file():
        return
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001  (a damaged file: the scores are then simply not restored)
        log.warning("%s is unreadable (%s); the validation scores of the resumed selection are not kept", path, exc)
        return
    if int(state.get("epoch", -1)) == int(best["epoch"]):
        best["scores"] = Scores(state["seen"], state["unseen"], state["seen_mask"], float(state["synth_std"]))
