"""The one console script: ``zsgm <verb> ...``.

Each verb lives in its own module with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their verb runs, so that
``zsgm --help`` stays fast.

Exit codes: 0 success, 2 bad input or usage (one message, no traceback unless
``--debug``), 1 internal failure.
"""
from __future__ import annotations

import argparse
import importlib
import sys

VERBS = {
    "gzsl": "pipelines.verbs.gzsl",
    "extract": "pipelines.verbs.extract",
    "tables": "pipelines.verbs.tables",
    "bench": "pipelines.verbs.bench",
    "datasets": "pipelines.verbs.listing",
    "models": "pipelines.verbs.listing",
    "classifiers": "pipelines.verbs.listing",
    "backbones": "pipelines.verbs.backbones",
    "weights": "pipelines.verbs.weights",
    "data": "pipelines.verbs.data",
    "weights": "pipelines.verbs.weights",
    "data": "pipelines.verbs.data",
    "results": "pipelines.verbs.results",
    "rerun": "pipelines.verbs.rerun",
    "export": "pipelines.verbs.export",
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
            if exc.name and exc.name.startswith("pipelines.verbs"):
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
    from extract.common import ZsgmError, setup_logging

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
    try:
        return int(args._run(args) or 0)
    except ZsgmError as exc:
        if debug:
            raise
        print(f"zsgm {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zsgm {args.verb}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal failure: say so, keep the traceback behind --debug
        if debug:
            raise
        print(f"zsgm {args.verb}: internal error: {type(exc).__name__}: {exc} (re-run with --debug for the "
              f"traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
