"""The operators' queue: open conversations, the nearest deadline first."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from inbox.models import OPEN_STATUSES, Conversation


def queue_query(
    *,
    status: str | None = None,
    channel: str | None = None,
    kind: str | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    limit: int = 100,
) -> SelectOfScalar[Conversation]:
    """Open conversations (or those in ``status``), the nearest deadline first, no deadline last.

    ``NULLS LAST`` rather than ``ORDER BY due_at IS NULL, due_at``: the same order, but one
    an index on ``due_at`` can produce (see ``ix_conversation_open_due``), so the queue
    reads ``limit`` rows instead of sorting every open conversation.
    """
    query = select(Conversation)
    if status:
        query = query.where(Conversation.status == status)
    else:
        query = query.where(col(Conversation.status).in_([s.value for s in OPEN_STATUSES]))
    if channel:
        query = query.where(Conversation.channel == channel)
    if kind:
        query = query.where(Conversation.kind == kind)
    if assignee_id is not None:
        query = query.where(Conversation.assignee_id == assignee_id)
    elif unassigned:
        query = query.where(col(Conversation.assignee_id).is_(None))
    return query.order_by(col(Conversation.due_at).asc().nulls_last()).limit(limit)
