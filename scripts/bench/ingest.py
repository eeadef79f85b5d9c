"""Ingest throughput through the whole pipeline, next to the same database's raw insert rate.

    .venv/bin/python scripts/bench/ingest.py [--events N] [--threads N] [--backends LIST]

For each backend, in one run: (1) ``normalize`` + ``Inbox.ingest`` of N native VK/Telegram
payloads (parse, dedupe journal, rules, citizen, conversation, message, SLA clock, audit:
two commits per event), one event after another like a webhook would; (2) N plain INSERTs of
comparable rows (the journal row's JSON and a message's text), one commit each; (3) the
same inserts in one transaction. The ratio pipeline/raw is the figure to watch: it says what
the pipeline costs over the database itself on this machine today.
"""

from __future__ import annotations

import argparse
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
from inbox.runtime import build_runtime
from tests.helpers.workload import native_events

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


def pipeline(url: str, events: int, threads: int) -> float:
    runtime = build_runtime(Settings(database_url=url), clock=SystemClock())
    payloads = list(native_events(events, threads))
    for native in payloads[:2]:  # import the parsers (aiogram takes seconds) before timing
        normalize(native.channel, native.body, runtime.profile)
    started = time.perf_counter()
    for native in payloads:
        runtime.inbox.ingest(normalize(native.channel, native.body, runtime.profile))
    elapsed = time.perf_counter() - started
    runtime.dispose()
    return events / elapsed


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


def measure(url: str, events: int, threads: int) -> dict[str, float]:
    raw = raw_inserts(url, events, threads, batched=False)
    raw_batch = raw_inserts(url, events, threads, batched=True)
    full = pipeline(url, events, threads)
    return {
        "pipeline_per_s": round(full, 1),
        "raw_insert_per_s": round(raw, 1),
        "raw_insert_one_tx_per_s": round(raw_batch, 1),
        "pipeline_vs_raw": round(full / raw, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=200, help="distinct citizens")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    runners: dict[str, Callable[[], dict[str, float]]] = {}
    if "sqlite" in args.backends:

        def run_sqlite() -> dict[str, float]:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
                upgrade(url)
                return measure(url, args.events, args.threads)

        runners["sqlite"] = run_sqlite
    if "postgresql" in args.backends:

        def run_pg() -> dict[str, float]:
            with private_pg() as url:
                return measure(url, args.events, args.threads)

        runners["postgresql"] = run_pg
    for name, run in runners.items():
        results[name] = run()
    headers = ["backend", "pipeline ev/s", "raw INSERT/s", "raw 1-tx/s", "pipeline/raw"]
    rows = [
        [
            name,
            r["pipeline_per_s"],
            r["raw_insert_per_s"],
            r["raw_insert_one_tx_per_s"],
            r["pipeline_vs_raw"],
        ]
        for name, r in results.items()
    ]
    print(f"ingest: {args.events} events, {args.threads} citizens")
    print(table(headers, rows))
    path = write_result(
        "ingest", {"events": args.events, "threads": args.threads, "results": results}
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
