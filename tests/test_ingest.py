"""Ingest: the journal first, duplicates stored once, the rules applied, nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, func, select

from bot.normalize import normalize
from core.clock import FrozenClock, as_utc
from core.events import Channel
from inbox.models import (
    AuditEvent,
    Conversation,
    Identity,
    InboundRecord,
    Message,
    ModerationDecision,
    SlaClock,
)
from inbox.runtime import Runtime
from tests.helpers.payloads import payload


def event(runtime: Runtime, channel: str, name: str):
    return normalize(Channel(channel), payload(channel, name), runtime.profile)


def count(runtime: Runtime, model) -> int:
    with runtime.factory() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def test_same_event_twice_is_stored_once(runtime: Runtime) -> None:
    ev = event(runtime, "vk", "message_new.json")
    first, processed = runtime.inbox.ingest(ev)
    second, again = runtime.inbox.ingest(ev)
    assert not first.duplicate and second.duplicate
    assert second.record_id == first.record_id
    assert processed is not None and again is None
    assert count(runtime, InboundRecord) == 1
    assert count(runtime, Message) == 1
    assert count(runtime, Conversation) == 1


def test_appeal_opens_a_numbered_conversation_due_in_two_hours(runtime: Runtime) -> None:
    ev = event(runtime, "telegram", "private_message.json")
    _, processed = runtime.inbox.ingest(ev)
    assert processed is not None and processed.conversation_id
    with runtime.factory() as session:
        conv = session.get(Conversation, processed.conversation_id)
        assert conv is not None
        assert conv.kind == "appeal" and conv.status == "new"
        assert conv.number == f"2025-{conv.id:06d}"
        assert as_utc(conv.due_at) == ev.published_at + timedelta(hours=2)
        clock = session.exec(select(SlaClock)).one()
        assert as_utc(clock.due_at) == as_utc(conv.due_at)
        assert as_utc(clock.warn_at) == as_utc(clock.due_at) - timedelta(minutes=30)


def test_mention_is_due_in_four_hours(runtime: Runtime) -> None:
    ev = event(runtime, "vk", "monitored_post_link_mention.json")
    _, processed = runtime.inbox.ingest(ev)
    assert processed is not None
    with runtime.factory() as session:
        conv = session.get(Conversation, processed.conversation_id)
        assert conv is not None and conv.kind == "mention" and conv.is_public
        assert as_utc(conv.due_at) == ev.published_at + timedelta(hours=4)


def test_items_needing_no_response_are_journalled_but_open_nothing(runtime: Runtime) -> None:
    for channel, name in [
        ("telegram", "group_chatter.json"),
        ("vk", "wall_post_own.json"),
        ("email", "auto_reply.eml"),
        ("email", "bounce.eml"),
    ]:
        _, processed = runtime.inbox.ingest(event(runtime, channel, name))
        assert processed is not None and processed.conversation_id is None
    assert count(runtime, InboundRecord) == 4
    assert count(runtime, Conversation) == 0


def test_follow_up_in_the_same_thread_joins_the_conversation(runtime: Runtime) -> None:
    first = event(runtime, "email", "cp1251_plain.eml")
    reply = event(runtime, "email", "reply_in_thread_with_attachment.eml")
    _, p1 = runtime.inbox.ingest(first)
    _, p2 = runtime.inbox.ingest(reply)
    assert p1 and p2 and p1.conversation_id == p2.conversation_id
    with runtime.factory() as session:
        messages = session.exec(select(Message).order_by(col(Message.id))).all()
        assert [m.text.splitlines()[0] for m in messages] == [
            "Здравствуйте!",
            "Прикладываю фото контейнеров.",
        ]
        assert messages[1].attachments[0]["name"] == "фото.jpg"
        # one citizen, one identity: the address is matched case-insensitively
        assert session.exec(select(func.count()).select_from(Identity)).one() == 1


def test_agency_reply_seen_on_the_platform_stops_the_clock(runtime: Runtime) -> None:
    citizen = event(runtime, "vk", "message_new.json")
    runtime.inbox.ingest(citizen)
    own = citizen.model_copy(
        update={
            "external_id": "own-reply-1",
            "text": "Здравствуйте! Передали в управляющую компанию.",
            "published_at": citizen.published_at + timedelta(minutes=40),
            "facts": citizen.facts.model_copy(update={"is_own": True}),
        }
    )
    runtime.inbox.ingest(own)
    with runtime.factory() as session:
        conv = session.exec(select(Conversation)).one()
        assert conv.status == "answered"
        assert conv.due_at is None
        assert as_utc(conv.first_response_at) == own.published_at
        assert session.exec(select(SlaClock)).one().status == "met"


def test_public_comment_with_a_phone_number_is_hidden_with_its_reason(runtime: Runtime) -> None:
    ev = event(runtime, "vk", "wall_reply_new.json")
    ev = ev.model_copy(update={"text": "Позвоните мне: +7 (916) 123-45-67, сил больше нет"})
    runtime.inbox.ingest(ev)
    with runtime.factory() as session:
        decision = session.exec(select(ModerationDecision)).one()
        assert decision.rule_id == "personal-data-phone"
        assert decision.action == "hide"
        assert "152-ФЗ" in decision.reason
        logged = session.exec(select(AuditEvent).where(AuditEvent.kind == "moderation")).one()
        assert "123-45-67" not in logged.data["evidence"]  # the log does not repeat the number


def test_private_messages_are_not_moderated(runtime: Runtime) -> None:
    ev = event(runtime, "telegram", "private_message.json")
    ev = ev.model_copy(update={"text": "Мой телефон +7 916 123-45-67, перезвоните"})
    runtime.inbox.ingest(ev)
    assert count(runtime, ModerationDecision) == 0


def test_accepted_event_survives_a_crash_before_processing(runtime: Runtime) -> None:
    """Killed between accept (acknowledged) and process: the journal finishes it later."""
    ev = event(runtime, "phone", "utterance.json")
    accepted = runtime.inbox.accept(ev)  # acknowledged to the platform here; then the crash
    assert count(runtime, Message) == 0
    assert runtime.inbox.process_pending() == 1
    assert count(runtime, Message) == 1
    assert runtime.inbox.process_pending() == 0  # never twice
    with runtime.factory() as session:
        record = session.get(InboundRecord, accepted.record_id)
        assert record is not None and record.processed_at is not None


def test_processing_failure_is_recorded_and_retried(runtime: Runtime, monkeypatch) -> None:
    ev = event(runtime, "vk", "message_new.json")
    accepted = runtime.inbox.accept(ev)
    original = runtime.inbox._apply

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runtime.inbox, "_apply", broken)
    again = ev.model_copy(update={"external_id": "second"})
    accepted_again, processed = runtime.inbox.ingest(again)  # accepted even though it fails
    assert not accepted_again.duplicate and processed is None
    assert runtime.inbox.process_pending() == 0
    with runtime.factory() as session:
        record = session.get(InboundRecord, accepted.record_id)
        assert record is not None and record.processed_at is None
        assert record.error == "RuntimeError: disk on fire"
    monkeypatch.setattr(runtime.inbox, "_apply", original)
    assert runtime.inbox.process_pending() == 1  # the second failed twice: it waits a while
    assert isinstance(runtime.inbox.clock, FrozenClock)
    runtime.inbox.clock.advance(runtime.inbox.retry_policy.delay)
    assert runtime.inbox.process_pending() == 1
    assert count(runtime, Message) == 2


def test_journal_keeps_the_normalized_event_for_reprocessing(runtime: Runtime) -> None:
    ev = event(runtime, "email", "koi8r_qp.eml")
    accepted = runtime.inbox.accept(ev)
    with runtime.factory() as session:
        stored = session.exec(
            sa.select(InboundRecord.event).where(col(InboundRecord.id) == accepted.record_id)
        ).scalar_one()
    assert stored["text"].startswith("Добрый день.")
    assert stored["raw"]["rfc822"]


def test_frozen_clock_stamps_receipt(runtime: Runtime) -> None:
    accepted = runtime.inbox.accept(event(runtime, "vk", "message_new.json"))
    with runtime.factory() as session:
        record = session.get(InboundRecord, accepted.record_id)
        assert record is not None
        assert as_utc(record.received_at) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_service_events_do_not_reopen_an_answered_call(runtime: Runtime) -> None:
    from inbox import workflow

    _, started = runtime.inbox.ingest(event(runtime, "phone", "utterance.json"))
    assert started and started.conversation_id
    with runtime.factory() as session:
        conv = session.get(Conversation, started.conversation_id)
        assert conv
        workflow.reply(session, conv, "Горячую воду дадут завтра.", runtime.clock.now())
        session.commit()
    for name in ("call_ended.json", "recording.json"):
        _, processed = runtime.inbox.ingest(event(runtime, "phone", name))
        assert processed and processed.conversation_id == started.conversation_id
    with runtime.factory() as session:
        conv = session.get(Conversation, started.conversation_id)
        assert conv and conv.status == "answered" and conv.due_at is None
        kept = session.exec(select(Message).where(Message.direction == "in")).all()
        # the utterance and the recording; the call's end adds no empty message
        assert [bool(m.attachments) for m in kept] == [False, True]


def test_recording_after_close_joins_the_closed_call(runtime: Runtime) -> None:
    from inbox import workflow

    _, started = runtime.inbox.ingest(event(runtime, "phone", "utterance.json"))
    assert started and started.conversation_id
    with runtime.factory() as session:
        conv = session.get(Conversation, started.conversation_id)
        assert conv
        workflow.close(session, conv, runtime.clock.now())
        session.commit()
    _, processed = runtime.inbox.ingest(event(runtime, "phone", "recording.json"))
    assert processed and processed.conversation_id == started.conversation_id
    assert count(runtime, Conversation) == 1


def test_auto_reply_in_a_thread_does_not_reopen_or_redirect(runtime: Runtime) -> None:
    from inbox import workflow

    _, first = runtime.inbox.ingest(event(runtime, "email", "cp1251_plain.eml"))
    assert first and first.conversation_id
    with runtime.factory() as session:
        conv = session.get(Conversation, first.conversation_id)
        assert conv
        workflow.reply(session, conv, "Контейнеры вывезут завтра.", runtime.clock.now())
        session.commit()
        target = dict(conv.reply_target)
    auto = event(runtime, "email", "auto_reply.eml").model_copy(
        update={"thread_key": "email:20261123101500.1234@mail.example"}
    )
    _, processed = runtime.inbox.ingest(auto)
    assert processed and processed.conversation_id == first.conversation_id
    with runtime.factory() as session:
        conv = session.get(Conversation, first.conversation_id)
        assert conv and conv.status == "answered" and conv.reply_target == target
