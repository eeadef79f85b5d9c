"""The operator queue query and the SLA breach scan over N conversations in PostgreSQL.

    .venv/bin/python scripts/bench/queue_sla.py [--conversations 1000000] [--repeat 5]

Bulk-loads a private database with COPY (citizens, conversations, SLA clocks; a realistic
mix: most conversations closed and answered in time, a few thousand open with deadlines,
some of them overdue), then measures, with EXPLAIN ANALYZE, ``/api/queue``'s query
(``inbox.queue.queue_query``; also main's former ``ORDER BY due_at IS NULL, due_at``) and
the two queries of ``sla.scan``, plus the wall time of one ``sla.scan`` (rolled back, so each
repeat sees the same work). First at schema ``0001``, then after ``perf_0002`` (its indexes).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from common import private_pg, table, write_result  # type: ignore[import-not-found]

from inbox import sla
from inbox.db import make_engine, session_factory, upgrade
from inbox.models import Conversation, SlaClock
from inbox.queue import queue_query

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OPEN_SHARE = 0.02  # open conversations: 2 % (the rest answered and closed)
OVERDUE_SHARE = 0.05  # of the open ones, overdue (the scan has work)


def load(url: str, conversations: int, seed: int = 1) -> dict[str, int]:
    """COPY the rows in; returns how many open and overdue conversations were made."""
    rnd = random.Random(seed)
    citizens = max(1, conversations // 5)
    engine = make_engine(url)
    raw = engine.raw_connection()
    counts = {"open": 0, "overdue": 0}
    try:
        cur = raw.cursor()
        with cur.copy("COPY citizen (id, display_name, created_at) FROM STDIN") as copy:
            for i in range(1, citizens + 1):
                copy.write_row((i, f"Житель {i}", NOW - timedelta(days=400)))
        conv_cols = (
            "id, number, channel, thread_key, citizen_id, kind, rule_id, status, is_public, "
            "reply_target, opened_at, due_at, first_response_at, version"
        )
        clock_cols = "id, conversation_id, rule_id, kind, started_at, due_at, warn_at, status"
        channels = ("telegram", "vk", "email", "phone", "webchat")
        clocks: list[tuple[Any, ...]] = []
        with cur.copy(f"COPY conversation ({conv_cols}) FROM STDIN") as copy:
            for i in range(1, conversations + 1):
                opened = NOW - timedelta(minutes=rnd.randint(1, 60 * 24 * 365))
                channel = channels[i % 5]
                is_open = rnd.random() < OPEN_SHARE
                if is_open:
                    counts["open"] += 1
                    overdue = rnd.random() < OVERDUE_SHARE
                    counts["overdue"] += overdue
                    opened = NOW - timedelta(minutes=rnd.randint(1, 600))
                    minutes = -rnd.randint(1, 300) if overdue else rnd.randint(10, 4000)
                    due = NOW + timedelta(minutes=minutes)
                    warn = due - timedelta(minutes=30)
                    status = rnd.choice(("new", "bot", "waiting_operator", "waiting_operator"))
                    clocks.append((i, i, "appeal", "appeal", opened, due, warn, "running"))
                    first_response = None
                else:
                    due = None
                    status = "closed"
                    first_response = opened + timedelta(minutes=30)
                    clocks.append(
                        (i, i, "appeal", "appeal", opened, opened + timedelta(hours=8),
                         opened + timedelta(hours=6), "met")
                    )  # fmt: skip
                copy.write_row(
                    (i, f"{opened.year}-{i:07d}", channel, f"{channel}:{i}",
                     rnd.randint(1, citizens), "appeal", "appeal", status, False, "{}",
                     opened, due, first_response, 1)
                )  # fmt: skip
        with cur.copy(f"COPY sla_clock ({clock_cols}) FROM STDIN") as copy:
            for row in clocks:
                copy.write_row(row)
        for name in ("citizen", "conversation", "sla_clock"):
            cur.execute(f"SELECT setval('{name}_id_seq', (SELECT max(id) FROM {name}))")
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return counts


def _explain(engine: sa.Engine, statement: Any, repeat: int) -> dict[str, Any]:
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    sql = f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {compiled}"
    times: list[float] = []
    plan: dict[str, Any] = {}
    with engine.connect() as conn:
        for _ in range(repeat):
            result = conn.execute(sa.text(sql)).scalar()
            plan = result[0]
            times.append(plan["Execution Time"])
        conn.rollback()
    return {"ms_median": round(statistics.median(times), 3), "plan": _summary(plan["Plan"])}


def _summary(node: dict[str, Any], depth: int = 0) -> list[str]:
    """The plan as one line per node: type, index, rows."""
    line = "  " * depth + node["Node Type"]
    if "Index Name" in node:
        line += f" using {node['Index Name']}"
    line += f" (rows={node.get('Actual Rows')}, loops={node.get('Actual Loops')})"
    lines = [line]
    for child in node.get("Plans", []):
        lines.extend(_summary(child, depth + 1))
    return lines


def _scan_wall(url: str, repeat: int) -> float:
    engine = make_engine(url)
    factory = session_factory(engine)
    times = []
    for _ in range(repeat):
        with factory() as session:
            started = time.perf_counter()
            sla.scan(session, NOW)
            session.flush()
            times.append((time.perf_counter() - started) * 1000)
            session.rollback()
    engine.dispose()
    return round(statistics.median(times), 1)


def queries() -> dict[str, Any]:
    open_values = ["new", "bot", "waiting_operator", "answered"]
    old_queue = (
        sa.select(Conversation)
        .where(sa.column("status").in_(open_values))
        .order_by(sa.column("due_at").is_(None), sa.column("due_at"))
        .limit(100)
    )
    running = SlaClock.status == "running"  # type: ignore[comparison-overlap]
    return {
        "queue (main's ORDER BY)": old_queue,
        "queue": queue_query(limit=100),
        "queue, channel=vk": queue_query(channel="vk", limit=100),
        "queue, status=waiting_operator": queue_query(status="waiting_operator", limit=100),
        "sla scan: warnings": sa.select(SlaClock)
        .where(running, SlaClock.warn_at <= NOW, SlaClock.warned_at.is_(None))  # type: ignore[union-attr]
        .order_by(SlaClock.warn_at)
        .limit(1000)
        .with_for_update(skip_locked=True),
        "sla scan: breaches": sa.select(SlaClock)
        .where(running, SlaClock.due_at <= NOW)
        .order_by(SlaClock.due_at)
        .limit(1000)
        .with_for_update(skip_locked=True),
    }


def measure(url: str, repeat: int) -> dict[str, Any]:
    engine = make_engine(url)
    found = {name: _explain(engine, q, repeat) for name, q in queries().items()}
    engine.dispose()
    found["sla.scan() wall"] = {"ms_median": _scan_wall(url, repeat), "plan": []}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with private_pg(migrate=False) as url:
        upgrade(url, "0001")
        started = time.perf_counter()
        counts = load(url, args.conversations)
        load_s = round(time.perf_counter() - started, 1)
        before = measure(url, args.repeat)
        upgrade(url, "head")
        after = measure(url, args.repeat)
    rows = [[name, before[name]["ms_median"], after[name]["ms_median"]] for name in before]
    print(
        f"queue/SLA: {args.conversations} conversations ({counts['open']} open, "
        f"{counts['overdue']} overdue), loaded with COPY in {load_s} s"
    )
    print(table(["query", "0001 ms", "perf_0002 ms"], rows))
    for name in ("queue", "sla scan: warnings"):
        print(f"\n{name}, plan before:\n  " + "\n  ".join(before[name]["plan"]))
        print(f"{name}, plan after:\n  " + "\n  ".join(after[name]["plan"]))
    path = write_result(
        "queue",
        {"conversations": args.conversations, **counts, "load_s": load_s,
         "before": before, "after": after},
    )  # fmt: skip
    print(f"written to {path}")


if __name__ == "__main__":
    main()
