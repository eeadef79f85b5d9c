"""Operators and the bot working a conversation: the state machine and its audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.normalize import normalize
from core.clock import FrozenClock, as_utc
from core.events import Channel
from inbox import workflow
from inbox.history import citizen_history, merge_citizens
from inbox.models import Assignment, AuditEvent, Conversation, Message, Operator, SlaClock
from inbox.runtime import Runtime
from tests.helpers.payloads import payload


def open_conversation(runtime: Runtime, clock: FrozenClock, channel: str, name: str) -> int:
    ev = normalize(Channel(channel), payload(channel, name), runtime.profile)
    ev = ev.model_copy(update={"published_at": clock.now()})
    _, processed = runtime.inbox.ingest(ev)
    assert processed is not None and processed.conversation_id is not None
    return processed.conversation_id


def operators(runtime: Runtime) -> tuple[int, int]:
    with runtime.factory() as session:
        anna = Operator(login="anna", display_name="Анна Петрова")
        boris = Operator(login="boris", display_name="Борис Ким", role="supervisor")
        session.add_all([anna, boris])
        session.commit()
        assert anna.id and boris.id
        return anna.id, boris.id


def test_bot_hands_off_and_operator_answers(runtime: Runtime, clock: FrozenClock) -> None:
    conv_id = open_conversation(runtime, clock, "telegram", "private_message.json")
    anna_id, _ = operators(runtime)
    with runtime.factory() as session:
        conv = session.get(Conversation, conv_id)
        anna = session.get(Operator, anna_id)
        assert conv and anna
        workflow.to_bot(session, conv, clock.now())
        workflow.reply(session, conv, "Подскажите адрес дома?", clock.now())  # the bot answers
        assert conv.status == "answered"
        session.commit()
    clock.advance(timedelta(minutes=10))
    with runtime.factory() as session:
        conv = session.get(Conversation, conv_id)
        assert conv
        workflow.handoff(session, conv, clock.now(), runtime.rules, reason="Позвать оператора")
        session.commit()
        assert conv.status == "waiting_operator"
        # a fresh two-hour clock from the hand-off
        assert as_utc(conv.due_at) == clock.now() + timedelta(hours=2)
    with runtime.factory() as session:
        conv = session.get(Conversation, conv_id)
        anna = session.get(Operator, anna_id)
        assert conv and anna
        workflow.assign(session, conv, anna, clock.now())
        message = workflow.reply(
            session, conv, "Вывоз мусора назначен на завтра.", clock.now(), operator=anna
        )
        session.commit()
        assert message.delivery_status == "queued" and message.idempotency_key
        assert message.reply_target == {"chat_id": 391234567, "reply_to_message_id": 52}
        statuses = [c.status for c in session.exec(select(SlaClock).order_by(col(SlaClock.id)))]
        assert statuses == ["met", "met"]
    with runtime.factory() as session:
        conv = session.get(Conversation, conv_id)
        assert conv
        workflow.close(session, conv, clock.now(), reason="Решено")
        session.commit()
        kinds = [e.kind for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))]
    assert kinds == [
        "opened", "ingested", "to_bot", "sla_met", "reply_queued", "handoff", "assigned",
        "sla_met", "reply_queued", "closed",
    ]  # fmt: skip


def test_reassign_keeps_the_assignment_history(runtime: Runtime, clock: FrozenClock) -> None:
    conv_id = open_conversation(runtime, clock, "vk", "wall_reply_new.json")
    anna_id, boris_id = operators(runtime)
    with runtime.factory() as session:
        conv = session.get(Conversation, conv_id)
        anna, boris = session.get(Operator, anna_id), session.get(Operator, boris_id)
        assert conv and anna and boris
        workflow.assign(session, conv, anna, clock.now())
        clock.advance(timedelta(minutes=5))
        workflow.assign(session, conv, anna, clock.now(), by=boris, reason="отпуск")
        workflow.assign(session, conv, boris, clock.now(), by=boris, reason="беру себе")
        session.commit()
        rows = session.exec(select(Assignment).order_by(col(Assignment.id))).all()
        assert [(r.operator_id, r.ended_at is None) for r in rows] == [
            (anna_id, False), (anna_id, False), (boris_id, True)
        ]  # fmt: skip
        assert conv.assignee_id == boris_id and conv.status == "waiting_operator"


def test_closed_conversation_takes_no_reply(runtime: Runtime, clock: FrozenClock) -> None:
    conv_id = open_conversation(runtime, clock, "vk", "message_new.json")
    with runtime.factory() as session:
        conv = session.get(Conversation, conv_id)
        assert conv
        workflow.close(session, conv, clock.now(), reason="спам")
        with pytest.raises(workflow.WorkflowError, match="закрыто"):
            workflow.reply(session, conv, "текст", clock.now())
        with pytest.raises(workflow.WorkflowError):
            workflow.handoff(session, conv, clock.now(), runtime.rules, reason="x")
        session.commit()
        assert session.exec(select(SlaClock)).one().status == "cancelled"


def test_new_message_after_close_opens_a_new_conversation(
    runtime: Runtime, clock: FrozenClock
) -> None:
    first = open_conversation(runtime, clock, "vk", "message_new.json")
    with runtime.factory() as session:
        conv = session.get(Conversation, first)
        assert conv
        workflow.close(session, conv, clock.now())
        session.commit()
    ev = normalize(Channel.vk, payload("vk", "message_new.json"), runtime.profile)
    ev = ev.model_copy(update={"external_id": "another-event", "published_at": clock.now()})
    _, processed = runtime.inbox.ingest(ev)
    assert processed is not None and processed.conversation_id not in (None, first)


def test_citizen_reply_after_answer_puts_it_back_in_the_queue(
    runtime: Runtime, clock: FrozenClock
) -> None:
    conv_id = open_conversation(runtime, clock, "vk", "message_new.json")
    with runtime.factory() as session:
        conv = session.get(Conversation, conv_id)
        assert conv
        workflow.reply(session, conv, "Обратитесь в управляющую компанию.", clock.now())
        session.commit()
    clock.advance(timedelta(hours=1))
    ev = normalize(Channel.vk, payload("vk", "message_new.json"), runtime.profile)
    ev = ev.model_copy(update={"external_id": "follow-up", "published_at": clock.now()})
    runtime.inbox.ingest(ev)
    with runtime.factory() as session:
        conv = session.get(Conversation, conv_id)
        assert conv and conv.status == "waiting_operator"
        assert as_utc(conv.due_at) == clock.now() + timedelta(hours=2)


def test_internal_note_is_not_a_response(runtime: Runtime, clock: FrozenClock) -> None:
    conv_id = open_conversation(runtime, clock, "vk", "message_new.json")
    anna_id, _ = operators(runtime)
    with runtime.factory() as session:
        conv, anna = session.get(Conversation, conv_id), session.get(Operator, anna_id)
        assert conv and anna
        workflow.note(session, conv, anna, "Уточнить у УК", clock.now())
        session.commit()
        assert conv.first_response_at is None and conv.due_at is not None
        assert session.exec(select(Message).where(Message.direction == "note")).one()


def test_history_follows_the_citizen_across_channels(runtime: Runtime, clock: FrozenClock) -> None:
    tg = open_conversation(runtime, clock, "telegram", "private_message.json")
    clock.advance(timedelta(days=1))
    mail = open_conversation(runtime, clock, "email", "cp1251_plain.eml")
    with runtime.factory() as session:
        tg_conv, mail_conv = session.get(Conversation, tg), session.get(Conversation, mail)
        assert tg_conv and mail_conv and tg_conv.citizen_id != mail_conv.citizen_id
        merge_citizens(session, tg_conv.citizen_id, mail_conv.citizen_id, clock.now(), "anna")
        session.commit()
        history = citizen_history(session, tg_conv.citizen_id)
        assert [(c.channel, len(msgs)) for c, msgs in history] == [("telegram", 1), ("email", 1)]
    # the next letter from that address lands on the merged citizen
    clock.advance(timedelta(hours=1))
    ev = normalize(Channel.email, payload("email", "koi8r_qp.eml"), runtime.profile)
    ev = ev.model_copy(
        update={"author": ev.author.model_copy(update={"external_id": "ivanov@mail.example"})}
    )
    _, processed = runtime.inbox.ingest(ev)
    with runtime.factory() as session:
        assert processed and processed.conversation_id
        conv = session.get(Conversation, processed.conversation_id)
        assert conv and conv.citizen_id == tg_conv.citizen_id
