"""``zsgm results``: list and filter the stored result records as a table, or export them."""
from __future__ import annotations

import json

HELP = "list/filter result records (results/runs.jsonl) as a table, or export them (csv, parquet, md, jsonl)"


def add_arguments(p) -> None:
    p.add_argument("--filter", action="append", default=[], metavar="FIELD=V1[,V2]",
                   help="keep records whose field is one of the values (repeatable), e.g. --filter model=cramer,wgan")
    p.add_argument("--status", choices=("ok", "failed", "collapsed"), help="only records with this status")
    p.add_argument("--all", action="store_true", help="every record, not only the latest of each id")
    p.add_argument("--last", type=int, help="only the N most recent records")
    p.add_argument("--columns", help="comma-separated fields to show (default: the main ones); a dotted name "
                                     "shows a nested field, e.g. config.hp.n_synth or resolved.classifier.name")
    p.add_argument("--format", choices=("md", "csv", "json"), default="md", help="printed format (default md)")
    p.add_argument("--out", help="export to this file instead (format from its suffix: .md .csv .parquet .jsonl; "
                                 "Parquet needs pyarrow, which make setup installs)")


def run(args) -> int:
    from zsgm.core.errors import ZsgmError
    from zsgm.evaluate.records import (LIST_COLUMNS, check_columns, default_store, export_records, field_value,
                                       filter_records, latest_by_id, markdown_frame, parse_filters, read_records,
                                       status_of, to_frame)
    from zsgm.pipelines.params import RESULTS, check_flags, check_output_file

    check_flags(args, RESULTS)
    if args.out is not None:
        check_output_file(args.out, "--out")
    columns = [c.strip() for c in args.columns.split(",")] if args.columns is not None else list(LIST_COLUMNS)
    if args.columns is not None and not all(columns):
        raise ZsgmError(f"--columns {args.columns!r}: an empty column name; give comma-separated fields, e.g. "
                        f"--columns id,model,H")
    all_records = read_records()
    check_columns(columns, all_records)
    records = all_records
    if not args.all:
        records = list(latest_by_id(records).values())
    records = filter_records(records, parse_filters(args.filter))
    if args.status:  # a record without the field is ok; an old 'ok' with collapsed: true is collapsed
        records = [r for r in records if status_of(r) == args.status]
    if args.last is not None:
        records = records[-args.last:]
    if args.out:
        path = export_records(records, args.out, columns=None if args.out.endswith(".jsonl") else columns)
        print(f"{len(records)} record(s) -> {path}")
        return 0
    if not records:
        print(f"no records match (store: {default_store()})")
        return 0
    if args.format == "json":
        for r in records:
            print(json.dumps({c: field_value(r, c) for c in columns}, default=str))
    else:
        frame = to_frame(records, columns)
        print(frame.to_csv(index=False) if args.format == "csv" else markdown_frame(frame), end="")
    return 0
