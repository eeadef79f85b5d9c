"""The citizen bot's turn writes what it did in few statements (issue #12): its audit rows in
one INSERT at commit (``audit.collect``), the conversation once, no lookup flushing the turn's
changes; and what the turn stores is the same as when each write was its own statement."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import col, select

from bot.normalize import normalize
from core.clock import FrozenClock, as_utc
from core.events import Channel
from inbox import audit, sla, workflow
from inbox.ingest import Processed
from inbox.models import AuditEvent, Conversation, Direction, Message, SlaClock
from inbox.runtime import Runtime
from tests.helpers.citizen_harness import citizen_bot
from tests.helpers.payloads import payload


@contextmanager
def counted(runtime: Runtime) -> Iterator[tuple[list[str], list[int]]]:
    """The SQL statements sent and the ORM flushes made inside the block."""
    statements: list[str] = []
    flushes: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    def flushed(*_: Any) -> None:
        flushes.append(1)

    sa.event.listen(runtime.engine, "before_cursor_execute", count)
    sa.event.listen(OrmSession, "after_flush", flushed)
    try:
        yield statements, flushes
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", count)
        sa.event.remove(OrmSession, "after_flush", flushed)


def workflow_statements(statements: list[str]) -> list[str]:
    """Without SQLite's ``BEGIN IMMEDIATE`` and the handlers' own lookups (the +1 offer's
    search of shared complaints)."""
    return [s for s in statements if s != "BEGIN IMMEDIATE" and "FROM shared_complaint" not in s]


def telegram(runtime: Runtime, clock: FrozenClock, text: str, message_id: int) -> Any:
    raw = payload("telegram", "private_message.json")
    event = normalize(Channel.telegram, raw, runtime.profile)
    return event.model_copy(
        update={
            "text": text,
            "external_id": f"{event.external_id}-{message_id}",
            "published_at": clock.now(),
        }
    )


def ingest(runtime: Runtime, event: Any) -> Processed:
    _, processed = runtime.inbox.ingest(event)
    assert processed is not None and processed.conversation_id is not None
    return processed


def audit_kinds(runtime: Runtime, conversation_id: int) -> list[str]:
    with runtime.factory() as session:
        rows = session.exec(
            select(AuditEvent)
            .where(AuditEvent.conversation_id == conversation_id)
            .order_by(col(AuditEvent.id))
        ).all()
        return [row.kind for row in rows]


def version(runtime: Runtime, conversation_id: int) -> int:
    with runtime.factory() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        return conversation.version


def test_a_turn_writes_the_conversation_once_and_its_audit_rows_in_one_insert(
    runtime: Runtime, clock: FrozenClock
) -> None:
    bot = citizen_bot(runtime, clock)
    first = telegram(runtime, clock, "мусор не вывозят", 1)
    processed = ingest(runtime, first)
    conversation_id = processed.conversation_id
    assert conversation_id is not None
    before = version(runtime, conversation_id)
    with counted(runtime) as (statements, flushes):
        (first_reply,) = bot.handle(processed, first)
    # lock, the state with "is a clock open?", the clock, the conversation, the reply, the
    # clock met, audit
    statements = workflow_statements(statements)
    assert len(statements) <= 7, "\n".join(s[:90] for s in statements)
    assert sum(s.startswith("INSERT INTO audit_event") for s in statements) == 1
    assert sum(s.startswith("UPDATE conversation") for s in statements) == 1
    assert not any("FROM assignment" in s for s in statements)
    assert not any(s.startswith("UPDATE message") for s in statements)  # buttons in the INSERT
    assert len(flushes) == 1
    # new -> bot -> answered -> bot: each change still counts
    assert version(runtime, conversation_id) == before + 3
    # in the order they were recorded, as when each was its own INSERT
    assert audit_kinds(runtime, conversation_id)[-5:] == [
        "ingested", "to_bot", "sla_met", "reply_queued", "to_bot",
    ]  # fmt: skip

    clock.advance(timedelta(minutes=1))
    second = telegram(runtime, clock, "нет отопления", 2)
    processed = ingest(runtime, second)
    assert processed.conversation_id == conversation_id
    with runtime.factory() as session:  # no clock runs (as for a rule without a deadline)
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        sla.satisfy(session, conversation, clock.now())
        session.commit()
    before = version(runtime, conversation_id)
    with counted(runtime) as (statements, flushes):
        (second_reply,) = bot.handle(processed, second)
    # lock, the state with "is a clock open?", the conversation, the reply, audit
    statements = workflow_statements(statements)
    assert len(statements) <= 5, "\n".join(s[:90] for s in statements)
    assert sum(s.startswith("INSERT INTO audit_event") for s in statements) == 1
    assert not any("FROM sla_clock" in s and "EXISTS" not in s for s in statements)
    assert len(flushes) == 1
    with runtime.factory() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        assert conversation.status == "bot" and conversation.due_at is None
        assert conversation.last_message_at is not None
        assert as_utc(conversation.last_message_at) == clock.now()
        assert conversation.version == before + 2  # bot -> answered -> bot
        replies = session.exec(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .where(Message.direction == Direction.outbound.value)
            .order_by(col(Message.id))
        ).all()
        assert [m.id for m in replies] == [first_reply, second_reply]
        assert all("buttons" in m.meta and m.delivery_status == "queued" for m in replies)
        queued = session.exec(
            select(AuditEvent)
            .where(AuditEvent.conversation_id == conversation_id)
            .where(AuditEvent.kind == "reply_queued")
            .order_by(col(AuditEvent.id))
        ).all()
        assert [row.data["message_id"] for row in queued] == [first_reply, second_reply]
    assert audit_kinds(runtime, conversation_id)[-2:] == ["reply_queued", "to_bot"]


def test_a_hand_off_after_the_reply_starts_a_fresh_clock_in_the_same_turn(
    runtime: Runtime, clock: FrozenClock
) -> None:
    bot = citizen_bot(runtime, clock)
    event = telegram(runtime, clock, "Позовите специалиста", 1)
    processed = ingest(runtime, event)
    conversation_id = processed.conversation_id
    assert conversation_id is not None
    bot.handle(processed, event)
    with runtime.factory() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None and conversation.status == "waiting_operator"
        clocks = session.exec(
            select(SlaClock)
            .where(SlaClock.conversation_id == conversation_id)
            .order_by(col(SlaClock.id))
        ).all()
        # the one processing opened is met by the bot's reply, the hand-off starts another
        assert [c.status for c in clocks] == ["met", "running"]
        assert conversation.due_at is not None
        assert as_utc(conversation.due_at) == as_utc(clocks[1].due_at)
    kinds = audit_kinds(runtime, conversation_id)
    assert kinds[kinds.index("reply_queued") - 1 :] == [
        "sla_met", "reply_queued", "handoff", "bot_state",
    ]  # fmt: skip


def test_collected_audit_rows_are_one_insert_seen_by_reads_and_rolled_back(
    runtime: Runtime, clock: FrozenClock
) -> None:
    now = clock.now()
    with runtime.factory() as session, counted(runtime) as (statements, _):
        audit.collect(session)
        for n in range(3):
            audit.record(session, "test_collected", now, actor="test", n=n)
        assert not statements  # nothing written yet
        seen = session.exec(select(AuditEvent).where(AuditEvent.kind == "test_collected")).all()
        assert sorted(row.data["n"] for row in seen) == [0, 1, 2]  # read your own writes
        audit.record(session, "test_collected", now, actor="test", n=3)
        session.commit()
    inserts = [s for s in statements if s.startswith("INSERT INTO audit_event")]
    assert len(inserts) == 2  # the three before the read, then the fourth at commit

    with runtime.factory() as session:
        audit.collect(session)
        audit.record(session, "test_dropped", now, actor="test")
        session.rollback()
        audit.record(session, "test_kept", now, actor="test")
        with pytest.raises(RuntimeError), session.begin_nested():
            audit.record(session, "test_savepoint_rolled_back", now, actor="test")
            raise RuntimeError
        session.commit()
    with runtime.factory() as session:
        kinds = session.exec(
            select(AuditEvent.kind).where(col(AuditEvent.kind).like("test_%"))
        ).all()
    assert sorted(kinds) == ["test_collected"] * 4 + ["test_kept"]


def test_open_clock_sees_what_the_session_changed_without_flushing(
    runtime: Runtime, clock: FrozenClock
) -> None:
    event = telegram(runtime, clock, "мусор не вывозят", 1)
    conversation_id = ingest(runtime, event).conversation_id
    assert conversation_id is not None
    now = clock.now()
    with runtime.factory() as session:
        conversation = workflow.lock_conversation(session, conversation_id)
        assert conversation is not None
        stored = sla.open_clock(session, conversation_id)
        assert stored is not None and stored.status == "running"
        met = sla.satisfy(session, conversation, now)  # not flushed
        assert met is stored and sla.open_clock(session, conversation_id) is None
        started = sla.start_clock(
            session, conversation, rule_id="r", kind=conversation.kind, started_at=now,
            due_at=now + timedelta(hours=1), warn_before=timedelta(minutes=10),
        )  # fmt: skip
        assert started is not stored and sla.open_clock(session, conversation_id) is started
        session.flush()
        assert sla.open_clock(session, conversation_id) is started
        session.commit()
    with runtime.factory() as session:
        # a session told there is no clock stored still finds the one it starts and flushes
        conversation = workflow.lock_conversation(session, conversation_id)
        assert conversation is not None
        sla.satisfy(session, conversation, now)
        session.flush()
        sla.none_stored(session, conversation_id)
        assert sla.open_clock(session, conversation_id) is None
        started = sla.start_clock(
            session, conversation, rule_id="r", kind=conversation.kind, started_at=now,
            due_at=now + timedelta(hours=1), warn_before=timedelta(minutes=10),
        )  # fmt: skip
        session.flush()
        assert sla.open_clock(session, conversation_id) is started
