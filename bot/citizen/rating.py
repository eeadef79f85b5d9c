"""Who may rate which conversation, and when: the checks behind a pressed rating button.

Ratings are published (``/public/ratings``), so a press is an untrusted claim, whatever the
channel: a web-chat visitor posts any button id they like, and a VK or Telegram client can
be made to send any payload. A press ``rate:<conversation>:<score>`` is accepted only when

- it is well formed: a conversation id that fits the column, a score from 1 to 5, ASCII
  digits only;
- the conversation is the presser's own: the same channel and dialogue (thread) as the
  conversation, and the presser's identity on that channel is the conversation's citizen;
- the conversation is closed, and the bot's rating request for it (the ``rating_requested``
  audit event ``CitizenBot.ask_for_ratings`` records with the request's message id) was
  handed to the platform (``sending``) or delivered (``sent``): nobody can answer a question
  before it was put to them;
- it is the first rating of that conversation (checked under the conversation's row lock,
  so two presses at once store one rating).

Anything else is refused with a polite reply and no rating (``Refusal``); a foreign or
unknown conversation gets the same answer, so a press says nothing about which ids exist.
"""

from __future__ import annotations

import re
from enum import StrEnum

from sqlmodel import Session, col, select

from bot.citizen import texts
from core.events import InboundEvent
from inbox.models import (
    AuditEvent,
    Citizen,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Identity,
    Message,
    Rating,
)

#: The audit event ``ask_for_ratings`` records for each request (with ``message_id``).
RATING_REQUESTED = "rating_requested"
#: Largest id an INTEGER column holds on PostgreSQL: a bigger one could only be forged.
MAX_ID = 2**31 - 1
_PRESSED = re.compile(r"rate:([0-9]{1,10}):([0-9])", re.ASCII)
#: The request has reached the platform (``sending``: the platform call is being made).
_HANDED_OVER = (DeliveryStatus.sending.value, DeliveryStatus.sent.value)


class Refusal(StrEnum):
    malformed = "malformed"
    foreign = "foreign"  # not the presser's conversation, or no such conversation
    open = "open"  # not closed yet
    not_asked = "not_asked"  # no rating request was sent for it
    already = "already"  # rated before


REPLIES: dict[Refusal, str] = {
    Refusal.malformed: texts.RATE_REFUSED,
    Refusal.foreign: texts.RATE_REFUSED,
    Refusal.open: texts.RATE_NOT_YET,
    Refusal.not_asked: texts.RATE_NOT_YET,
    Refusal.already: texts.RATE_ALREADY,
}


def parse(pressed: str) -> tuple[int, int] | None:
    """``(conversation id, score)`` of a well-formed press, else None."""
    found = _PRESSED.fullmatch(pressed)
    if found is None:
        return None
    conversation_id, score = int(found[1]), int(found[2])
    if not 1 <= conversation_id <= MAX_ID or not 1 <= score <= 5:
        return None
    return conversation_id, score


def is_own(session: Session, event: InboundEvent, conversation: Conversation) -> bool:
    """The press comes from the conversation's citizen, in the conversation's dialogue."""
    if (
        conversation.channel != event.channel.value
        or conversation.thread_key != event.thread_key[:255]
    ):
        return False
    identity = session.exec(
        select(Identity)
        .where(Identity.channel == event.channel.value)
        .where(Identity.external_id == event.author.external_id[:255])
    ).first()
    return identity is not None and _root(session, identity.citizen_id) == _root(
        session, conversation.citizen_id
    )


def refusal(session: Session, event: InboundEvent, conversation: Conversation) -> Refusal | None:
    """Why this citizen's press on ``conversation`` is refused; None when it may be stored.
    Call with the conversation locked (``workflow.lock_conversation``)."""
    if not is_own(session, event, conversation):
        return Refusal.foreign
    if conversation.status != ConversationStatus.closed.value:
        return Refusal.open
    if not request_handed_over(session, conversation):
        return Refusal.not_asked
    rated = session.exec(select(Rating.id).where(Rating.conversation_id == conversation.id))
    if rated.first() is not None:
        return Refusal.already
    return None


def request_handed_over(session: Session, conversation: Conversation) -> bool:
    """The bot's rating request for this conversation went out to the citizen."""
    requests = session.exec(
        select(AuditEvent)
        .where(AuditEvent.conversation_id == conversation.id)
        .where(AuditEvent.kind == RATING_REQUESTED)
    ).all()
    message_ids = [int(e.data["message_id"]) for e in requests if e.data.get("message_id")]
    if not message_ids:
        return False
    handed = session.exec(
        select(Message.id)
        .where(col(Message.id).in_(message_ids))
        .where(Message.conversation_id == conversation.id)
        .where(col(Message.delivery_status).in_(_HANDED_OVER))
    ).first()
    return handed is not None


def _root(session: Session, citizen_id: int) -> int:
    """The citizen record a (possibly merged) one now lives in."""
    seen = {citizen_id}
    citizen = session.get(Citizen, citizen_id)
    while citizen is not None and citizen.merged_into_id is not None:
        if citizen.merged_into_id in seen:  # a cycle cannot be made; never loop on one
            break
        seen.add(citizen.merged_into_id)
        citizen = session.get(Citizen, citizen.merged_into_id)
    return citizen.id if citizen is not None and citizen.id is not None else citizen_id
