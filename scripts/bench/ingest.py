"""Ingest throughput through the whole pipeline, next to the same database's raw insert rate.

    .venv/bin/python scripts/bench/ingest.py [--events N] [--threads N] [--backends LIST]

For each backend, in one run: (1) ``normalize`` + ``Inbox.ingest`` of N native VK/Telegram
payloads (parse, dedupe journal, rules, citizen, conversation, message, SLA clock, audit: one
commit per event), one event after another like a caller that acknowledges afterwards;
(2) the webhook's path, ``accept`` (commit, then the acknowledgement) and ``process`` (a
second commit), one event after another; (3) the worker's path: N events journalled first,
then ``process_pending`` (batches of ``inbox.ingest.BATCH`` events per transaction) until
done; (4) N plain INSERTs of comparable rows (the journal row's JSON and a message's text),
one commit each; (5) the same inserts in one
transaction. The ratios to watch: (1) and (2) over (4), and (3) over (5): what the pipeline
costs over the database itself. Each path starts with the set-up's objects frozen out of
the cyclic garbage collector (``gc.collect(); gc.freeze()``, as the web app and ``otklik
worker`` do after start-up, ``otklik.freeze``: the imports and the runtime are long-lived,
and full collections walking them cost up to 0.3 ms per event); ``--no-freeze`` times the
paths without it. CPU ms per event is this process's CPU time
(``time.process_time``) over the events: on SQLite it includes the database's work, on
PostgreSQL the server's is not in it.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from common import private_pg, table, write_result  # type: ignore[import-not-found]

from bot.normalize import normalize
from core.clock import SystemClock
from core.config import Settings
from inbox.db import make_engine, upgrade
from inbox.ingest import BATCH
from inbox.runtime import build_runtime
from tests.helpers.workload import native_events

#: Events per ``process_pending`` call in the worker path (the worker's ``PENDING_BATCH`` is
#: smaller; the transaction size is ``BATCH`` either way).
PENDING_ROUND = 10 * BATCH

RAW_TABLE = sa.Table(
    "bench_raw",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("external_id", sa.String(255), nullable=False),
    sa.Column("event", sa.JSON, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.UniqueConstraint("channel", "external_id"),
)


def pipeline(
    url: str, events: int, threads: int, path: str, *, freeze: bool = True
) -> tuple[float, float]:
    """Events per second and CPU ms per event of one path (``ingest``, ``webhook``,
    ``worker``); each path gets its own range of events (and citizens) on the database."""
    runtime = build_runtime(Settings(database_url=url), clock=SystemClock())
    start = {"ingest": 0, "webhook": 1_000_000, "worker": 2_000_000}[path]
    payloads = list(native_events(events, threads, start=start))
    for native in payloads[:2]:  # import the parsers (aiogram takes seconds) before timing
        normalize(native.channel, native.body, runtime.profile)
    inbox = runtime.inbox
    if path == "worker":  # the web process journalled them; the worker's work is timed
        for native in payloads:
            inbox.accept(normalize(native.channel, native.body, runtime.profile))
    if freeze:  # as the web app and ``otklik worker`` after start-up (``otklik.freeze``)
        gc.collect()
        gc.freeze()
    cpu, started = time.process_time(), time.perf_counter()
    if path == "ingest":
        for native in payloads:
            inbox.ingest(normalize(native.channel, native.body, runtime.profile))
    elif path == "webhook":
        for native in payloads:
            accepted = inbox.accept(normalize(native.channel, native.body, runtime.profile))
            inbox.process(accepted.record_id)
    else:
        done = 0
        while done < events:
            found = inbox.process_pending(PENDING_ROUND)
            assert found, "process_pending found nothing to do"
            done += found
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    gc.unfreeze()
    runtime.dispose()
    return events / elapsed, cpu / events * 1000


def _rows(events: int, threads: int) -> list[dict[str, Any]]:
    return [
        {
            "channel": n.channel.value,
            "external_id": n.external_id,
            "event": json.loads(n.body),
            "text": n.body.decode()[:200],
        }
        for n in native_events(events, threads, start=10_000_000)
    ]


def raw_inserts(url: str, events: int, threads: int, batched: bool) -> float:
    engine = make_engine(url)
    RAW_TABLE.create(engine, checkfirst=True)
    rows = _rows(events, threads)
    started = time.perf_counter()
    if batched:
        with engine.begin() as conn:
            for row in rows:
                conn.execute(RAW_TABLE.insert(), row)
    else:
        for row in rows:
            with engine.begin() as conn:
                conn.execute(RAW_TABLE.insert(), row)
    elapsed = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(RAW_TABLE.delete())
    engine.dispose()
    return events / elapsed


def measure(url: str, events: int, threads: int, *, freeze: bool = True) -> dict[str, float]:
    raw = raw_inserts(url, events, threads, batched=False)
    raw_batch = raw_inserts(url, events, threads, batched=True)
    full, full_cpu = pipeline(url, events, threads, "ingest", freeze=freeze)
    hook, hook_cpu = pipeline(url, events, threads, "webhook", freeze=freeze)
    worker, worker_cpu = pipeline(url, events, threads, "worker", freeze=freeze)
    return {
        "pipeline_per_s": round(full, 1),
        "pipeline_cpu_ms": round(full_cpu, 2),
        "webhook_path_per_s": round(hook, 1),
        "webhook_path_cpu_ms": round(hook_cpu, 2),
        "worker_batched_per_s": round(worker, 1),
        "worker_batched_cpu_ms": round(worker_cpu, 2),
        "raw_insert_per_s": round(raw, 1),
        "raw_insert_one_tx_per_s": round(raw_batch, 1),
        "pipeline_vs_raw": round(full / raw, 3),
        "webhook_path_vs_raw": round(hook / raw, 3),
        "worker_vs_raw_one_tx": round(worker / raw_batch, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=200, help="distinct citizens")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--no-freeze", action="store_true", help="the paths without gc.freeze() after set-up"
    )
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    runners: dict[str, Callable[[], dict[str, float]]] = {}
    if "sqlite" in args.backends:

        def run_sqlite() -> dict[str, float]:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
                upgrade(url)
                return measure(url, args.events, args.threads, freeze=not args.no_freeze)

        runners["sqlite"] = run_sqlite
    if "postgresql" in args.backends:

        def run_pg() -> dict[str, float]:
            with private_pg() as url:
                return measure(url, args.events, args.threads, freeze=not args.no_freeze)

        runners["postgresql"] = run_pg
    for name, run in runners.items():
        results[name] = run()
    headers = ["backend", "path", "events/s", "CPU ms/ev", "raw /s", "ratio"]
    rows = []
    for name, r in results.items():
        raw, one_tx = r["raw_insert_per_s"], r["raw_insert_one_tx_per_s"]
        rows += [
            [name, "ingest (1 tx)", r["pipeline_per_s"], r["pipeline_cpu_ms"], raw,
             r["pipeline_vs_raw"]],
            [name, "accept+process", r["webhook_path_per_s"], r["webhook_path_cpu_ms"], raw,
             r["webhook_path_vs_raw"]],
            [name, "worker batched", r["worker_batched_per_s"], r["worker_batched_cpu_ms"],
             one_tx, r["worker_vs_raw_one_tx"]],
        ]  # fmt: skip
    print(f"ingest: {args.events} events, {args.threads} citizens; ratio: over raw commit each,")
    print("  worker batched over raw one-transaction inserts")
    print(table(headers, rows))
    path = write_result(
        "ingest",
        {
            "events": args.events,
            "threads": args.threads,
            "gc_freeze": not args.no_freeze,
            "results": results,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
