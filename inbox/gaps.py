"""What the bot could not answer over a period, for the people who write the knowledge base.

Two sources, both kept by the inbox anyway: the bot's hand-offs for want of a confident answer
(audit events ``handoff`` whose reason says so, bot/citizen/handlers/questions.py) and the
bot's answers given with a low confidence (``kb_confidence`` on the reply's ``meta``). For each
the citizen's question is the last inbound message of the conversation before it. Texts are
masked (phone numbers, passports, addresses... as in the logs) before anyone sees them: the
page is for authors, not for the citizen's case. ``knowledge_base.gaps`` groups them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from inbox.logging import mask
from inbox.models import AuditEvent, Direction, Message

#: The reason the citizen bot gives when the knowledge base had no confident answer.
NO_ANSWER_REASON = "no confident answer in the knowledge base"
#: Answers given with a confidence below this are gaps too. The confidence is a calibrated
#: probability of being right and the bot hands off under 0.9 (knowledge_base/search.yaml):
#: an answer under 0.95 is one in ten to twenty wrong.
LOW_CONFIDENCE = 0.95
#: Hand-off reasons that are no gap: an empty message. «Not our topic» hand-offs stay: where
#: citizens draw the agency's topics is what the authors need to see.
NOT_GAPS = ("(empty",)
#: At most this many questions are read (the most recent): enough to see the clusters.
LIMIT = 2000


@dataclass(frozen=True)
class UnansweredQuestion:
    text: str  # masked
    conversation_id: int
    at: datetime
    why: str  # "handoff" or "low_confidence"


def unanswered_questions(
    session: Session,
    since: datetime,
    until: datetime,
    *,
    low_confidence: float = LOW_CONFIDENCE,
    limit: int = LIMIT,
) -> list[UnansweredQuestion]:
    """The questions of the period, newest first; one per hand-off or weak answer."""
    found: list[UnansweredQuestion] = []
    handoffs = session.exec(
        select(AuditEvent)
        .where(AuditEvent.kind == "handoff")
        .where(col(AuditEvent.at) >= since, col(AuditEvent.at) <= until)
        .where(col(AuditEvent.conversation_id).is_not(None))
        .order_by(col(AuditEvent.id).desc())
        .limit(limit)
    ).all()
    for event in handoffs:
        reason = str(event.data.get("reason", ""))
        if not reason.startswith(NO_ANSWER_REASON) or any(n in reason for n in NOT_GAPS):
            continue
        assert event.conversation_id is not None
        question = _question_before(session, event.conversation_id, at=event.at)
        if question is not None:
            found.append(
                UnansweredQuestion(mask(question.text), event.conversation_id, event.at, "handoff")
            )
    answers = session.exec(
        select(Message)
        .where(Message.direction == Direction.outbound.value)
        .where(col(Message.published_at) >= since, col(Message.published_at) <= until)
        .where(Message.author_kind == "bot")
        .order_by(col(Message.id).desc())
        .limit(limit * 5)
    ).all()
    for answer in answers:
        confidence = answer.meta.get("kb_confidence") if answer.meta else None
        if not isinstance(confidence, int | float) or confidence >= low_confidence:
            continue
        question = _question_before(session, answer.conversation_id, before_id=answer.id)
        if question is not None:
            found.append(
                UnansweredQuestion(
                    mask(question.text), answer.conversation_id, answer.published_at,
                    "low_confidence",
                )
            )  # fmt: skip
    found.sort(key=lambda q: q.at, reverse=True)
    return found[:limit]


def _question_before(
    session: Session,
    conversation_id: int,
    *,
    at: datetime | None = None,
    before_id: int | None = None,
) -> Message | None:
    query = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .where(Message.direction == Direction.inbound.value)
        .where(Message.text != "")
    )
    if at is not None:
        query = query.where(col(Message.published_at) <= at)
    if before_id is not None:
        query = query.where(col(Message.id) < before_id)
    return session.exec(query.order_by(col(Message.id).desc())).first()
