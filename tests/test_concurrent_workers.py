"""Several worker processes on one PostgreSQL database never handle an item twice.

Four processes (``multiprocessing``, spawned: separate interpreters and connection pools) run
``Inbox.process_pending``, ``Outbox.deliver_once`` and the SLA scan at the same time over the
same rows, released together by a barrier. Afterwards each journalled event produced exactly
one message, each queued reply reached the platform exactly once, and each SLA warning and
breach was alerted exactly once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, func, select

from bot.normalize import normalize
from core.clock import FrozenClock
from core.config import Settings
from inbox import workflow
from inbox.db import make_engine
from inbox.models import AuditEvent, Conversation, InboundRecord, Message, SlaClock
from inbox.outbox import Outbox
from inbox.runtime import build_runtime
from inbox.scheduler import run_sla_scan
from tests.helpers.workload import native_events

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.parametrize("db_url", ["postgresql"], indirect=True),
]

WORKERS = 4
EVENTS = 240
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LATER = START + timedelta(days=40)  # every clock has warned and breached by then


def _worker(url: str, barrier: Any, rounds: int) -> dict[str, list[int]]:
    """One process: journal, outbox, SLA scan, over and over until there is nothing left."""
    runtime = build_runtime(Settings(database_url=url), clock=FrozenClock(LATER))
    sent: list[int] = []

    async def send(message: Message) -> str:
        assert message.id is not None
        sent.append(message.id)
        return f"platform-{message.id}"

    outbox = Outbox(runtime.factory, runtime.clock, {"vk": send, "telegram": send})
    barrier.wait()
    processed = scanned = 0
    for _ in range(rounds):
        done = runtime.inbox.process_pending(limit=20)
        report = asyncio.run(outbox.deliver_once(limit=10))
        scan = run_sla_scan(runtime)
        processed += done
        scanned += scan is not None
        idle = not (done or report.sent or (scan and (scan.warned or scan.breached)))
        if idle and _nothing_left(runtime.factory):
            break
    runtime.dispose()
    return {"sent": sent, "processed": [processed], "scans": [scanned]}


def _nothing_left(factory: Any) -> bool:
    """All workers may see only rows locked by others in a round: stop when none is left."""
    with factory() as session:
        pending = session.exec(
            select(func.count()).where(col(InboundRecord.processed_at).is_(None))
        ).one()
        queued = session.exec(
            select(func.count()).where(col(Message.delivery_status).in_(["queued", "sending"]))
        ).one()
    return pending == 0 and queued == 0


def _prepare(url: str) -> list[int]:
    """Journal EVENTS events (unprocessed) and queue one reply in each of 40 conversations."""
    runtime = build_runtime(Settings(database_url=url), clock=FrozenClock(START))
    events = [normalize(e.channel, e.body, runtime.profile) for e in native_events(EVENTS, 80)]
    for event in events[:40]:  # these 40 become conversations with a queued reply each
        runtime.inbox.ingest(event.model_copy(update={"published_at": START}))
    queued = []
    with runtime.factory() as session:
        for conversation in session.exec(select(Conversation)).all():
            queued.append(workflow.reply(session, conversation, "Ответ", START))
        session.commit()
        queued_ids = [m.id for m in queued if m.id is not None]
    for event in events[40:]:
        runtime.inbox.accept(event.model_copy(update={"published_at": START}))
    runtime.dispose()
    return queued_ids


def test_workers_in_parallel_handle_every_item_exactly_once(db_url: str) -> None:
    queued = _prepare(db_url)
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(WORKERS)
    with context.Pool(WORKERS) as pool:
        results = pool.starmap(_worker, [(db_url, barrier, 100)] * WORKERS)

    sent = Counter(i for r in results for i in r["sent"])
    assert sorted(sent) == sorted(queued), "every queued reply reached the platform"
    assert max(sent.values()) == 1, f"sent twice: {[i for i, n in sent.items() if n > 1]}"
    assert sum(r["processed"][0] for r in results) == EVENTS - 40

    engine = make_engine(db_url)
    with engine.connect() as conn:
        pending = conn.execute(
            select(func.count()).where(col(InboundRecord.processed_at).is_(None))
        ).scalar()
        per_event = conn.execute(
            select(Message.external_id, func.count())
            .where(Message.direction == "in")
            .group_by(Message.external_id)
        ).all()
        alerts = conn.execute(
            select(AuditEvent.conversation_id, AuditEvent.data).where(AuditEvent.kind == "alert")
        ).all()
        breached_clocks = conn.execute(
            select(SlaClock.conversation_id).where(SlaClock.status == "breached")
        ).all()
    engine.dispose()
    assert pending == 0
    assert len(per_event) == EVENTS and {n for _, n in per_event} == {1}
    by_kind = Counter((cid, data["alert"]) for cid, data in alerts)
    assert max(by_kind.values()) == 1, "an SLA alert was raised twice"
    breached = sorted(cid for cid, kind in by_kind if kind == "sla_breach")
    assert breached and breached == sorted(cid for (cid,) in breached_clocks)


def test_scheduled_sla_scan_runs_in_one_process_at_a_time(db_url: str) -> None:
    """While one process holds the job's advisory lock, the job elsewhere skips its run."""
    from inbox.scheduler import _job_lock_key

    runtime = build_runtime(Settings(database_url=db_url), clock=FrozenClock(LATER))
    holder = make_engine(db_url)
    try:
        with holder.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _job_lock_key("sla-scan")})
            assert run_sla_scan(runtime) is None
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _job_lock_key("sla-scan")})
        assert run_sla_scan(runtime) is not None
    finally:
        holder.dispose()
        runtime.dispose()
