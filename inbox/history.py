"""One person across channels: the citizen's history and merging duplicate citizen records."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inbox import audit
from inbox.models import (
    Application,
    Citizen,
    Consent,
    Conversation,
    Identity,
    Message,
    Subscription,
)


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
    _move_consents(session, keep_id, merge_id, now, actor)
    other.merged_into_id = keep_id
    keep.display_name = keep.display_name or other.display_name
    audit.record(session, "citizens_merged", now, actor=actor, keep=keep_id, merged=merge_id)
    return keep


def _move_consents(
    session: Session, keep_id: int, merge_id: int, now: datetime, actor: str
) -> None:
    """Consents and subscriptions follow the record, so that «стоп» in any linked channel
    withdraws them all. One live consent per scope and one live subscription per topic: a
    duplicate of the merged record is closed (``via`` ``merge``; the kept one goes on)."""
    live_scopes = {
        (c.scope_kind, c.scope_id)
        for c in session.exec(
            select(Consent)
            .where(Consent.citizen_id == keep_id)
            .where(col(Consent.withdrawn_at).is_(None))
        )
    }
    for consent in session.exec(select(Consent).where(Consent.citizen_id == merge_id)).all():
        if consent.withdrawn_at is None and (consent.scope_kind, consent.scope_id) in live_scopes:
            consent.withdrawn_at, consent.withdrawn_via = now, "merge"
            consent.withdrawn_by = actor[:100]
            audit.record(
                session, "consent_withdrawn", now, conversation_id=consent.conversation_id,
                actor=f"merge:{actor}"[:100], citizen_id=merge_id, reason="merged duplicate",
            )  # fmt: skip
        consent.citizen_id = keep_id
    live_topics = {
        s.topic
        for s in session.exec(
            select(Subscription)
            .where(Subscription.citizen_id == keep_id)
            .where(col(Subscription.cancelled_at).is_(None))
        )
    }
    for subscription in session.exec(
        select(Subscription).where(Subscription.citizen_id == merge_id)
    ).all():
        if subscription.cancelled_at is None and subscription.topic in live_topics:
            subscription.cancelled_at = now
            audit.record(
                session, "unsubscribed", now, conversation_id=subscription.conversation_id,
                actor=f"merge:{actor}"[:100], citizen_id=merge_id, reason="merged duplicate",
            )  # fmt: skip
        subscription.citizen_id = keep_id
    session.flush()
