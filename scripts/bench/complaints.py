"""Shared complaints with many supporters: merging N appeals into one complaint, then one
status change that queues a message for every supporter (one transaction each).

Run: .venv/bin/python scripts/bench/complaints.py [DATABASE_URL] [N]
(default: a fresh SQLite file, N = 1000; a PostgreSQL URL must name an empty database).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from core.clock import FrozenClock
from core.config import Settings
from inbox import complaints
from inbox.applications import Actor
from inbox.db import upgrade
from inbox.models import Citizen, Conversation
from inbox.runtime import build_runtime


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="otklik-bench-complaints-"))
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{data / 'bench.sqlite3'}"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    upgrade(url)
    clock = FrozenClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
    rt = build_runtime(Settings(database_url=url, data_dir=data), clock=clock)
    now = clock.now()
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
    rt.dispose()
    print(
        f"{url.split(':')[0]}, {count} supporters: merge {merged - started:.2f} s, "
        f"status change {changed - merged:.2f} s ({len(outcome.notified)} messages queued)"
    )


if __name__ == "__main__":
    main()
