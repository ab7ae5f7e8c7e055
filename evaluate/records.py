"""The results store: one JSON object per line in ``results/runs.jsonl``.

Appends take a file lock, so that grid cells running in parallel never interleave
lines; every line is written whole with one ``write`` call and flushed. CSV, Parquet
and Markdown are exports of these rows.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Iterable

from filelock import FileLock

from zsgm.core.errors import ZsgmError
from zsgm.core.project import PROJECT_ROOT

# The fields every record carries (ARCHITECTURE.md, "Records").
FIELDS = ("id", "dataset", "backbone", "pretrained", "model", "classifier", "tricks", "seed", "selection",
          "U", "S", "H", "zsl", "epochs", "seconds", "n_classes", "started", "versions", "config")


def results_dir() -> Path:
    return Path(os.environ.get("ZSGM_RESULTS", PROJECT_ROOT / "results"))


def default_store() -> Path:
    return results_dir() / "runs.jsonl"


def default_runs_dir() -> Path:
    """Where each run keeps its losses, validation metrics, per-class accuracy and checkpoints:
    ``runs/`` inside the folder ``$ZSGM_RESULTS`` names, else the project's ``runs/``."""
    if os.environ.get("ZSGM_RESULTS"):
        return results_dir() / "runs"
    return PROJECT_ROOT / "runs"


# Fields only some records carry (a degenerate or failed run, a resumed one, a rerun, grid labels).
OPTIONAL_FIELDS = ("degenerate", "error", "segments", "reseeds", "collapsed", "gamma", "rerun_of", "kind",
                   "traceback", "nulls", "variant", "featureset", "configuration")

# The headline metrics: a record whose metric is not a finite number is not a result.
METRICS = ("U", "S", "H", "zsl")


class NonFiniteMetric(RuntimeError):
    """A run produced NaN or inf for a headline metric: an internal failure (exit 1), never a result."""


def finite_record(record: dict) -> dict:
    """``record`` made safe for strict JSON: a NaN/inf headline metric (U, S, H, zsl) of a record that
    claims success (``status`` ok or absent) raises :class:`NonFiniteMetric`; any other non-finite number
    (a failed or collapsed record's metrics too) becomes ``null``, with the reason under ``nulls``
    ({"val.eval_zsl": "nan"}). Returns a new dict."""
    bad = [k for k in METRICS if isinstance(record.get(k), float) and not math.isfinite(record[k])]
    if bad and status_of(record) == "ok":
        raise NonFiniteMetric(f"run {record.get('id', '?')}: {', '.join(f'{k}={record[k]}' for k in bad)} is not a "
                              f"number; nothing was recorded (re-run with --debug and report the traceback)")
    nulls: dict[str, str] = {}

    def clean(value, where: str):
        if isinstance(value, float) and not math.isfinite(value):
            nulls[where] = str(value)
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    out = clean(record, "")
    if nulls:
        out["nulls"] = {**(record.get("nulls") or {}), **nulls}
    return out


def record_line(record: dict) -> str:
    """One strict-JSON line (no bare NaN/Infinity, which strict parsers reject)."""
    return json.dumps(finite_record(record), sort_keys=True, default=str, allow_nan=False)


def check_writable(store: str | Path | None = None, runs_dir: str | Path | None = None) -> None:
    """Prove before any work that a run can record its result: the store a file (or absent) in a folder
    where files can be created (its lock too), and the runs folder creatable and writable. Raises
    ZsgmError naming the path, the fault and what to do; changes nothing that is there."""
    store = Path(store or default_store())
    env = " (from $ZSGM_RESULTS)" if os.environ.get("ZSGM_RESULTS") and store == default_store() else ""
    if store.is_dir():
        raise ZsgmError(f"results store {store}{env} is a directory, not a file; move it away (or point "
                        f"$ZSGM_RESULTS at another folder)")
    if store.exists() and not store.is_file():
        raise ZsgmError(f"results store {store}{env} is not a regular file; move it away or use another store")
    problem = probe_folder(store.parent)
    if problem:
        raise ZsgmError(f"results store {store}{env}: {problem}")
    if store.exists():
        try:
            with open(store, "a", encoding="utf-8"):  # opened for appending, nothing written
                pass
        except OSError as exc:
            raise ZsgmError(f"results store {store}{env} cannot be appended to ({exc.strerror or exc}); check its "
                            f"permissions (ls -l {store}, lsattr for the immutable flag) or use another "
                            f"store") from None
    if runs_dir is not None:
        problem = probe_folder(Path(runs_dir))
        if problem:
            raise ZsgmError(f"runs folder {runs_dir}: {problem}")


def probe_folder(folder: str | Path) -> str | None:
    """Why files cannot be created in ``folder`` (made if missing), or None when they can: a probe file
    is created and removed."""
    import tempfile

    folder = Path(folder)
    up = folder
    while not up.exists() and up != up.parent:
        up = up.parent
    if up.exists() and not up.is_dir():
        return f"{up} is a file where a folder belongs; move it away or give another path"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".zsgm-write-probe.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return (f"cannot write in {folder} ({exc.strerror or exc}); check its permissions (ls -ld {folder}, lsattr "
                f"for the immutable flag) or give another path")
    return None


def append_record(record: dict, store: str | Path | None = None) -> Path:
    store = Path(store or default_store())
    store.parent.mkdir(parents=True, exist_ok=True)
    line = record_line(record) + "\n"
    with FileLock(str(store) + ".lock"):
        _drop_torn_tail(store)
        with open(store, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
    return store


def _drop_torn_tail(store: Path) -> None:
    """Cut a torn last line (a writer killed mid-line) so that the next record starts a line of
    its own instead of being glued to the fragment. Called under the lock: no writer is live."""
    if not store.is_file() or store.stat().st_size == 0:
        return
    with open(store, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        tail = fh.read()  # only on this rare path: a torn store
        size, cut = len(tail), tail.rfind(b"\n")
        keep = cut + 1
        try:  # a whole record that only lacks its newline (edited by hand) is kept
            json.loads(tail[cut + 1:])
            fh.write(b"\n")
            return
        except ValueError:
            pass
        logging.getLogger("zsgm.records").warning("%s: dropping a torn last line of %d bytes (a writer was "
                                                  "killed mid-line)", store, size - keep)
        fh.truncate(keep)


def read_records(store: str | Path | None = None) -> list[dict]:
    """All complete records; a torn last line (a writer killed mid-line) is skipped."""
    store = Path(store or default_store())
    if store.is_dir():
        raise ZsgmError(f"results store {store} is a directory, not a file of records; move it away (or point "
                        f"$ZSGM_RESULTS / --store elsewhere)")
    if store.exists() and not store.is_file():
        raise ZsgmError(f"results store {store} is not a regular file; point $ZSGM_RESULTS / --store at a "
                        f"records file")
    if not store.is_file():
        return []
    out = []
    with open(store, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if fh.read(1):  # not the last line: the store itself is damaged
                    raise ZsgmError(f"{store}: line {n} is not valid JSON ({exc}); fix or remove that line") from exc
                logging.getLogger("zsgm.records").warning(
                    "%s: skipping its last line %d (%d bytes, not valid JSON): a writer was killed mid-line; "
                    "the next record appended drops it", store, n, len(line))
    return out


def find_records(records: Iterable[dict], **match) -> list[dict]:
    return [r for r in records if all(r.get(k) == v for k, v in match.items())]


# ---------------------------------------------------------------- status, resume, filters
# A record without ``status`` predates the field and counts as a finished run.
FINISHED = ("ok", "collapsed")


def status_of(record: dict) -> str:
    """ok | collapsed | failed. A record without ``status`` predates the field (ok); one that says ``ok``
    with ``collapsed: true`` was written before collapsed runs had a status of their own."""
    status = str(record.get("status") or "ok")
    return "collapsed" if status == "ok" and record.get("collapsed") is True else status


def latest_by_id(records: Iterable[dict]) -> dict[str, dict]:
    """The last record of each id: a retried cell appends, it never rewrites."""
    out: dict[str, dict] = {}
    for r in records:
        if "id" in r:
            out[r["id"]] = r
    return out


def finished_ids(records: Iterable[dict]) -> set[str]:
    """Ids whose latest record is a finished run (failed ones are retried on resume)."""
    return {i for i, r in latest_by_id(records).items() if status_of(r) in FINISHED}


def parse_filters(items: Iterable[str], source: str = "--filter") -> dict[str, list[str]]:
    """``["model=cramer,wgan", "seed=0"]`` -> ``{"model": ["cramer", "wgan"], "seed": ["0"]}``."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ZsgmError(f"{source} {item!r}: expected FIELD=VALUE[,VALUE...], e.g. model=cramer,wgan")
        out.setdefault(key.strip(), []).extend(v.strip() for v in value.split(","))
    return out


def _text(value) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def filter_records(records: Iterable[dict], filters: dict[str, list[str]]) -> list[dict]:
    """Records whose field (compared as text, so ``seed=0`` matches 0) is one of the values."""
    want = {k: {v.lower() for v in vs} for k, vs in filters.items()}
    return [r for r in records if all(_text(field_value(r, k)).lower() in vs for k, vs in want.items())]


# ---------------------------------------------------------------- exports
LIST_COLUMNS = ("id", "dataset", "backbone", "pretrained", "model", "classifier", "tricks", "seed", "selection",
                "U", "S", "H", "zsl", "epochs", "seconds", "n_classes", "status")
EXPORTS = ("md", "csv", "parquet", "jsonl")


_MISSING = object()


def field_value(record: dict, column: str, default=None):
    """A record's field; a dotted name reaches into nested ones (``config.hp.formulation``), the whole
    name first (a field may hold a dot)."""
    if column in record:
        return record[column]
    node = record
    for part in column.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def known_columns(records: Iterable[dict]) -> list[str]:
    """Every column the records can show: the record fields, and each nested field by its dotted name."""
    out: dict[str, None] = dict.fromkeys((*FIELDS, *LIST_COLUMNS, *OPTIONAL_FIELDS))

    def walk(node: dict, prefix: str) -> None:
        for k, v in node.items():
            name = f"{prefix}{k}"
            out[name] = None
            if isinstance(v, dict):
                walk(v, name + ".")

    for r in records:
        walk(r, "")
    return list(out)


def check_columns(columns: Iterable[str], records: Iterable[dict], flag: str = "--columns") -> None:
    """Refuse a column no record has (a typo would print a blank column), listing the known ones."""
    records = list(records)
    known = known_columns(records)
    bad = [c for c in columns if c not in known and not any(field_value(r, c, _MISSING) is not _MISSING
                                                              for r in records)]
    if bad:
        import difflib

        close = [m for c in bad for m in difflib.get_close_matches(c, known, n=1)]
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        top = sorted({k.split(".")[0] for k in known})
        raise ZsgmError(f"{flag}: unknown column(s) {', '.join(map(repr, bad))}.{hint} Known: {', '.join(top)} "
                        f"(nested fields by a dotted name, e.g. config.hp.n_synth)")


def to_frame(records: Iterable[dict], columns: Iterable[str] | None = None):
    """A pandas DataFrame of the records; a dotted column reaches into a nested field
    (``config.hp.formulation``); nested fields shown whole (config, versions) become JSON text."""
    import pandas as pd

    records = list(records)
    columns = list(columns or FIELDS + tuple(k for r in records for k in r if k not in FIELDS))
    columns = list(dict.fromkeys(columns))

    def cell(r: dict, c: str):
        v = field_value(r, c)
        return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v

    rows = [{c: status_of(r) if c == "status" else cell(r, c) for c in columns} for r in records]
    return pd.DataFrame(rows, columns=columns)


def markdown_frame(frame, floatfmt: str = ".1f") -> str:
    """A DataFrame as a GitHub Markdown table (no extra dependency)."""
    def cell(v) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return ""
        if isinstance(v, float):
            return format(v, floatfmt)
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def export_records(records: Iterable[dict], path: str | Path, fmt: str | None = None,
                   columns: Iterable[str] | None = None) -> Path:
    """Write the records to ``path`` atomically as md, csv, parquet or jsonl (format from the suffix)."""
    from zsgm.core.files import atomic_path, atomic_write_text

    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in EXPORTS:
        raise ZsgmError(f"cannot export records as '{fmt}' ({path}); use one of {', '.join(EXPORTS)}")
    records = list(records)
    if fmt == "jsonl":
        atomic_write_text(path, "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records))
        return path
    frame = to_frame(records, columns)
    if fmt == "md":
        atomic_write_text(path, markdown_frame(frame))
    elif fmt == "csv":
        atomic_write_text(path, frame.to_csv(index=False))
    else:
        try:
            import pyarrow  # noqa: F401  (pandas needs an engine for Parquet)
        except ImportError as exc:
            raise ZsgmError("Parquet export needs pyarrow: pip install pyarrow (or export .csv)") from exc
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False)
    return path
