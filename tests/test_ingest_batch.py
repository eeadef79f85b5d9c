"""Processing in few statements and in batches: what issue #12's cost half guarantees.

``process_pending`` processes up to ``inbox.ingest.BATCH`` events per transaction, at most one
per thread per batch, so per thread it is still process, hook, process, hook in journal
order; a batch with a failing event is redone one by one. ``Inbox.ingest`` is one
transaction and an event costs a bounded number of SQL statements and no ORM flush.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import col, select

from bot.normalize import normalize
from core.events import (
    Attachment,
    Author,
    Channel,
    Facts,
    InboundEvent,
    PayloadError,
    Place,
    journalled_event,
)
from inbox.ingest import Finished
from inbox.models import Citizen, Conversation, InboundRecord, Message
from inbox.runtime import Runtime
from tests.helpers.payloads import PAYLOADS
from tests.helpers.sql import recorded_statements
from tests.helpers.workload import native_events


def events(runtime: Runtime, count: int, threads: int, start: int = 0) -> list[InboundEvent]:
    return [
        normalize(n.channel, n.body, runtime.profile)
        for n in native_events(count, threads, start=start)
    ]


def journal(runtime: Runtime) -> dict[int, InboundRecord]:
    with runtime.factory() as session:
        return {r.id: r for r in session.exec(select(InboundRecord)) if r.id is not None}


@pytest.mark.parametrize("hook_threads", [0, 4], ids=["hooks-in-turn", "hooks-side-by-side"])
def test_a_batch_runs_hooks_in_journal_order_per_thread_after_each_event(
    runtime: Runtime, hook_threads: int
) -> None:
    """Also with the hooks of a batch side by side on a pool (``otklik worker``)."""
    accepted = [runtime.inbox.accept(e) for e in events(runtime, 24, threads=4)]
    by_id = {a.record_id: e for a, e in zip(accepted, events(runtime, 24, 4), strict=True)}
    seen: list[tuple[str, int, int]] = []  # (thread, record id, messages in the thread then)
    lock = threading.Lock()
    running = [0, 0]  # hooks running now, most at once

    def hook(finished: Finished) -> None:
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.02)  # long enough for the others of its batch to start meanwhile
        with runtime.factory() as session:
            messages = session.exec(
                select(sa.func.count())
                .select_from(Message)
                .where(Message.conversation_id == finished.processed.conversation_id)
            ).one()
        with lock:
            seen.append((finished.event.thread_key, finished.processed.record_id, int(messages)))
            running[0] -= 1

    for channel in ("vk", "telegram"):
        runtime.inbox.after_processing(channel, hook)
    pool = ThreadPoolExecutor(hook_threads) if hook_threads else None
    runtime.inbox.run_hooks_on(pool)
    try:
        assert runtime.inbox.process_pending() == 24
    finally:
        if pool is not None:
            pool.shutdown()
    assert running[1] == (4 if hook_threads else 1)  # a batch holds one event of each thread
    assert sorted(r for _, r, _ in seen) == sorted(by_id)  # every hook once
    for thread in {t for t, _, _ in seen}:
        mine = [(r, m) for t, r, m in seen if t == thread]
        assert [r for r, _ in mine] == sorted(r for r, _ in mine)  # journal order
        # the hook of the n-th event sees n messages: the next event was not processed yet
        assert [m for _, m in mine] == list(range(1, len(mine) + 1))
    assert all(r.processed_at is not None for r in journal(runtime).values())


def test_a_failing_event_does_not_lose_or_block_the_rest_of_its_batch(
    runtime: Runtime, monkeypatch: Any
) -> None:
    batch = events(runtime, 10, threads=10)
    poison = batch[3].external_id
    accepted = [runtime.inbox.accept(e).record_id for e in batch]
    real = runtime.inbox._apply

    def apply(conn: Any, record_id: int, event: InboundEvent, *rest: Any) -> Any:
        if event.external_id == poison:
            raise ValueError("cannot apply this one")
        return real(conn, record_id, event, *rest)

    monkeypatch.setattr(runtime.inbox, "_apply", apply)
    assert runtime.inbox.process_pending() == 9
    rows = journal(runtime)
    bad = rows[accepted[3]]
    assert bad.processed_at is None and bad.attempts == 1
    assert bad.error == "ValueError: cannot apply this one"
    assert all(rows[r].processed_at is not None for r in accepted if r != accepted[3])
    with runtime.factory() as session:
        assert session.exec(select(sa.func.count()).select_from(Message)).one() == 9


def test_one_event_costs_few_statements_and_no_orm_flush(runtime: Runtime) -> None:
    first, _, second = events(runtime, 3, threads=1)  # one citizen's dialogue on one channel
    assert (first.channel, first.thread_key) == (second.channel, second.thread_key)
    runtime.inbox.ingest(first)  # opens the conversation
    flushes: list[int] = []

    def flushed(*_: Any) -> None:
        flushes.append(1)

    sa.event.listen(OrmSession, "after_flush", flushed)
    try:
        with recorded_statements(runtime.engine) as statements:
            accepted, processed = runtime.inbox.ingest(second)
    finally:
        sa.event.remove(OrmSession, "after_flush", flushed)
    assert processed is not None and processed.message_id is not None
    assert not accepted.duplicate
    # journal insert (on PostgreSQL with the thread's lock in its RETURNING), author and open
    # conversation (with its open clock) in one query, message, conversation update, audit,
    # processed mark (on PostgreSQL the last four as one statement, sent with the commit), +
    # BEGIN IMMEDIATE on SQLite
    postgres = runtime.engine.dialect.name == "postgresql"
    assert len(statements) == (3 if postgres else 7), statements
    assert not any(s.startswith("SELECT pg_advisory") for s in statements)
    assert not any("FROM sla_clock" in s and "EXISTS" not in s for s in statements)
    assert flushes == []
    with runtime.factory() as session:
        record = session.exec(
            select(InboundRecord).where(col(InboundRecord.id) == accepted.record_id)
        ).one()
        assert record.processed_at is not None and record.message_id == processed.message_id


def test_a_batch_costs_statements_per_batch_not_per_event(runtime: Runtime) -> None:
    """``process_pending``: the batch's messages, conversation updates, audit rows and
    processed marks are one statement each for the whole batch; on PostgreSQL its authors
    and open conversations are one query too (with the messages' ids), and its threads'
    locks come with its journal rows. SQLite (no round trips) looks up each event."""
    opening = events(runtime, 10, threads=10)
    for event in opening:  # ten dialogues, each with its conversation and clock
        runtime.inbox.ingest(event)
    for event in events(runtime, 10, threads=10, start=10):  # one more message in each
        runtime.inbox.accept(event)
    with recorded_statements(runtime.engine) as statements:
        assert runtime.inbox.process_pending() == 10
    postgres = runtime.engine.dialect.name == "postgresql"
    writes = [s for s in statements if s.startswith(("INSERT", "UPDATE"))]
    lookups = [s for s in statements if "identity" in s and "conversation" in s]
    if postgres:
        # messages (ids drawn by the lookup), conversations, audit rows, processed marks
        assert len(writes) == 4 and len(lookups) == 1, statements
        # + the scan for pending events, the batch's rows with their threads' locks, the
        # threads' turns taken and released: nine for the batch, whatever its size
        assert len(statements) == 9, statements
    else:
        # per event: the lookup and the message (``RETURNING`` its id); per batch: the
        # conversations, audit rows, processed marks; + the scan and the batch's rows, each
        # after a BEGIN IMMEDIATE
        assert len(writes) == 10 + 3 and len(lookups) == 10, statements
        assert len(statements) == 2 * 10 + 3 + 4, statements
    with runtime.factory() as session:
        assert session.exec(select(sa.func.count()).select_from(Message)).one() == 20
        marked = session.exec(
            select(sa.func.count())
            .select_from(InboundRecord)
            .where(col(InboundRecord.message_id).is_not(None))
        ).one()
        assert marked == 20  # every mark names its event's message


def test_one_new_author_in_two_threads_of_a_batch_is_one_citizen(runtime: Runtime) -> None:
    """A batch's authors are looked up before any of its events is applied: an author met
    again in the batch is looked up anew, so the citizen the first event created is found
    (not a second one created, nor a conflict on the identity)."""
    first, _, other = events(runtime, 3, threads=4, start=1)
    second = other.model_copy(update={"author": first.author})
    assert first.channel == second.channel and first.thread_key != second.thread_key
    for event in (first, second):
        runtime.inbox.accept(event)
    with recorded_statements(runtime.engine) as statements:
        assert runtime.inbox.process_pending() == 2
    assert not any(s.startswith("DELETE") for s in statements)  # no citizen created in vain
    with runtime.factory() as session:
        assert session.exec(select(sa.func.count()).select_from(Citizen)).one() == 1
        threads = session.exec(select(Conversation.citizen_id, Conversation.thread_key)).all()
        assert len({t for _, t in threads}) == 2 and len({c for c, _ in threads}) == 1


def recorded_events(runtime: Runtime) -> list[InboundEvent]:
    """Every recorded payload that normalizes to an event (attachments, calls, letters...)."""
    found = []
    for folder in sorted(PAYLOADS.iterdir()):
        for path in sorted(folder.iterdir()):
            try:
                found.append(normalize(Channel(folder.name), path.read_bytes(), runtime.profile))
            except PayloadError:
                continue  # not an event (a confirmation request, a search page)
    return found


def test_a_journalled_event_is_rebuilt_as_validation_would(runtime: Runtime) -> None:
    """The worker's events come from the journal without a second validation
    (``journalled_event``): the same event, the same models, as ``model_validate`` gives."""
    recorded = recorded_events(runtime)
    assert {e.channel for e in recorded} == set(Channel) - {Channel.webchat}  # no payloads
    assert any(e.attachments for e in recorded) and any(e.facts.mentions for e in recorded)
    for original in recorded + events(runtime, 20, threads=5):
        data = original.model_dump(mode="json")
        rebuilt, validated = journalled_event(data), InboundEvent.model_validate(data)
        assert rebuilt == validated == original
        assert rebuilt.model_dump(mode="json") == data
        assert type(rebuilt.author) is Author and type(rebuilt.facts) is Facts
        assert all(type(a) is Attachment for a in rebuilt.attachments)
        assert type(rebuilt.channel) is Channel and type(rebuilt.facts.place) is Place
        assert rebuilt.published_at.tzinfo is not None
        assert rebuilt.published_at.utcoffset() == validated.published_at.utcoffset()


def test_a_journal_row_not_shaped_like_a_dump_is_validated(runtime: Runtime) -> None:
    """An old or edited row is validated as before: completed, or a clear error."""
    data = events(runtime, 1, threads=1)[0].model_dump(mode="json")
    older = {k: v for k, v in data.items() if k != "source_url"}  # a field added since
    assert journalled_event(older) == InboundEvent.model_validate(older)
    with pytest.raises(ValidationError, match="published_at"):
        journalled_event({**data, "published_at": "yesterday"})
    with pytest.raises(ValidationError, match="channel"):
        journalled_event({**data, "channel": "pigeon"})
    with pytest.raises(ValidationError, match="place"):
        journalled_event({**data, "facts": {**data["facts"], "place": "moon"}})
    # journalled before strings were cleaned: a lone surrogate or NUL anywhere is cleaned
    dirty = {**data, "text": "старое \ud83d\x00", "raw": {"note\x00": ["\udc00"]}}
    rebuilt = journalled_event(dirty)
    assert rebuilt.text == "старое \ufffd\ufffd" and rebuilt.raw == {"note\ufffd": ["\ufffd"]}
