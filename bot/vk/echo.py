"""VK echoes what Otklik itself sent: ``message_reply`` for every ``messages.send`` and
``wall_reply_new`` (from the community) for every ``wall.createComment``.

Such an echo must not be recorded again as "the agency answered on the platform": the reply
is already in the conversation. An echo is recognised by the id VK gave the sent item (stored
as the outbound message's ``external_id`` by the outbox) or, for a message whose send has not
been recorded yet, by its ``random_id``. The echo stays in the journal but is moved to a thread
of its own as a service event, so processing it changes nothing.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.vk.sender import random_id
from core.events import InboundEvent, Place
from inbox.models import DeliveryStatus, Direction, Message


def sent_by_us(session: Session, event: InboundEvent) -> int | None:
    """The id of our outbound message that ``event`` echoes, if it is an echo."""
    extra = event.facts.extra
    kind = extra.get("event_type")
    if not event.facts.is_own or kind not in ("message_reply", "wall_reply_new"):
        return None
    vk_id = extra.get("message_id") if kind == "message_reply" else extra.get("comment_id")
    if vk_id is None:
        return None
    platform_id = str(vk_id) if kind == "message_reply" else f"comment:{vk_id}"
    outbound = (
        select(Message.id)
        .where(Message.channel == "vk")
        .where(Message.direction == Direction.outbound.value)
    )
    found = session.exec(outbound.where(Message.external_id == platform_id)).first()
    if found is not None or kind != "message_reply" or not extra.get("random_id"):
        return found
    in_flight = session.exec(
        select(Message.id, Message.idempotency_key)
        .where(Message.channel == "vk")
        .where(Message.direction == Direction.outbound.value)
        .where(col(Message.delivery_status) == DeliveryStatus.sending.value)
    ).all()
    for message_id, key in in_flight:
        if key and random_id(key) == extra["random_id"]:
            return message_id
    return None


def as_echo(event: InboundEvent, message_id: int) -> InboundEvent:
    """The event, moved out of the conversation's thread: journalled, with no effect."""
    facts = event.facts.model_copy(
        update={
            "place": Place.service,
            "is_own": False,
            "extra": {**event.facts.extra, "echo_of": message_id},
        }
    )
    return event.model_copy(update={"facts": facts, "thread_key": f"vk:echo:{message_id}"})
