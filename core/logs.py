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
