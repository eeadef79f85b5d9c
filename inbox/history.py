"""One person across channels: the citizen's history and merging duplicate citizen records."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inbox import audit
from inbox.models import Application, Citizen, Conversation, Identity, Message


def citizen_history(session: Session, citizen_id: int) -> list[tuple[Conversation, list[Message]]]:
    """Every conversation of the citizen (and of records merged into it), oldest first."""
    ids = _merged_ids(session, citizen_id)
    conversations = session.exec(
        select(Conversation)
        .where(col(Conversation.citizen_id).in_(ids))
        .order_by(col(Conversation.opened_at), col(Conversation.id))
    ).all()
    history = []
    for conversation in conversations:
        messages = session.exec(
            select(Message)
            .where(Message.conversation_id == conversation.id)
            .order_by(col(Message.published_at), col(Message.id))
        ).all()
        history.append((conversation, list(messages)))
    return history


def _merged_ids(session: Session, citizen_id: int) -> list[int]:
    ids = [citizen_id]
    frontier = [citizen_id]
    while frontier:
        children = session.exec(
            select(Citizen.id).where(col(Citizen.merged_into_id).in_(frontier))
        ).all()
        frontier = [c for c in children if c is not None and c not in ids]
        ids.extend(frontier)
    return ids


def root_citizen(session: Session, citizen_id: int) -> int:
    """The record ``citizen_id`` was merged into, followed to the end (itself if none)."""
    seen = {citizen_id}
    current = citizen_id
    while True:
        citizen = session.get(Citizen, current)
        if citizen is None or citizen.merged_into_id is None or citizen.merged_into_id in seen:
            return current
        current = citizen.merged_into_id
        seen.add(current)


def merge_citizens(
    session: Session, keep_id: int, merge_id: int, now: datetime, actor: str
) -> Citizen:
    """Treat ``merge_id`` as the same person as ``keep_id`` (an operator confirmed it)."""
    if keep_id == merge_id:
        raise ValueError("a citizen cannot be merged into itself")
    keep = session.get(Citizen, keep_id)
    other = session.get(Citizen, merge_id)
    if keep is None or other is None:
        raise ValueError("no such citizen")
    if merge_id in _merged_ids(session, keep_id) or keep.merged_into_id is not None:
        raise ValueError("these records are already merged")
    session.execute(
        sa.update(Identity).where(col(Identity.citizen_id) == merge_id).values(citizen_id=keep_id)
    )
    session.execute(
        sa.update(Conversation)
        .where(col(Conversation.citizen_id) == merge_id)
        .values(citizen_id=keep_id)
    )
    # «Статус заявления» in any linked channel lists them all (news still go to the
    # conversation, hence the channel, each application came from).
    session.execute(
        sa.update(Application)
        .where(col(Application.citizen_id) == merge_id)
        .values(citizen_id=keep_id)
    )
    other.merged_into_id = keep_id
    keep.display_name = keep.display_name or other.display_name
    audit.record(session, "citizens_merged", now, actor=actor, keep=keep_id, merged=merge_id)
    return keep
