"""Logging setup (one logger tree, ``zsgm``; rank 0 alone under torchrun) and whether to draw
progress bars."""
from __future__ import annotations

import logging

from zsgm.core.device import dist_rank

log = logging.getLogger("zsgm")

_QUIET = False


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """INFO (DEBUG with ``verbose``) to stderr; ``quiet``: warnings and errors only, no progress
    bars. Under torchrun only rank 0 logs below ERROR, so that a line is printed once, not once
    per process."""
    global _QUIET
    _QUIET = bool(quiet)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    if dist_rank() != 0:
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(level)
    logging.getLogger("zsgm").setLevel(level)


def logging_args() -> tuple[bool, bool]:
    """The ``(verbose, quiet)`` this process logs with: a spawned worker's ``setup_logging`` takes
    them, so that its progress lines reach the log like the parent's (a fresh interpreter logs
    warnings only)."""
    return logging.getLogger("zsgm").getEffectiveLevel() <= logging.DEBUG, _QUIET


def show_progress(requested: bool = True, stream=None) -> bool:
    """Whether to draw tqdm bars: asked for, not ``--quiet``, rank 0, and stderr a terminal
    (redirected to a file, a bar's carriage returns only garble the log)."""
    import sys

    stream = stream if stream is not None else sys.stderr
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    return bool(requested) and not _QUIET and dist_rank() == 0 and tty


# ---------------------------------------------------------------- progress lines (no terminal)
PROGRESS_SECONDS_ENV = "ZSGM_PROGRESS_SECONDS"
PROGRESS_SECONDS = 30.0  # default gap between two progress lines of one loop


def progress_seconds() -> float:
    """The least gap between two progress lines of one loop: ``$ZSGM_PROGRESS_SECONDS`` (0: a line per
    step), else 30 s."""
    import os

    raw = os.environ.get(PROGRESS_SECONDS_ENV, "")
    try:
        return max(0.0, float(raw)) if raw.strip() else PROGRESS_SECONDS
    except ValueError:
        log.warning("$%s=%r is not a number of seconds; using %g", PROGRESS_SECONDS_ENV, raw, PROGRESS_SECONDS)
        return PROGRESS_SECONDS


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: short enough for a log line."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


_LAST_LINE = float("-inf")  # when any loop of this process last logged a progress line (perf_counter)


class ProgressLog:
    """Log lines for a loop a person waits for when no bar is drawn (output redirected to a file):
    ``<what> <done>/<total> <text>, elapsed 1m05s, ETA 3m10s``. ``step(done)`` logs the first step,
    the last, any step called with ``force`` (an evaluation), and otherwise at most one line every
    ``every`` seconds (default :func:`progress_seconds`) since the last progress line of any loop (an
    inner loop, such as a classifier fit inside an evaluation, speaks when the outer one has been
    silent that long; the outer one then waits its turn). The ETA is the mean time per step of this
    loop times the steps left. ``enabled`` False: silent (a bar is drawn instead); ``first`` / ``last``
    False: no line of their own for the first / last step (an outer loop's line says it)."""

    def __init__(self, what: str, total: int, *, enabled: bool = True, every: float | None = None,
                 start: int = 0, logger: logging.Logger | None = None, unit: str = "", first: bool = True,
                 last: bool = True):
        import time

        self.what, self.total, self.enabled, self.unit = what, int(total), bool(enabled) and dist_rank() == 0, unit
        self.every = progress_seconds() if every is None else float(every)
        self.start, self.t0 = int(start), time.perf_counter()
        self.last: float | None = None if first else self.t0
        self.final = bool(last)
        self.logger = logger or log

    def elapsed(self) -> float:
        import time

        return time.perf_counter() - self.t0

    def eta(self, done: int) -> float | None:
        """Seconds left at this loop's mean pace so far; None before the first step."""
        steps = done - self.start
        return self.elapsed() / steps * max(0, self.total - done) if steps > 0 else None

    def step(self, done: int, text: str = "", force: bool = False) -> bool:
        """Log a line for ``done`` steps of ``total`` if one is due; True when a line was logged."""
        import time

        if not self.enabled:
            return False
        global _LAST_LINE
        now = time.perf_counter()
        first, last = self.last is None, done >= self.total and self.final
        silent_since = _LAST_LINE if _LAST_LINE > float("-inf") else self.t0
        if not (first or last or force or now - silent_since >= self.every):
            return False
        self.last = _LAST_LINE = now
        eta = self.eta(done)
        left = "" if done >= self.total or eta is None else f", ETA {duration(eta)}"
        unit = f" {self.unit}" if self.unit else ""
        self.logger.info("%s %d/%d%s%s, elapsed %s%s", self.what, done, self.total, unit,
                         f": {text}" if text else "", duration(self.elapsed()), left)
        return True


# ---------------------------------------------------------------- threads
def free_cores() -> int:
    """The cores not busy now: ``os.cpu_count()`` (those this process may use) minus the 1-minute
    load average, at least 1. What ``zsgm gzsl --threads`` defaults to: torch's pool on cores that
    other jobs hold makes its threads wait for each other (a 2-core demo run: 100 s with 1 thread beside
    a busy job, 238 s with 2)."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return max(1, min(cores, int(round(cores - load))))
