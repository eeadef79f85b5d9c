"""Deadlines: warnings and breaches found by the scan, with a controllable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from bot.normalize import normalize
from core.clock import FrozenClock, as_utc
from core.config import Settings
from core.events import Channel
from inbox import sla, workflow
from inbox.models import AuditEvent, Conversation, SlaClock
from inbox.runtime import Runtime, build_runtime
from inbox.scheduler import run_sla_scan
from tests.helpers.payloads import payload


def ingest_at(runtime: Runtime, clock: FrozenClock, channel: str, name: str) -> int:
    ev = normalize(Channel(channel), payload(channel, name), runtime.profile)
    ev = ev.model_copy(update={"published_at": clock.now()})
    _, processed = runtime.inbox.ingest(ev)
    assert processed is not None and processed.conversation_id is not None
    return processed.conversation_id


def alerts(runtime: Runtime) -> list[tuple[int | None, str]]:
    with runtime.factory() as session:
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "alert").order_by(col(AuditEvent.id))
        ).all()
        return [(r.conversation_id, r.data["alert"]) for r in rows]


def test_appeal_unanswered_for_two_hours_is_breached(runtime: Runtime, clock: FrozenClock) -> None:
    conv_id = ingest_at(runtime, clock, "vk", "message_new.json")
    clock.advance(timedelta(hours=1, minutes=29))
    assert run_sla_scan(runtime).breached == []  # type: ignore[union-attr]
    assert alerts(runtime) == []
    clock.advance(timedelta(minutes=1))  # 30 minutes before the deadline
    result = run_sla_scan(runtime)
    assert result is not None and result.warned == [conv_id] and result.breached == []
    clock.advance(timedelta(minutes=30))
    result = run_sla_scan(runtime)
    assert result is not None and result.breached == [conv_id]
    assert alerts(runtime) == [(conv_id, "sla_warning"), (conv_id, "sla_breach")]
    with runtime.factory() as session:
        sla_clock = session.exec(select(SlaClock)).one()
        assert sla_clock.status == "breached"
        assert as_utc(sla_clock.breached_at) == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def test_scan_alerts_once_per_breach(runtime: Runtime, clock: FrozenClock) -> None:
    ingest_at(runtime, clock, "telegram", "private_message.json")
    clock.advance(timedelta(hours=3))
    run_sla_scan(runtime)
    run_sla_scan(runtime)
    assert [a for _, a in alerts(runtime)] == ["sla_warning", "sla_breach"]


def test_mention_gets_four_hours(runtime: Runtime, clock: FrozenClock) -> None:
    ingest_at(runtime, clock, "telegram", "group_mention_entity.json")
    clock.advance(timedelta(hours=3, minutes=59))
    result = run_sla_scan(runtime)
    assert result is not None and result.breached == []
    clock.advance(timedelta(minutes=1))
    result = run_sla_scan(runtime)
    assert result is not None and len(result.breached) == 1


def test_answer_in_time_meets_the_deadline(runtime: Runtime, clock: FrozenClock) -> None:
    conv_id = ingest_at(runtime, clock, "telegram", "discussion_comment.json")
    clock.advance(timedelta(minutes=50))
    with runtime.factory() as session:
        conv = session.get(Conversation, conv_id)
        assert conv is not None
        workflow.reply(session, conv, "Горячую воду дадут 27 ноября.", clock.now())
        session.commit()
    clock.advance(timedelta(hours=5))
    result = run_sla_scan(runtime)
    assert result is not None and result.breached == [] and result.warned == []
    with runtime.factory() as session:
        assert session.exec(select(SlaClock)).one().status == "met"


def test_late_answer_is_recorded_as_breached_then_met(runtime: Runtime, clock: FrozenClock) -> None:
    conv_id = ingest_at(runtime, clock, "vk", "wall_reply_new.json")
    clock.advance(timedelta(hours=2, minutes=5))
    run_sla_scan(runtime)
    with runtime.factory() as session:
        conv = session.get(Conversation, conv_id)
        assert conv is not None
        workflow.reply(session, conv, "Извините за задержку.", clock.now())
        session.commit()
        assert session.exec(select(SlaClock)).one().status == "breached_met"


def test_breach_detection_survives_a_restart(db_url: str, clock: FrozenClock, tmp_path) -> None:
    """The truth is in the database: a new process finds what the old one left."""
    settings = Settings(database_url=db_url, data_dir=tmp_path)
    first = build_runtime(settings, clock=clock)
    conv_id = ingest_at(first, clock, "phone", "utterance.json")
    first.dispose()
    clock.advance(timedelta(hours=6))
    second = build_runtime(settings, clock=clock)
    result = run_sla_scan(second)
    assert result is not None and result.breached == [conv_id]
    second.dispose()


def test_working_hours_deadline_skips_nights_and_holidays(runtime: Runtime) -> None:
    cal = runtime.rules.calendar
    working = runtime.rules.deadline_of("appeal")
    assert working is not None
    working = working.model_copy(update={"calendar": "working"})
    # a rule with the working calendar: Friday 17:00 Moscow + 2 h = Monday 10:00 Moscow
    friday_evening = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    assert runtime.rules.due_at(friday_evening, working) == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    round_the_clock = working.model_copy(update={"calendar": "calendar"})
    assert runtime.rules.due_at(friday_evening, round_the_clock) == friday_evening + timedelta(
        hours=2
    )
    # within a working day
    assert cal.add_working_hours(datetime(2026, 11, 23, 7, 0, tzinfo=UTC), 2) == datetime(
        2026, 11, 23, 9, 0, tzinfo=UTC
    )
    # Friday 17:00 Moscow + 2 working hours = Monday 10:00 Moscow
    assert cal.add_working_hours(datetime(2026, 11, 27, 14, 0, tzinfo=UTC), 2) == datetime(
        2026, 11, 30, 7, 0, tzinfo=UTC
    )
    # 4 November (Unity Day) is a holiday: Tuesday 17:00 + 2h → Thursday 10:00
    assert cal.add_working_hours(datetime(2026, 11, 3, 14, 0, tzinfo=UTC), 2) == datetime(
        2026, 11, 5, 7, 0, tzinfo=UTC
    )


def test_a_locked_conversation_does_not_hold_up_the_scan_s_alerts(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """The bot's turn and an operator's action lock the conversation, then change its SLA
    clock; the scan locks clocks, then inserts alerts that point at the conversation. With the
    conversation locked ``FOR UPDATE`` the alert's foreign-key check waited for the turn while
    the turn waited for the clock: a deadlock, and PostgreSQL aborted the bot's answer. The
    conversation's lock must let the alert in at once."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: one writer at a time")
    conv_id = ingest_at(runtime, clock, "vk", "message_new.json")
    clock.advance(timedelta(hours=3))
    with runtime.factory() as turn:
        assert workflow.lock_conversation(turn, conv_id) is not None
        with runtime.factory() as scanner:
            scanner.execute(sa.text("SET LOCAL lock_timeout = '3s'"))
            result = sla.scan(scanner, clock.now())  # waited, then failed, before
            scanner.commit()
        assert result.breached == [conv_id]
        sla_clock = turn.exec(select(SlaClock).where(SlaClock.conversation_id == conv_id)).one()
        sla_clock.met_at = clock.now()  # what the turn then does, now that the scan is done
        turn.add(sla_clock)
        turn.commit()
