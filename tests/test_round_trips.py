"""Round trips to PostgreSQL on the ingest path, counted from libpq's protocol trace.

On loopback a round trip costs about as much as the client's work for a statement, so the
ingest path sends what it can together (psycopg's pipeline mode, ``inbox.prepared``): a
transaction's ``BEGIN`` with its first statements, the queued writes with the ``COMMIT``,
the id of a new message drawn by the lookup. The counts start after the
pool's checkout (its pre-ping is one more round trip per transaction, as for any caller).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from bot.normalize import normalize
from core.events import InboundEvent
from inbox.apply import appeal_number
from inbox.models import Citizen, Conversation, Identity, InboundRecord, Message
from inbox.runtime import Runtime
from tests.helpers.round_trips import round_trips
from tests.helpers.workload import native_events


@pytest.fixture
def pg(runtime: Runtime) -> Runtime:
    """The test's runtime on PostgreSQL (SQLite has no round trips)."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs in the process: no round trips")
    return runtime


def events(runtime: Runtime, count: int, citizens: int, start: int = 0) -> list[InboundEvent]:
    """Private messages of ``citizens`` citizens (citizen ``n % citizens`` writes the n-th)."""
    return [
        normalize(n.channel, n.body, runtime.profile)
        for n in native_events(count, citizens, start=start)
    ]


def count(runtime: Runtime, table: Any) -> int:
    with runtime.factory() as session:
        return int(session.exec(select(sa.func.count()).select_from(table)).one())


def not_autocommit(runtime: Runtime) -> bool:
    """The pooled connection is handed out as the pool got it (``prepared.pipelined`` switches
    the driver to autocommit to send ``BEGIN`` itself, ``end_transaction`` switches it back)."""
    conn = runtime.engine.raw_connection()
    try:
        return conn.driver_connection.autocommit is False  # type: ignore[union-attr]
    finally:
        conn.close()


def test_a_message_in_an_open_dialogue_is_two_round_trips(pg: Runtime) -> None:
    first, second = events(pg, 4, citizens=2)[::2]  # one citizen's dialogue
    pg.inbox.ingest(first)
    with round_trips(pg.engine) as trips:
        accepted, processed = pg.inbox.ingest(second)
    # BEGIN, the journal row with the thread's lock, the lookup (ids drawn); the message,
    # conversation update, audit, processed mark and COMMIT
    assert trips.count == 2, trips
    assert processed is not None and not accepted.duplicate
    assert count(pg, Message) == 2 and count(pg, Conversation) == 1
    assert not_autocommit(pg)
    with round_trips(pg.engine) as trips:  # the duplicate: rolled back, then its id looked up
        again, nothing = pg.inbox.ingest(second)
    assert again.duplicate and again.record_id == accepted.record_id and nothing is None
    assert count(pg, Message) == 2 and not_autocommit(pg)


def test_a_first_contact_is_four_round_trips_and_its_rows_refer_to_each_other(
    pg: Runtime,
) -> None:
    (event,) = events(pg, 1, citizens=1)
    with round_trips(pg.engine) as trips:
        _, processed = pg.inbox.ingest(event)
    # + the citizen and its identity, one statement; + the conversation (its id is the appeal
    # number: not drawn before it is needed, a rollback would leave a gap in the numbers)
    assert trips.count == 4, trips
    assert processed is not None and processed.conversation_id is not None
    with pg.factory() as session:
        conversation = session.get(Conversation, processed.conversation_id)
        message = session.get(Message, processed.message_id)
        identity = session.exec(select(Identity)).one()
        assert conversation is not None and message is not None
        assert message.conversation_id == conversation.id
        assert conversation.citizen_id == identity.citizen_id
        assert session.get(Citizen, identity.citizen_id) is not None
        assert conversation.number == appeal_number(
            conversation.opened_at, processed.conversation_id
        )
    assert not_autocommit(pg)


def test_accept_is_two_round_trips_and_process_three(pg: Runtime) -> None:
    first, second = events(pg, 4, citizens=2)[::2]
    pg.inbox.ingest(first)
    with round_trips(pg.engine) as trips:
        accepted = pg.inbox.accept(second)
    assert trips.count == 2, trips  # BEGIN with the journal row; COMMIT
    with round_trips(pg.engine) as trips:
        assert pg.inbox.process(accepted.record_id) is not None
    # BEGIN with the row locked; the lookup (it needs the row's event); the writes with COMMIT
    assert trips.count == 3, trips
    assert count(pg, Message) == 2 and not_autocommit(pg)


def test_a_batch_opening_conversations_after_messages_in_open_ones(pg: Runtime) -> None:
    """In a batch the conversations opened by its events are inserted before any of its
    messages, whatever the events' order: a message in an open dialogue first, then first
    contacts (their messages refer to conversations queued after it)."""
    known = events(pg, 6, citizens=3)  # six dialogues: three citizens on two channels each
    for event in known:
        pg.inbox.ingest(event)
    batch = events(pg, 6, citizens=3, start=6) + events(pg, 4, citizens=1000, start=500)
    for event in batch:
        pg.inbox.accept(event)
    assert pg.inbox.process_pending() == 10
    assert count(pg, Conversation) == 6 + 4 and count(pg, Message) == 6 + 10
    with pg.factory() as session:
        unmarked = session.exec(
            select(InboundRecord).where(col(InboundRecord.message_id).is_(None))
        ).all()
        assert unmarked == []
        numbers = session.exec(select(Conversation.id, Conversation.number)).all()
        assert all(number and number.endswith(f"{cid:06d}") for cid, number in numbers)
    assert not_autocommit(pg)


def test_a_failing_event_leaves_nothing_half_written_and_the_connection_as_it_was(
    pg: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction ``pipelined`` began is rolled back like any other: the event is
    journalled (with the error), nothing of its processing is kept, and the pool's
    connection is not left in autocommit; the retry processes it."""
    (event,) = events(pg, 1, citizens=1)

    def broken(*_: Any) -> Any:
        raise ValueError("cannot apply this one")

    monkeypatch.setattr(pg.inbox, "_apply", broken)
    accepted, processed = pg.inbox.ingest(event)
    assert processed is None and not accepted.duplicate
    with pg.factory() as session:
        record = session.get(InboundRecord, accepted.record_id)
        assert record is not None and record.processed_at is None
        assert record.error == "ValueError: cannot apply this one"
    assert count(pg, Citizen) == 0 and count(pg, Message) == 0
    assert not_autocommit(pg)
    monkeypatch.undo()
    pg.clock.advance(timedelta(hours=1))  # past the retry's back-off
    assert pg.inbox.process_pending() == 1
    assert count(pg, Message) == 1 and not_autocommit(pg)
