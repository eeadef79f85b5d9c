"""The inline intake mode (``bot.intake.accept_and_process``) the phone robot and email use.

Journal first (committed before the channel's own step: email flags ``\\Seen`` there), then
process in the same thread; a duplicate is not processed twice; a database error of the
journal reaches the caller (its "retry" answer) before anything is acknowledged; a processing
failure leaves the event in the journal, where ``process_pending`` finishes it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.intake import accept_and_process
from bot.normalize import normalize
from core.events import Channel, InboundEvent
from inbox.ingest import Accepted
from inbox.models import Conversation, InboundRecord
from inbox.runtime import Runtime
from tests.helpers.payloads import payload


def appeal(runtime: Runtime) -> InboundEvent:
    return normalize(Channel.telegram, payload("telegram", "private_message.json"), runtime.profile)


def journal(runtime: Runtime) -> list[InboundRecord]:
    with runtime.factory() as session:
        return list(session.exec(select(InboundRecord)).all())


def conversations(runtime: Runtime) -> int:
    with runtime.factory() as session:
        return len(session.exec(select(Conversation)).all())


def test_the_step_after_accept_sees_the_committed_row_then_the_event_is_processed(
    runtime: Runtime,
) -> None:
    seen: list[tuple[bool, int]] = []

    def flag(accepted: Accepted) -> None:
        # Another session must already see the row: it is committed, not just flushed.
        rows = journal(runtime)
        seen.append((accepted.duplicate, len(rows)))
        assert rows[0].processed_at is None  # processing comes after this step

    accepted = accept_and_process(runtime, appeal(runtime), label="test", after_accept=flag)

    assert seen == [(False, 1)]
    [row] = journal(runtime)
    assert row.id == accepted.record_id and row.processed_at is not None
    assert conversations(runtime) == 1


def test_a_duplicate_is_flagged_again_but_not_processed_twice(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = appeal(runtime)
    first = accept_and_process(runtime, event, label="test")
    processed: list[int] = []
    original = runtime.inbox.process
    monkeypatch.setattr(
        runtime.inbox, "process", lambda rid, **kw: processed.append(rid) or original(rid, **kw)
    )
    flagged: list[bool] = []

    again = accept_and_process(
        runtime, event, label="test", after_accept=lambda a: flagged.append(a.duplicate)
    )

    assert again == Accepted(first.record_id, duplicate=True)
    assert flagged == [True]  # email still flags the copy it fetched again
    assert processed == []
    assert len(journal(runtime)) == 1 and conversations(runtime) == 1
    # The phone robot asks for the duplicate's processing (a no-op once it is done).
    accept_and_process(runtime, event, label="test", wait=True, process_duplicate=True)
    assert processed == [first.record_id]
    assert conversations(runtime) == 1


def test_a_journal_error_reaches_the_caller_before_the_step_after_accept(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(event: InboundEvent) -> Accepted:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database is gone"))

    monkeypatch.setattr(runtime.inbox, "accept", broken)
    flagged: list[Accepted] = []

    with pytest.raises(sa.exc.OperationalError):
        accept_and_process(runtime, appeal(runtime), label="test", after_accept=flagged.append)

    assert flagged == []  # nothing acknowledged: the platform retries
    assert journal(runtime) == []


def test_a_processing_failure_keeps_the_event_for_process_pending(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(record_id: int, *, wait: bool = False) -> None:
        raise RuntimeError("rules could not be applied")

    monkeypatch.setattr(runtime.inbox, "process", failing)
    flagged: list[Accepted] = []

    accepted = accept_and_process(
        runtime, appeal(runtime), label="test", after_accept=flagged.append
    )

    assert flagged == [accepted]  # the caller still answers: the event is stored
    [row] = journal(runtime)
    assert row.processed_at is None and conversations(runtime) == 0
    assert "left for process_pending" in caplog.text
    monkeypatch.undo()

    assert runtime.inbox.process_pending() == 1
    [row] = journal(runtime)
    assert row.processed_at is not None and conversations(runtime) == 1
