"""The one console script: ``zsgm <verb> ...``.

Each verb lives in its own module with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their verb runs, so that
``zsgm --help`` stays fast.

Exit codes: 0 success, 2 bad input or usage (one message, no traceback unless
``--debug``), 1 internal failure, 3 a run that finished but is no result (recorded as collapsed or
failed: non-finite scores, every seed collapsed, one class predicted, U = 0).
"""
from __future__ import annotations

import argparse
import importlib
import sys

VERBS = {
    "gzsl": "zsgm.pipelines.verbs.gzsl",
    "extract": "zsgm.pipelines.verbs.extract",
    "tables": "zsgm.pipelines.verbs.tables",
    "bench": "zsgm.bench.verb",
    "datasets": "zsgm.pipelines.verbs.listing",
    "models": "zsgm.pipelines.verbs.listing",
    "classifiers": "zsgm.pipelines.verbs.listing",
    "backbones": "zsgm.pipelines.verbs.backbones",
    "weights": "zsgm.pipelines.verbs.weights",
    "data": "zsgm.pipelines.verbs.data",
    "results": "zsgm.pipelines.verbs.results",
    "rerun": "zsgm.pipelines.verbs.rerun",
    "quality": "zsgm.pipelines.verbs.quality",
    "export": "zsgm.pipelines.verbs.export",
}


def _verb_module(verb: str):
    return importlib.import_module(VERBS[verb])


def build_parser(verbs: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zsgm", description="Generalized zero-shot learning with generative models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("--quiet", "-q", action="store_true", help="warnings and errors only; no progress bars")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in verbs or list(VERBS):
        try:
            mod = _verb_module(verb)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("zsgm.pipelines.verbs"):
                continue  # a verb whose module is not built yet is simply not offered
            raise
        helps = getattr(mod, "HELPS", {}).get(verb) or mod.HELP
        p = sub.add_parser(verb, help=helps, description=helps)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks and debug logging")
        p.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                       help="warnings and errors only; no progress bars")
        mod.add_arguments(p, verb) if _takes_verb(mod.add_arguments) else mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _takes_verb(fn) -> bool:
    import inspect

    return len(inspect.signature(fn).parameters) >= 2


def main(argv: list[str] | None = None) -> int:
    from zsgm.core.errors import ZsgmError
    from zsgm.core.logs import setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    # Build only the asked verb's parser: it imports that verb's module alone.
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser([verb] if verb in VERBS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False))
    setup_logging(debug, quiet=bool(getattr(args, "quiet", False)))
    if "zsgm.pipelines.outcome" in sys.modules:  # a record of an earlier call in this process is not this one's
        sys.modules["zsgm.pipelines.outcome"].forget()
    try:
        code = int(args._run(args) or 0)
        return _degenerate_exit(args.verb) if code == 0 and args.verb in DEGENERATE_VERBS else code
    except ZsgmError as exc:
        return _fail(args.verb, f"error: {exc}", 2, debug)
    except KeyboardInterrupt:
        print(f"zsgm {args.verb}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (every failure ends in one message and an exit code)
        failed = os_failure(exc)
        if failed is not None:  # disk full, permission denied, a directory where a file belongs ...
            code, text = failed
            return _fail(args.verb, f"error: {text}" if code == 2 else f"internal error: {text}", code, debug)
        hint = "" if debug else " (re-run with --debug for the traceback)"
        return _fail(args.verb, f"internal error: {type(exc).__name__}: {exc}{hint}", 1, debug)


# Verbs that run one GZSL run and report it: a run recorded as collapsed or failed ends with its own exit code.
DEGENERATE_VERBS = ("gzsl",)


def _degenerate_exit(verb: str) -> int:
    """0, or for a run this process recorded as collapsed / failed (non-finite scores, every seed
    collapsed, one class predicted, U = 0) a last line that says so and exit code 3."""
    outcome = sys.modules.get("zsgm.pipelines.outcome")
    record = outcome.last_record() if outcome else None
    if not record or record.get("status", "ok") == "ok":
        return 0
    status = record["status"]
    print(f"zsgm {verb}: {status}: {record.get('degenerate') or record.get('error') or 'not a result'}; "
          f"recorded as status '{status}' (zsgm results --status {status}), not as a result "
          f"(exit {outcome.EXIT_DEGENERATE})", file=sys.stderr)
    return outcome.EXIT_DEGENERATE


def _fail(verb: str, text: str, code: int, debug: bool) -> int:
    """One message on stderr and the exit code; with ``--debug`` the traceback first (same code)."""
    if debug:
        import traceback

        traceback.print_exc()
    print(f"zsgm {verb}: {text}", file=sys.stderr)
    return code


# ---------------------------------------------------------------- OS errors
# errno -> what the user can do about it (exit 2); other OS errors are internal failures (exit 1).
_FIXABLE = {
    "ENOSPC": "free some space (or point ZSGM_RESULTS / --out elsewhere), then re-run the same command "
              "(finished work is kept)",
    "EDQUOT": "free some space, then re-run the same command",
    "EFBIG": "the file grew past the size limit (ulimit -f or the file system's): raise it or write elsewhere",
    "EACCES": "check the permissions of that path (ls -l), or write elsewhere",
    "EPERM": "check the permissions of that path, or write elsewhere",
    "EROFS": "write elsewhere",
    "EISDIR": "a directory is where a file belongs: move it away or give another path",
    "ENOTDIR": "part of that path is a file where a directory belongs: move it away or give another path",
    "ENOENT": "check the path",
    "ENAMETOOLONG": "use a shorter path",
    "ENOTEMPTY": "move the directory away or give another path",
    "EEXIST": "move it away or give another path",
    "EMFILE": "raise the limit (ulimit -n) or use fewer --workers",
}
# Names under which a writer keeps the file it writes (for OS errors that do not name it).
_PATH_LOCALS = ("path", "tmp", "store", "out", "dest", "target", "filename", "file")
# Functions whose failure is a failed write of their ``path`` even without an errno (torch.save's writer
# raises a bare RuntimeError when the disk fills up).
_WRITERS = ("atomic_path", "atomic_torch_save", "atomic_write_text", "atomic_write_json", "append_record", "save")


def os_failure(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, message) for an operating-system failure, naming the path and the cause; None
    for other exceptions."""
    import errno as errno_mod
    import os
    import re

    num, reason, path = None, None, None
    loop = re.match(r"Symlink loop from '(.*)'$", str(exc)) if isinstance(exc, RuntimeError) else None
    if loop:  # pathlib's resolve() reports ELOOP as a RuntimeError
        return 2, (f"{loop.group(1)}: a symbolic-link loop (the link points back at itself); fix the link or give "
                   f"the real file")
    if isinstance(exc, OSError) and exc.errno is not None:
        num, reason = exc.errno, exc.strerror or str(exc)
        path = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
    else:
        m = re.search(r"Os \{ code: (\d+)", str(exc))  # safetensors (Rust) I/O errors carry the errno in text
        if m:
            num = int(m.group(1))
            reason = os.strerror(num)
    frame_path, writer = _path_in_traceback(exc)
    path = path or frame_path
    if num is None:
        if not writer or not frame_path:
            return None
        free = _free_space(frame_path)
        return 2, (f"could not write {frame_path} ({type(exc).__name__}: {exc}){free}; if the disk is full or a "
                   f"file-size limit (ulimit -f) was hit, free space or write elsewhere, then re-run the same "
                   f"command")
    name = errno_mod.errorcode.get(num, "")
    where = f"{path}: " if path else ""
    advice = _FIXABLE.get(name)
    if advice is None:
        return 1, f"{where}{reason} ({name or num})"
    return 2, f"{where}{reason}; {advice}"


def _path_in_traceback(exc: BaseException) -> tuple[str | None, bool]:
    """The file being written where ``exc`` was raised (innermost frame that holds one), and whether
    that frame is one of the known writers."""
    from pathlib import Path

    tb, frames = exc.__traceback__, []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for name in _PATH_LOCALS:
            value = frame.f_locals.get(name)
            if isinstance(value, (str, Path)) and str(value):
                return str(value), frame.f_code.co_name in _WRITERS
            if hasattr(value, "name") and hasattr(value, "write") and isinstance(getattr(value, "name"), str):
                return value.name, frame.f_code.co_name in _WRITERS
    return None, False


def _free_space(path: str) -> str:
    import shutil
    from pathlib import Path

    p = Path(path).parent
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        free = shutil.disk_usage(p).free
    except OSError:
        return ""
    return f"; {free / 2**30:.1f} GiB free there"


if __name__ == "__main__":
    sys.exit(main())
