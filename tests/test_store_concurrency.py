"""Concurrent appends to one results store: many processes, one file, no record lost, no line
interleaved. Records are made long (several KB, past a pipe/page buffer) so that an
unlocked, split write would show up as a broken line."""
from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

from zsgm.evaluate.records import append_record, read_records

N_PROC, N_APPEND = 8, 50
PAD = "x" * 6000


def _writer(store: str, worker: int, start) -> None:
    start.wait()  # all processes append at once
    for i in range(N_APPEND):
        append_record({"id": f"w{worker}-{i}", "worker": worker, "i": i, "pad": PAD, "H": worker + i / 100}, store)


def test_parallel_appends_lose_nothing_and_never_interleave(tmp_path: Path) -> None:
    store = tmp_path / "results" / "runs.jsonl"
    ctx = mp.get_context("fork")  # cheap to start; the writers import nothing heavy
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(store), w, start)) for w in range(N_PROC)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = store.read_text().splitlines()
    assert len(lines) == N_PROC * N_APPEND
    records = [json.loads(line) for line in lines]  # each line one whole record
    assert all(r["pad"] == PAD for r in records)
    assert sorted(r["id"] for r in records) == sorted(f"w{w}-{i}" for w in range(N_PROC) for i in range(N_APPEND))
    for w in range(N_PROC):  # each writer's own records in the order it wrote them
        assert [r["i"] for r in records if r["worker"] == w] == list(range(N_APPEND))
    assert len(read_records(store)) == N_PROC * N_APPEND
