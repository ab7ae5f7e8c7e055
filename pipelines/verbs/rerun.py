"""``zsgm rerun <record-id>``: repeat a stored run from its record and say whether the numbers match.

The record keeps the resolved config and hyper-parameters and the versions of python, torch,
timm and zsgm. The run is repeated from scratch (a private runs folder: no checkpoint of the
original run is reused) and nothing is appended to the store unless ``--append`` is given.
Exit 0 when U, S, H, ZSL top-1, epochs and γ all match, 1 when any differs, 2 on bad input.
On CPU with the same versions the numbers are expected to be bit-identical.
"""
from __future__ import annotations

import argparse
import difflib
import json
import logging
import tempfile
from pathlib import Path

HELP = "repeat a stored run from its record (config, hyper-parameters, seed) and report whether the numbers match"
COMPARED = ("U", "S", "H", "zsl", "epochs", "gamma")
log = logging.getLogger("zsgm.rerun")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("record_id", metavar="RECORD_ID", help="the record's id (or a unique prefix), see `zsgm results`")
    p.add_argument("--store", help="results store (default $ZSGM_RESULTS/runs.jsonl or results/runs.jsonl)")
    p.add_argument("--data-root", help="where the datasets live on this machine (default: the record's)")
    p.add_argument("--device", help="auto | cpu | cuda[:N] (default: the record's)")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="largest accepted difference in U/S/H/ZSL percentage points, 0..100 (default 0: identical)")
    p.add_argument("--append", action="store_true", help="append the new record to the store as well")
    p.add_argument("--json", action="store_true", help="print the comparison as one JSON object on the last line")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def find_record(records: list[dict], key: str, store: Path) -> dict:
    """The latest record whose id is ``key`` (or starts with it, when that is unique)."""
    from zsgm.core.errors import ZsgmError

    ids = list(dict.fromkeys(r["id"] for r in records if "id" in r))
    if key in ids:
        match = key
    else:
        hits = [i for i in ids if i.startswith(key)]
        if len(hits) > 1:
            raise ZsgmError(f"record id '{key}' is ambiguous in {store}: {', '.join(hits[:5])}"
                            f"{' ...' if len(hits) > 5 else ''}; give more of it")
        if not hits:
            close = difflib.get_close_matches(key, ids, n=3, cutoff=0.5)
            hint = f" Closest: {', '.join(close)}." if close else ""
            raise ZsgmError(f"no record with id '{key}' in {store} ({len(ids)} ids stored).{hint} "
                            f"List them with `zsgm results`")
        match = hits[0]
    return [r for r in records if r.get("id") == match][-1]


def config_of(record: dict, data_root: str | None, device: str | None):
    """The record's RunConfig, with hyper-parameters pinned to the recorded ones where the
    shipped defaults have changed since (so that the rerun computes what the record computed)."""
    from zsgm.core.errors import ZsgmError
    from zsgm.pipelines.config import RUN_FIELDS_IN_HP, RunConfig, flat_hp, resolve

    if not isinstance(record.get("config"), dict):
        raise ZsgmError(f"record {record.get('id')} stores no config; it cannot be re-run")
    stored = dict(record["config"])
    if "resolved" not in record:  # written before typed configs: epochs / eval_every could sit in hp then
        hp = dict(stored.get("hp") or {})
        stored.update({k: hp.pop(k) for k in RUN_FIELDS_IN_HP if k in hp and not stored.get(k)}, hp=hp)
    cfg = RunConfig.from_dict(stored, f"record {record['id']}")
    if data_root:
        cfg.data_root = data_root
    if device:
        cfg.device = device
    pinned: dict = {}
    resolved = record.get("resolved")
    if isinstance(resolved, dict):
        current = resolve(cfg)  # today's defaults for this config
        stored, now = flat_hp(resolved), flat_hp(current.to_dict())
        changed = {k: v for k, v in stored.items() if k in now and now[k] != v}
        gone = sorted(k for k in stored if k not in now)
        if gone:
            log.warning("hyper-parameter(s) %s of this record no longer exist; the rerun may differ", gone)
        if changed:
            log.warning("hyper-parameter defaults changed since this record (%s); re-running with the recorded "
                        "values", ", ".join(f"{k}: {now.get(k)!r} -> {v!r}" for k, v in sorted(changed.items())))
            for key in RUN_FIELDS_IN_HP.keys() & changed.keys():  # these have one way in, the run's own field
                setattr(cfg, key, changed[key])
            cfg.hp = {**cfg.hp, **{k: v for k, v in changed.items() if k not in RUN_FIELDS_IN_HP}}
            pinned = changed
        then, now_clf = resolved.get("classifier") or {}, current.classifier
        moved = {k: v for k, v in (then.get("options") or {}).items()
                 if k in now_clf.options and now_clf.options[k] != v and k not in now_clf.search}
        if moved:
            log.warning("classifier defaults changed since this record (%s); re-running with the recorded values",
                        ", ".join(f"{k}: {now_clf.options[k]!r} -> {v!r}" for k, v in sorted(moved.items())))
            cfg.clf_hp = {**cfg.clf_hp, **moved}
            pinned = {**pinned, **{f"clf.{k}": v for k, v in moved.items()}}
    return cfg, pinned


def compare(old: dict, new: dict, tolerance: float) -> dict[str, dict]:
    out = {}
    for k in COMPARED:
        a, b = old.get(k), new.get(k)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and k in ("U", "S", "H", "zsl"):
            ok = abs(float(a) - float(b)) <= tolerance
        else:
            ok = a == b
        out[k] = {"recorded": a, "rerun": b, "match": bool(ok)}
    return out


def run(args) -> int:
    from zsgm.evaluate.records import append_record, default_store, read_records
    from zsgm.core.errors import ZsgmError
    from zsgm.core.logs import show_progress
    from zsgm.core.project import versions
    from zsgm.pipelines.gzsl import run_gzsl

    from zsgm.evaluate.records import check_writable
    from zsgm.pipelines.params import RERUN, check_device, check_flags, check_path

    check_flags(args, RERUN)  # --tolerance nan / -1: refused before a run
    check_path(args.store, "--store")
    check_path(args.data_root, "--data-root")
    if args.device is not None:
        check_device(args.device)
    store = Path(args.store) if args.store is not None else default_store()
    if store.is_dir():
        raise ZsgmError(f"results store {store} is a directory, not a records file; pass --store FILE (the "
                        f"runs.jsonl inside it?)")
    if store.exists() and not store.is_file():
        raise ZsgmError(f"results store {store} is not a regular file; pass --store FILE")
    if not store.exists():
        raise ZsgmError(f"results store {store} does not exist; pass --store FILE or set $ZSGM_RESULTS")
    if args.append:
        check_writable(store)  # the new record must be appendable: known before the rerun trains
    record = find_record(read_records(store), args.record_id, store)
    if record.get("status", "ok") not in ("ok", "collapsed"):
        log.warning("record %s has status '%s'; re-running it anyway", record["id"], record.get("status"))
    cfg, pinned = config_of(record, args.data_root, args.device)
    now = versions()
    then = record.get("versions") or {}
    moved = {k: (then.get(k), now.get(k)) for k in sorted(set(then) | set(now)) if then.get(k) != now.get(k)}
    if moved:
        log.warning("versions differ from the record's (%s): numbers may differ in the last digits",
                    ", ".join(f"{k} {a} -> {b}" for k, (a, b) in moved.items()))
    with tempfile.TemporaryDirectory(prefix="zsgm-rerun-") as tmp:
        new = run_gzsl(cfg, store=Path(tmp) / "runs.jsonl", runs_dir=Path(tmp) / "runs",
                       progress=show_progress(not args.no_progress))
    new["rerun_of"] = record["id"]
    if args.append:
        append_record(new, store)
    fields = compare(record, new, args.tolerance)
    match = all(f["match"] for f in fields.values())
    print(f"rerun of {record['id']} ({record.get('dataset')}, {record.get('model')}+{record.get('classifier')}, "
          f"seed {record.get('seed')}):")
    for k, f in fields.items():
        print(f"  {k:<6} recorded {f['recorded']!s:>8}  rerun {f['rerun']!s:>8}  {'same' if f['match'] else 'DIFFERS'}")
    print("numbers match" if match else "numbers DIFFER" + (" (versions differ too)" if moved else ""))
    if args.json:
        print(json.dumps({"id": record["id"], "match": match, "fields": fields, "pinned_hp": pinned,
                          "versions_changed": {k: list(v) for k, v in moved.items()}, "new_id": new["id"]},
                         default=str))
    return 0 if match else 1
