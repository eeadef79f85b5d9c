"""Response deadlines: SLA clocks on conversations and the scan that finds warnings and breaches.

The truth is in the database (``sla_clock`` rows), so a restarted process, or several processes,
resume exactly where they were: the scan only flips rows whose state says the work is undone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from core.clock import as_utc
from inbox import audit
from inbox.models import Conversation, SlaClock, SlaClockStatus

_OPEN_CLOCK = (SlaClockStatus.running.value, SlaClockStatus.breached.value)


def start_clock(
    session: Session,
    conversation: Conversation,
    *,
    rule_id: str,
    kind: str,
    started_at: datetime,
    due_at: datetime,
    warn_before: timedelta,
) -> SlaClock:
    """Start a response clock unless one is already open (the earliest deadline wins)."""
    assert conversation.id is not None
    current = open_clock(session, conversation.id)
    if current is not None:
        return current
    clock = SlaClock(
        conversation_id=conversation.id,
        rule_id=rule_id,
        kind=kind,
        started_at=started_at,
        due_at=due_at,
        warn_at=max(started_at, due_at - warn_before),
    )
    session.add(clock)
    session.info.get(_NONE_STORED, set()).discard(conversation.id)
    conversation.due_at = due_at
    return clock


#: ``Session.info`` key: conversations this session knows to have no open clock stored.
_NONE_STORED = "otklik.sla_none_stored"


def open_clock_exists(conversation_id: int | sa.BindParameter[int]) -> sa.Exists:
    """Whether the conversation has an open clock stored, to ask along with another query;
    ``none_stored`` tells the session the answer was no."""
    return sa.exists().where(
        col(SlaClock.conversation_id) == conversation_id, col(SlaClock.status).in_(_OPEN_CLOCK)
    )


def none_stored(session: Session, conversation_id: int) -> None:
    """``session`` saw no open clock of the conversation stored (``open_clock_exists``, asked
    with the conversation locked, ``workflow.lock_conversation``): ``open_clock`` need not
    query until this session starts one (``start_clock``). No other transaction can commit
    one meanwhile: a clock is always added with an UPDATE of its conversation (its
    ``due_at``: ``start_clock``, and processing writes it with the message), which waits
    for the lock."""
    session.info.setdefault(_NONE_STORED, set()).add(conversation_id)


_OPEN_CLOCKS = (
    select(SlaClock)
    .where(SlaClock.conversation_id == sa.bindparam("conversation_id"))
    .where(col(SlaClock.status).in_(_OPEN_CLOCK))
    .order_by(col(SlaClock.id))
)


def open_clock(session: Session, conversation_id: int) -> SlaClock | None:
    """The conversation's open clock (the earliest), as this session sees it.

    No autoflush before the query: it would write the changes a turn made so far (the reply,
    the conversation's new status) in statements of their own, when one flush at the end can
    write them together. What the session changed and did not flush is taken into account
    here instead: a clock it closed (met, cancelled) is no longer open, a clock it started is.
    """
    if conversation_id not in session.info.get(_NONE_STORED, ()):
        with session.no_autoflush:
            stored = session.exec(_OPEN_CLOCKS, params={"conversation_id": conversation_id})
            for clock in stored.all():
                if clock.status in _OPEN_CLOCK:
                    return clock
    for obj in session.new:
        if (
            isinstance(obj, SlaClock)
            and obj.conversation_id == conversation_id
            and obj.status in _OPEN_CLOCK
        ):
            return obj
    return None


def satisfy(session: Session, conversation: Conversation, at: datetime) -> SlaClock | None:
    """A response was given at ``at``: stop the open clock (met, or met late)."""
    assert conversation.id is not None
    clock = open_clock(session, conversation.id)
    if clock is None:
        return None
    late = as_utc(at) > as_utc(clock.due_at)
    clock.status = (SlaClockStatus.breached_met if late else SlaClockStatus.met).value
    clock.met_at = at
    conversation.due_at = None
    audit.record(
        session,
        "sla_met",
        at,
        conversation_id=conversation.id,
        clock_id=clock.id,
        late=late,
        response_seconds=(as_utc(at) - as_utc(clock.started_at)).total_seconds(),
    )
    return clock


def satisfy_values(
    conn: sa.Connection,
    conversation_id: int,
    at: datetime,
    audit_add: Callable[..., object],
) -> dict[str, Any]:
    """``satisfy`` in Core statements (the ingest path, ``inbox.apply``): stop the open clock
    and return the conversation's changes; the audit row goes to ``audit_add``."""
    table = SlaClock.__table__  # type: ignore[attr-defined]
    row = conn.execute(
        sa.select(table.c.id, table.c.due_at, table.c.started_at)
        .where(table.c.conversation_id == conversation_id, table.c.status.in_(_OPEN_CLOCK))
        .order_by(table.c.id)
        .limit(1)
    ).first()
    if row is None:
        return {}
    clock_id, due_at, started_at = row
    late = as_utc(at) > as_utc(due_at)
    status = (SlaClockStatus.breached_met if late else SlaClockStatus.met).value
    conn.execute(table.update().where(table.c.id == clock_id).values(status=status, met_at=at))
    audit_add(
        "sla_met",
        at,
        conversation_id=conversation_id,
        clock_id=clock_id,
        late=late,
        response_seconds=(as_utc(at) - as_utc(started_at)).total_seconds(),
    )
    return {"due_at": None}


def cancel(session: Session, conversation: Conversation, at: datetime, reason: str) -> None:
    assert conversation.id is not None
    clock = open_clock(session, conversation.id)
    if clock is not None and clock.status == SlaClockStatus.running.value:
        clock.status = SlaClockStatus.cancelled.value
        audit.record(session, "sla_cancelled", at, conversation_id=conversation.id, reason=reason)
    conversation.due_at = None


@dataclass
class ScanResult:
    warned: list[int] = field(default_factory=list)  # conversation ids
    breached: list[int] = field(default_factory=list)


def scan(session: Session, now: datetime, batch: int = 1000) -> ScanResult:
    """Mark clocks about to breach (warning) and breached ones; raise an alert for each.

    Rows are locked with SKIP LOCKED on PostgreSQL, so concurrent scanners never double-alert.
    """
    result = ScanResult()
    warn = _due(session, SlaClock.warn_at, now, batch, warned=False)
    breach = _due(session, SlaClock.due_at, now, batch, warned=None)
    numbers = _numbers(session, {c.conversation_id for c in warn + breach})
    for clock in warn:
        clock.warned_at = now
        result.warned.append(clock.conversation_id)
        _alert(session, clock, now, "sla_warning", numbers)
    for clock in breach:
        clock.status = SlaClockStatus.breached.value
        clock.breached_at = clock.due_at
        result.breached.append(clock.conversation_id)
        _alert(session, clock, now, "sla_breach", numbers)
    return result


def _numbers(session: Session, conversation_ids: set[int]) -> dict[int, str | None]:
    """Appeal numbers for the alerts, in one query (not one per alert: after an outage a
    scan raises thousands, and each lookup would also flush the alert before it)."""
    if not conversation_ids:
        return {}
    rows = session.exec(
        select(Conversation.id, Conversation.number).where(
            col(Conversation.id).in_(conversation_ids)
        )
    ).all()
    return {cid: number for cid, number in rows if cid is not None}


def _due(
    session: Session, column: sa.ColumnElement[datetime] | datetime, now: datetime,
    batch: int, warned: bool | None,
) -> list[SlaClock]:  # fmt: skip
    query = (
        select(SlaClock)
        .where(SlaClock.status == SlaClockStatus.running.value)
        .where(column <= now)  # type: ignore[operator]
        .order_by(column)  # type: ignore[arg-type]
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    if warned is False:
        query = query.where(col(SlaClock.warned_at).is_(None))
    return list(session.exec(query))


def _alert(
    session: Session, clock: SlaClock, now: datetime, kind: str, numbers: dict[int, str | None]
) -> None:
    audit.record(
        session,
        "alert",
        now,
        conversation_id=clock.conversation_id,
        alert=kind,
        number=numbers.get(clock.conversation_id),
        kind=clock.kind,
        due_at=as_utc(clock.due_at).isoformat(),
    )
