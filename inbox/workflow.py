"""What people do with a conversation: hand-off, assign, reply, note, close, moderation review.

States: new → bot → waiting_operator → answered → closed. Every change is checked against
the allowed transitions, bumps the conversation's version and is written to the audit log.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inbox import audit, sla
from inbox.models import (
    Assignment,
    AuthorKind,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Message,
    ModerationDecision,
    Operator,
)
from rules.engine import ResponseRules

S = ConversationStatus
ALLOWED: dict[S, set[S]] = {
    S.new: {S.bot, S.waiting_operator, S.answered, S.closed},
    S.bot: {S.waiting_operator, S.answered, S.closed},
    S.waiting_operator: {S.bot, S.answered, S.closed},
    S.answered: {S.waiting_operator, S.bot, S.closed},
    S.closed: set(),
}


class WorkflowError(ValueError):
    """An action that the conversation's state does not allow; the message says why."""


def lock_conversation(session: Session, conversation_id: int) -> Conversation | None:
    """Load a conversation for changing it, locked against other writers until commit.

    On PostgreSQL the lock is ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: nothing here changes
    a conversation's key, and the weaker lock lets other transactions insert rows that point
    at the conversation (an SLA alert, an incoming message: their foreign-key check takes
    ``KEY SHARE``) without waiting. With ``FOR UPDATE`` the bot's turn (conversation, then
    its SLA clock) and the SLA scan (clock, then an alert referencing the conversation)
    deadlocked and PostgreSQL aborted one of them. SQLite ignores row locks (one writer).
    """
    return session.exec(_LOCK, params={"conversation_id": conversation_id}).first()


#: ``lock_conversation``'s statement, built once (not per turn).
_LOCK = (
    select(Conversation)
    .where(Conversation.id == sa.bindparam("conversation_id"))
    .with_for_update(key_share=True)
)


def _move(conversation: Conversation, target: S) -> None:
    current = S(conversation.status)
    if target == current:
        return
    if target not in ALLOWED[current]:
        raise WorkflowError(
            f"обращение {conversation.number}: нельзя перейти из «{current.value}» "
            f"в «{target.value}»"
        )
    conversation.status = target.value
    conversation.version += 1


def to_bot(session: Session, conversation: Conversation, now: datetime, actor: str = "bot") -> None:
    """The bot starts (or resumes) the dialogue."""
    _move(conversation, S.bot)
    _end_assignment(session, conversation, now)
    audit.record(session, "to_bot", now, conversation_id=conversation.id, actor=actor)


def handoff(
    session: Session,
    conversation: Conversation,
    now: datetime,
    rules: ResponseRules,
    reason: str,
) -> None:
    """The bot cannot help, or the citizen asked for a person: queue it for an operator.

    A fresh response clock starts now with the conversation's rule deadline, unless one runs.
    """
    _move(conversation, S.waiting_operator)
    deadline = rules.deadline_of(conversation.rule_id)
    if deadline is not None:
        due = rules.due_at(now, deadline)
        assert due is not None
        sla.start_clock(
            session,
            conversation,
            rule_id=deadline.rule_id,
            kind=conversation.kind,
            started_at=now,
            due_at=due,
            warn_before=rules.warn_before,
        )
    audit.record(session, "handoff", now, conversation_id=conversation.id, reason=reason)


def assign(
    session: Session,
    conversation: Conversation,
    operator: Operator,
    now: datetime,
    by: Operator | None = None,
    reason: str | None = None,
) -> Assignment:
    """Give the conversation to ``operator`` (take it when ``by`` is the operator or None)."""
    if conversation.status == S.closed.value:
        raise WorkflowError(f"обращение {conversation.number} закрыто")
    if not operator.active:
        raise WorkflowError(f"оператор {operator.login} отключён")
    previous = _end_assignment(session, conversation, now)
    assignment = Assignment(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        operator_id=operator.id,  # type: ignore[arg-type]
        assigned_by_id=by.id if by else operator.id,
        started_at=now,
        reason=reason,
    )
    session.add(assignment)
    conversation.assignee_id = operator.id
    if conversation.status in (S.new.value, S.bot.value):
        _move(conversation, S.waiting_operator)
    conversation.version += 1
    audit.record(
        session,
        "reassigned" if previous else "assigned",
        now,
        conversation_id=conversation.id,
        operator_id=by.id if by else operator.id,
        actor=by.login if by else operator.login,
        to=operator.login,
        previous=previous,
        reason=reason,
    )
    return assignment


def _end_assignment(session: Session, conversation: Conversation, now: datetime) -> int | None:
    """End the conversation's current assignment; the operator who had it, if any.

    ``assignee_id`` is set exactly while an assignment is open (only ``assign`` opens one and
    only this ends it), so without an assignee there is nothing to look up: the bot's turns
    (``to_bot``) ask no query for it."""
    if conversation.assignee_id is None:
        return None
    current = session.exec(
        select(Assignment)
        .where(Assignment.conversation_id == conversation.id)
        .where(col(Assignment.ended_at).is_(None))
    ).first()
    conversation.assignee_id = None
    if current is None:
        return None
    current.ended_at = now
    return current.operator_id


def reply(
    session: Session,
    conversation: Conversation,
    text: str,
    now: datetime,
    *,
    operator: Operator | None = None,
    public: bool | None = None,
) -> Message:
    """Queue a reply in the outbox (stored before it is sent) and count it as the response."""
    if conversation.status == S.closed.value:
        raise WorkflowError(f"обращение {conversation.number} закрыто: ответ не отправлен")
    if not text.strip():
        raise WorkflowError("пустой ответ не отправляется")
    message = queue_outbound(
        session,
        conversation,
        text,
        now,
        operator=operator,
        public=conversation.is_public if public is None else public,
    )
    conversation.first_response_at = conversation.first_response_at or now
    conversation.last_message_at = now
    sla.satisfy(session, conversation, now)
    _move(conversation, S.answered)
    audit.record(
        session,
        "reply_queued",
        now,
        conversation_id=conversation.id,
        operator_id=operator.id if operator else None,
        actor=operator.login if operator else "bot",
        message_id=audit.id_of(session, message),
        public=message.is_public,
    )
    return message


def queue_outbound(
    session: Session,
    conversation: Conversation,
    text: str,
    now: datetime,
    *,
    operator: Operator | None = None,
    public: bool = False,
    reply_target: dict[str, Any] | None = None,
) -> Message:
    """Store an outbound message in the outbox, with no change to the conversation's state.

    ``reply`` uses it for responses; the citizen bot for messages after a conversation is
    closed (the rating request), which are no response to anything.
    """
    message = Message(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        direction=Direction.outbound.value,
        author_kind=(AuthorKind.operator if operator else AuthorKind.bot).value,
        operator_id=operator.id if operator else None,
        channel=conversation.channel,
        text=text,
        is_public=public,
        published_at=now,
        delivery_status=DeliveryStatus.queued.value,
        next_attempt_at=now,
        idempotency_key=uuid.uuid4().hex,
        reply_target=conversation.reply_target if reply_target is None else reply_target,
    )
    session.add(message)
    return message


def note(
    session: Session, conversation: Conversation, operator: Operator, text: str, now: datetime
) -> Message:
    """An internal note: visible to operators, never sent, does not stop the clock."""
    message = Message(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        direction=Direction.note.value,
        author_kind=AuthorKind.operator.value,
        operator_id=operator.id,
        channel=conversation.channel,
        text=text,
        published_at=now,
    )
    session.add(message)
    return message


def close(
    session: Session,
    conversation: Conversation,
    now: datetime,
    by: Operator | None = None,
    reason: str = "",
) -> None:
    _move(conversation, S.closed)
    conversation.closed_at = now
    _end_assignment(session, conversation, now)
    sla.cancel(session, conversation, now, reason or "closed without a reply")
    audit.record(
        session,
        "closed",
        now,
        conversation_id=conversation.id,
        operator_id=by.id if by else None,
        actor=by.login if by else "system",
        reason=reason,
    )


#: What a moderation review may decide (``review_moderation``).
MODERATION_CHOICES = ("allow", "flag", "hide")


def review_moderation(
    session: Session,
    conversation: Conversation,
    message_id: int,
    action: str,
    reason: str,
    by: Operator,
    now: datetime,
) -> ModerationDecision:
    """Confirm or override the automatic moderation decision on a message of
    ``conversation``: a new decision row (the rule of the previous one, or ``manual``) and
    an audit event with the previous action. The reason is required. Raises
    ``WorkflowError`` (a Russian text for the operator) for a message of another
    conversation, an unknown action or an empty reason."""
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation.id:
        raise WorkflowError("сообщение не из этого обращения")
    if action not in MODERATION_CHOICES:
        raise WorkflowError("неизвестное действие модерации")
    if not reason.strip():
        raise WorkflowError("укажите причину решения модерации")
    previous = session.exec(
        select(ModerationDecision)
        .where(ModerationDecision.message_id == message_id)
        .order_by(col(ModerationDecision.id).desc())
    ).first()
    decision = ModerationDecision(
        message_id=message_id,
        rule_id=previous.rule_id if previous else "manual",
        action=action,
        reason=reason.strip(),
        decided_at=now,
        decided_by=by.login,
    )
    session.add(decision)
    audit.record(
        session, "moderation_review", now, conversation_id=conversation.id,
        operator_id=by.id, actor=by.login, message_id=message_id, action=action,
        previous=previous.action if previous else None, reason=reason.strip(),
    )  # fmt: skip
    return decision
