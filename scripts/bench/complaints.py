"""Shared complaints with many supporters: merging N appeals into one complaint, then one
status change that queues a message for every supporter (one transaction each).

Run: .venv/bin/python scripts/bench/complaints.py [DATABASE_URL] [N]
(default: a fresh SQLite file, N = 1000; a PostgreSQL URL must name an empty database).
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from common import bench_runtime, database  # type: ignore[import-not-found]

from core.clock import FrozenClock
from inbox import complaints
from inbox.applications import Actor
from inbox.db import upgrade
from inbox.models import Citizen, Conversation
from inbox.runtime import Runtime


def main() -> None:
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    clock = FrozenClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
    with ExitStack() as stack:
        if len(sys.argv) > 1:
            url = sys.argv[1]
            upgrade(url)
        else:
            url = stack.enter_context(database("sqlite"))
        rt = stack.enter_context(bench_runtime(url, clock))
        merged, changed, notified = run(rt, count)
    print(
        f"{url.split(':')[0]}, {count} supporters: merge {merged:.2f} s, "
        f"status change {changed:.2f} s ({notified} messages queued)"
    )


def run(rt: Runtime, count: int) -> tuple[float, float, int]:
    """Seconds to merge ``count`` appeals into one complaint, seconds of the status change that
    answers them all, and how many messages it queued."""
    now = rt.clock.now()
    with rt.factory() as session:
        ids = []
        for i in range(count):
            citizen = Citizen(created_at=now)
            session.add(citizen)
            session.flush()
            assert citizen.id is not None
            conversation = Conversation(
                channel="telegram", thread_key=f"tg:{i}", citizen_id=citizen.id, kind="appeal",
                rule_id="appeal", opened_at=now, reply_target={"chat_id": i},
            )  # fmt: skip
            session.add(conversation)
            session.flush()
            assert conversation.id is not None
            conversation.number = f"2026-{conversation.id:06d}"
            ids.append(conversation.id)
        session.commit()
    started = time.perf_counter()
    with rt.factory() as session:
        complaint = complaints.create(
            session, title="Не горят фонари", place="Ленина 5", topic="lighting",
            conversation_ids=ids, actor=Actor.cli("bench"), now=now, rules=rt.rules,
        )  # fmt: skip
        session.commit()
        assert complaint.id is not None
        complaint_id = complaint.id
    merged = time.perf_counter()
    with rt.factory() as session:
        outcome = complaints.change_status(
            session, complaint_id, complaints.ComplaintChange("in_progress", "Бригада придёт."),
            Actor.cli("bench"), now, ZoneInfo(rt.rules.calendar.timezone),
        )  # fmt: skip
        session.commit()
    changed = time.perf_counter()
    return merged - started, changed - merged, len(outcome.notified)


if __name__ == "__main__":
    main()
