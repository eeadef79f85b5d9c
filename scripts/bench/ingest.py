"""Ingest throughput through the whole pipeline, next to the same database's raw insert rate.

    .venv/bin/python scripts/bench/ingest.py [--events N] [--threads N] [--backends LIST]
                                             [--rounds N] [--no-freeze]

For each backend, in one run: (1) ``normalize`` + ``Inbox.ingest`` of N native VK/Telegram
payloads (parse, dedupe journal, rules, citizen, conversation, message, SLA clock, audit: one
commit per event), one event after another like a caller that acknowledges afterwards;
(2) the webhook's path, ``accept`` (commit, then the acknowledgement) and ``process`` (a
second commit), one event after another; (3) the worker's path: events journalled first,
then ``process_pending`` (batches of ``inbox.ingest.BATCH`` events per transaction) until
done; (4) plain INSERTs of comparable rows (the journal row's JSON and a message's text),
one commit each; (5) the same inserts, a slice of them per transaction. The ratios to
watch: (1) and (2) over (4), and (3) over (5): what the pipeline costs over the database
itself.

The five take turns (``--rounds``, 5 by default): each round gives each of them the next
slice of its N events, so a machine that gets busier during the run (they are shared) slows
all of them alike instead of whichever ran then; run one after another, the ratios moved by
±0.1 from run to run. Timing starts with the set-up's objects frozen out of the cyclic
garbage collector (``gc.collect(); gc.freeze()``, as the web app and ``otklik worker`` do
after start-up, ``otklik.freeze``: the imports and the runtime are long-lived, and full
collections walking them cost up to 0.3 ms per event); ``--no-freeze`` times the paths
without it. CPU ms per event is this process's CPU time (``time.process_time``) over the
events: on SQLite it includes the database's work, on PostgreSQL the server's is not in it.
"""

from __future__ import annotations

import argparse
import gc
import itertools
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


class PipelinePath:
    """One path of the pipeline (``ingest``, ``webhook``, ``worker``) on a runtime of its own,
    with its own range of events (and citizens) on the database; ``run`` times a slice."""

    def __init__(self, url: str, events: int, threads: int, path: str) -> None:
        self.path = path
        self.runtime = build_runtime(Settings(database_url=url), clock=SystemClock())
        start = {"ingest": 0, "webhook": 1_000_000, "worker": 2_000_000}[path]
        self.payloads = list(native_events(events, threads, start=start))
        for native in self.payloads[:2]:  # import the parsers (aiogram takes seconds) first
            normalize(native.channel, native.body, self.runtime.profile)
        self.elapsed = self.cpu = 0.0

    def run(self, first: int, last: int) -> None:
        inbox, profile = self.runtime.inbox, self.runtime.profile
        payloads = self.payloads[first:last]
        if self.path == "worker":  # the web process journalled them; the worker's work is timed
            for native in payloads:
                inbox.accept(normalize(native.channel, native.body, profile))
        cpu, started = time.process_time(), time.perf_counter()
        if self.path == "ingest":
            for native in payloads:
                inbox.ingest(normalize(native.channel, native.body, profile))
        elif self.path == "webhook":
            for native in payloads:
                accepted = inbox.accept(normalize(native.channel, native.body, profile))
                inbox.process(accepted.record_id)
        else:
            done = 0
            while done < len(payloads):
                found = inbox.process_pending(PENDING_ROUND)
                assert found, "process_pending found nothing to do"
                done += found
        self.elapsed += time.perf_counter() - started
        self.cpu += time.process_time() - cpu


class Raw:
    """Plain INSERTs of rows comparable to the journal's (its JSON, a message's text): one
    commit each, or all of a slice in one transaction."""

    def __init__(self, url: str, events: int, threads: int, *, batched: bool) -> None:
        self.batched = batched
        self.engine = make_engine(url)
        RAW_TABLE.create(self.engine, checkfirst=True)
        self.rows = _rows(events, threads, start=20_000_000 if batched else 10_000_000)
        self.elapsed = 0.0

    def run(self, first: int, last: int) -> None:
        rows = self.rows[first:last]
        started = time.perf_counter()
        if self.batched:
            with self.engine.begin() as conn:
                for row in rows:
                    conn.execute(RAW_TABLE.insert(), row)
        else:
            for row in rows:
                with self.engine.begin() as conn:
                    conn.execute(RAW_TABLE.insert(), row)
        self.elapsed += time.perf_counter() - started


def _rows(events: int, threads: int, start: int) -> list[dict[str, Any]]:
    return [
        {
            "channel": n.channel.value,
            "external_id": n.external_id,
            "event": json.loads(n.body),
            "text": n.body.decode()[:200],
        }
        for n in native_events(events, threads, start=start)
    ]


def measure(
    url: str, events: int, threads: int, *, rounds: int = 5, freeze: bool = True
) -> dict[str, float]:
    """Every path and both raw inserts, interleaved: ``rounds`` rounds, each giving every one
    of them the next slice of its events, so that a machine busier in one part of the run
    slows all of them alike (the ratios are what the targets are about)."""
    raw = Raw(url, events, threads, batched=False)
    raw_batch = Raw(url, events, threads, batched=True)
    paths = {
        name: PipelinePath(url, events, threads, name) for name in ("ingest", "webhook", "worker")
    }
    if freeze:  # as the web app and ``otklik worker`` after start-up (``otklik.freeze``)
        gc.collect()
        gc.freeze()
    bounds = [events * n // rounds for n in range(rounds + 1)]
    for first, last in itertools.pairwise(bounds):
        runners: list[Raw | PipelinePath] = [raw, raw_batch, *paths.values()]
        for runner in runners:
            runner.run(first, last)
    gc.unfreeze()
    for path in paths.values():
        path.runtime.dispose()
    with raw.engine.begin() as conn:
        conn.execute(RAW_TABLE.delete())
    raw.engine.dispose()
    raw_batch.engine.dispose()
    rate = {name: events / path.elapsed for name, path in paths.items()}
    cpu = {name: path.cpu / events * 1000 for name, path in paths.items()}
    raw_rate, raw_batch_rate = events / raw.elapsed, events / raw_batch.elapsed
    return {
        "pipeline_per_s": round(rate["ingest"], 1),
        "pipeline_cpu_ms": round(cpu["ingest"], 2),
        "webhook_path_per_s": round(rate["webhook"], 1),
        "webhook_path_cpu_ms": round(cpu["webhook"], 2),
        "worker_batched_per_s": round(rate["worker"], 1),
        "worker_batched_cpu_ms": round(cpu["worker"], 2),
        "raw_insert_per_s": round(raw_rate, 1),
        "raw_insert_one_tx_per_s": round(raw_batch_rate, 1),
        "pipeline_vs_raw": round(rate["ingest"] / raw_rate, 3),
        "webhook_path_vs_raw": round(rate["webhook"] / raw_rate, 3),
        "worker_vs_raw_one_tx": round(rate["worker"] / raw_batch_rate, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=200, help="distinct citizens")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--rounds", type=int, default=5, help="the paths take turns, each a slice of events"
    )
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
                return measure(
                    url, args.events, args.threads, rounds=args.rounds, freeze=not args.no_freeze
                )

        runners["sqlite"] = run_sqlite
    if "postgresql" in args.backends:

        def run_pg() -> dict[str, float]:
            with private_pg() as url:
                return measure(
                    url, args.events, args.threads, rounds=args.rounds, freeze=not args.no_freeze
                )

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
            "rounds": args.rounds,
            "results": results,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
