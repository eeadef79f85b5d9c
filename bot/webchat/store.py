"""The web chat's side of the inbox: a browser session is the citizen and the thread.

A session is a random id the server issued, kept signed in a cookie (``bot.webchat.session``);
it is the citizen's identity on the ``webchat`` channel and the thread of the conversation
(``web:<id>``). There is no platform to send to:
the page polls for new messages, and an outbound message counts as delivered when the page
has fetched it (``sent`` with ``external_id = "webchat"``). So the outbox worker never takes
webchat messages, and "sent" means the citizen's browser has the reply.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, select

from bot.citizen.texts import LABELS, RATE_PREFIX
from core.clock import as_utc
from core.events import Author, Channel, Facts, InboundEvent, Place
from inbox import audit, consent
from inbox.ingest import find_open_conversation
from inbox.models import Conversation, DeliveryStatus, Direction, InboundRecord, Message

WEBCHAT = Channel.webchat.value


def thread_key(session_id: str) -> str:
    return f"web:{session_id}"


def inbound_event(
    session_id: str,
    now: datetime,
    *,
    text: str = "",
    button: str | None = None,
    label: str | None = None,
    client_id: str | None = None,
) -> InboundEvent:
    """What the page sent, as a normalized event. ``client_id`` (from the page) makes a resent
    POST a duplicate; a rating press is a service event (it opens no conversation)."""
    extra: dict[str, Any] = {}
    place = Place.webchat
    if button is not None:
        extra["button"] = button
        text = label or LABELS.get(button, button)
        if button.startswith(RATE_PREFIX):
            place = Place.service
    return InboundEvent(
        channel=Channel.webchat,
        external_id=f"{session_id}:{client_id or uuid.uuid4().hex}",
        thread_key=thread_key(session_id),
        author=Author(external_id=session_id, display_name="Посетитель сайта"),
        text=text,
        published_at=now,
        facts=Facts(place=place, extra=extra),
        reply_target={"session": session_id},
    )


def has_open_dialogue(factory: sessionmaker[Session], session_id: str) -> bool:
    """The session has a conversation open, or a message still waiting in the journal (with
    ``OTKLIK_PROCESSING=worker`` the conversation is opened a moment after the POST): its
    next message opens no new conversation."""
    with factory() as session:
        if find_open_conversation(session, WEBCHAT, thread_key(session_id)) is not None:
            return True
        # External ids are ``<session>:<client id>``; few rows are unprocessed (indexed).
        prefix = session_id.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
        waiting = session.exec(
            select(InboundRecord.id)
            .where(col(InboundRecord.processed_at).is_(None))
            .where(InboundRecord.channel == WEBCHAT)
            .where(col(InboundRecord.external_id).like(f"{prefix}:%", escape="\\"))
            .limit(1)
        ).first()
        return waiting is not None


class ChatMessage(BaseModel):
    id: int
    #: ``in`` from the citizen, ``out`` from the bot or an operator.
    direction: str
    author: str
    text: str
    at: str
    buttons: list[list[dict[str, str]]]
    #: A QR code of the payment link, when the message carries one.
    qr_url: str | None = None
    payment_url: str | None = None


def fetch(
    factory: sessionmaker[Session], session_id: str, after: int, now: datetime
) -> list[ChatMessage]:
    """The session's messages after id ``after`` (notes never), marking outbound ones delivered."""
    with factory() as session:
        conversations = select(Conversation.id).where(
            Conversation.channel == WEBCHAT, Conversation.thread_key == thread_key(session_id)
        )
        rows = session.exec(
            select(Message)
            .where(col(Message.conversation_id).in_(conversations))
            .where(col(Message.direction).in_([Direction.inbound.value, Direction.outbound.value]))
            .where(col(Message.id) > after)
            .where(
                sa.or_(
                    col(Message.delivery_status).is_(None),
                    col(Message.delivery_status) != DeliveryStatus.withheld.value,
                )
            )
            .order_by(col(Message.id))
            .limit(200)
        ).all()
        queued = [
            m
            for m in rows
            if m.direction == Direction.outbound.value
            and m.delivery_status == DeliveryStatus.queued.value
        ]
        # The page's fetch is this channel's delivery: the consent guard applies here too.
        allowed = consent.withhold(session, queued, now)
        if len(allowed) < len(queued):
            stopped = {m.id for m in queued} - {m.id for m in allowed}
            rows = [m for m in rows if m.id not in stopped]
            session.commit()
        delivered = [m.id for m in allowed]
        if delivered:
            session.execute(
                sa.update(Message)
                .where(col(Message.id).in_(delivered))
                .where(col(Message.delivery_status) == DeliveryStatus.queued.value)
                .values(
                    delivery_status=DeliveryStatus.sent.value,
                    delivered_at=now,
                    external_id="webchat",
                    attempts=Message.attempts + 1,
                )
            )
            for m in rows:
                if m.id in delivered:
                    audit.record(
                        session, "delivered", now, conversation_id=m.conversation_id,
                        message_id=m.id, attempts=1,
                    )  # fmt: skip
            session.commit()
        return [_view(m) for m in rows]


def _view(message: Message) -> ChatMessage:
    payment = message.meta.get("payment") or {}
    assert message.id is not None
    return ChatMessage(
        id=message.id,
        direction=message.direction,
        author={"citizen": "Вы", "bot": "Бот", "operator": "Оператор"}.get(
            message.author_kind, "Ведомство"
        ),
        text=message.text,
        at=as_utc(message.published_at).isoformat(),
        buttons=message.meta.get("buttons") or [],
        qr_url=f"/api/chat/qr/{message.id}.png" if payment else None,
        payment_url=str(payment["url"]) if payment else None,
    )


def payment_link(factory: sessionmaker[Session], session_id: str, message_id: int) -> str | None:
    """The payment link of one of this session's messages (the QR code is drawn from it)."""
    with factory() as session:
        message = session.get(Message, message_id)
        if message is None or message.channel != WEBCHAT:
            return None
        conversation = session.get(Conversation, message.conversation_id)
        if conversation is None or conversation.thread_key != thread_key(session_id):
            return None
        payment = message.meta.get("payment") or {}
        return str(payment["url"]) if payment.get("url") else None
