"""The automatic acknowledgement of a new emailed appeal: its number and its deadline.

It is queued in the outbox like any reply, but it is not the response: the SLA clock keeps
running. It is never sent to automatic mail (auto-replies, bounces, lists) or to the agency's
own addresses, and it carries ``Auto-Submitted: auto-replied``: no mail loops.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from core.clock import as_utc
from core.events import InboundEvent
from inbox import audit
from inbox.models import (
    OPEN_STATUSES,
    AuthorKind,
    Conversation,
    DeliveryStatus,
    Direction,
    InboundRecord,
    Message,
)

ACK_TEXT = (
    "Здравствуйте!\n\n"
    "Мы получили ваше обращение и зарегистрировали его под номером № {number}.\n"
    "{when}\n\n"
    "Чтобы дополнить обращение, ответьте на это письмо. Номер обращения в теме письма "
    "не меняйте: по нему мы найдём ваше обращение.\n\n"
    "Это письмо отправлено автоматически.\n"
    "{agency}"
)


def acknowledgement_text(
    number: str, due_at: datetime | None, now: datetime, tz: str, agency: str
) -> str:
    """The text; the deadline in the agency's local time, unless it has already passed
    (the clock counts from the letter's Date, and a letter can arrive late)."""
    if due_at is not None and as_utc(due_at) > as_utc(now):
        local = as_utc(due_at).astimezone(ZoneInfo(tz))
        when = f"Ответим до {local:%d.%m.%Y %H:%M} по времени {_zone_name(tz)}."
    else:
        when = "Ответим как можно скорее."
    return ACK_TEXT.format(number=number, when=when, agency=agency).strip() + "\n"


def _zone_name(tz: str) -> str:
    return "Москвы" if tz == "Europe/Moscow" else tz


def needs_acknowledgement(event: InboundEvent, own_addresses: frozenset[str] | set[str]) -> bool:
    """Only a citizen's letter: never automatic mail, never our own addresses."""
    author = event.author.external_id.lower()
    return not (event.facts.is_automatic or event.facts.is_own or author in own_addresses)


def acknowledge_new_appeals(
    session: Session,
    now: datetime,
    *,
    since: datetime,
    own_addresses: frozenset[str],
    tz: str,
    agency: str,
) -> list[Message]:
    """Queue the acknowledgement of every email appeal opened by a letter received since
    ``since`` (our clock, not the letter's Date) that has none yet.

    Run after each poll, so an appeal whose processing failed in the poll and was finished
    later by ``process_pending`` is acknowledged too. Once per conversation (the idempotency
    key ``ack-<id>`` is unique); never once an answer went out, never to automatic mail or to
    our own addresses (the opening letter's journalled facts decide).
    """
    received = session.exec(
        select(InboundRecord.id, Message.conversation_id)
        .join(Message, col(Message.id) == col(InboundRecord.message_id))
        .where(InboundRecord.channel == "email")
        .where(col(InboundRecord.received_at) >= since)
    ).all()
    record_of = {conversation_id: record_id for record_id, conversation_id in received}
    if not record_of:
        return []
    done = set(
        session.exec(
            select(Message.conversation_id)
            .where(col(Message.conversation_id).in_(record_of))
            .where(col(Message.idempotency_key).in_([ack_key(c) for c in record_of]))
        )
    )
    waiting = session.exec(
        select(Conversation)
        .where(col(Conversation.id).in_(set(record_of) - done))
        .where(col(Conversation.status).in_([s.value for s in OPEN_STATUSES]))
        .where(col(Conversation.due_at).is_not(None))
        .where(col(Conversation.first_response_at).is_(None))
        .order_by(col(Conversation.id))
    ).all()
    queued = []
    for conversation in waiting:
        event = _opening_event(session, conversation)
        if event is None or not needs_acknowledgement(event, own_addresses):
            continue
        queued.append(queue_acknowledgement(session, conversation, now, tz=tz, agency=agency))
    return queued


def ack_key(conversation_id: int | None) -> str:
    return f"ack-{conversation_id}"


def _opening_event(session: Session, conversation: Conversation) -> InboundEvent | None:
    """The journalled event of the conversation's first letter."""
    first = session.exec(
        select(Message.id)
        .where(Message.conversation_id == conversation.id)
        .where(Message.direction == Direction.inbound.value)
        .order_by(col(Message.id))
    ).first()
    if first is None:
        return None
    record = session.exec(select(InboundRecord).where(InboundRecord.message_id == first)).first()
    return InboundEvent.model_validate(record.event) if record else None


def queue_acknowledgement(
    session: Session, conversation: Conversation, now: datetime, *, tz: str, agency: str
) -> Message:
    assert conversation.number is not None and conversation.id is not None
    message = Message(
        conversation_id=conversation.id,
        direction=Direction.outbound.value,
        author_kind=AuthorKind.bot.value,
        channel=conversation.channel,
        text=acknowledgement_text(conversation.number, conversation.due_at, now, tz, agency),
        published_at=now,
        delivery_status=DeliveryStatus.queued.value,
        next_attempt_at=now,
        idempotency_key=ack_key(conversation.id),
        reply_target=conversation.reply_target,
        meta={"auto_submitted": "auto-replied", "acknowledgement": True},
    )
    session.add(message)
    session.flush()
    audit.record(
        session,
        "acknowledgement_queued",
        now,
        conversation_id=conversation.id,
        message_id=message.id,
        number=conversation.number,
    )
    return message
