"""Recording what happened. Alerts (SLA warnings, breaches) are audit events of kind ``alert``.

A session may collect its audit rows instead of adding one ORM object each (``collect``):
the rows are then written in one INSERT of all of them, when the session commits (after its
flush) or before an ORM query that reads the audit log in the same session, so the
transaction's reads see them as before. The citizen bot's turn does this: its 2-4 rows
were one INSERT each, interleaved with the flushes that the lookups between them caused. A
rolled-back session drops its collected rows with the rest of the transaction; inside a
savepoint (``begin_nested``) rows are added to the session as ORM objects, so a savepoint
rolled back takes its own rows and no others (such a row's id then comes before those of
rows collected earlier in the transaction; in the bot's turn all have the turn's time).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from inbox.models import AuditEvent

AUDIT: sa.Table = AuditEvent.__table__  # type: ignore[attr-defined]
#: ``Session.info`` key of the collected rows (present only in a collecting session).
_ROWS = "otklik.audit_rows"


class _HasId(Protocol):
    id: int | None


class _IdOf:
    """The id of an object not flushed yet, read when the collected rows are written."""

    __slots__ = ("obj",)

    def __init__(self, obj: _HasId) -> None:
        self.obj = obj


def collect(session: Session) -> None:
    """Collect ``session``'s audit rows from now on, written in one INSERT (module doc)."""
    session.info.setdefault(_ROWS, [])


def id_of(session: Session, obj: _HasId) -> int | _IdOf | None:
    """``obj``'s id for an audit row's data. A collecting session resolves it when the rows
    are written (after the flush that gives it one), so recording it costs no flush now;
    otherwise the session is flushed for it."""
    if obj.id is None:
        if _ROWS in session.info:
            return _IdOf(obj)
        session.flush()
    return obj.id


def record(
    session: Session,
    kind: str,
    at: datetime,
    /,
    *,
    conversation_id: int | None = None,
    operator_id: int | None = None,
    actor: str = "system",
    **data: Any,
) -> None:
    rows: list[dict[str, Any]] | None = session.info.get(_ROWS)
    if rows is not None and not session.in_nested_transaction():
        if not session.in_transaction():  # so that a rollback, even before any SQL, drops it
            session.begin()
        rows.append(
            {
                "at": at,
                "kind": kind,
                "conversation_id": conversation_id,
                "operator_id": operator_id,
                "actor": actor,
                "data": data,
            }
        )
        return
    session.add(
        AuditEvent(
            at=at,
            kind=kind,
            conversation_id=conversation_id,
            operator_id=operator_id,
            actor=actor,
            data=data,
        )
    )


def write_collected(session: OrmSession) -> None:
    """Write the rows ``session`` collected, in one INSERT (flushing it first: the rows
    follow what they record, and ids of new objects are known after the flush)."""
    rows: list[dict[str, Any]] | None = session.info.get(_ROWS)
    if not rows:
        return
    session.flush()
    for row in rows:
        data = row["data"]
        if any(isinstance(value, _IdOf) for value in data.values()):
            row["data"] = {
                key: value.obj.id if isinstance(value, _IdOf) else value
                for key, value in data.items()
            }
    session.info[_ROWS] = []
    session.connection().execute(AUDIT.insert(), rows)


@event.listens_for(OrmSession, "before_commit")
def _before_commit(session: OrmSession) -> None:
    write_collected(session)


@event.listens_for(OrmSession, "do_orm_execute")
def _before_audit_read(state: ORMExecuteState) -> None:
    """A query of the audit log in a collecting session sees the rows collected so far."""
    session = state.session
    if (
        session.info.get(_ROWS)
        and state.is_select
        and any(mapper.class_ is AuditEvent for mapper in state.all_mappers)
    ):
        write_collected(session)


@event.listens_for(OrmSession, "after_transaction_end")
def _after_transaction_end(session: OrmSession, transaction: SessionTransaction) -> None:
    """The session's transaction ended: a rollback drops the rows (a commit wrote them)."""
    if transaction.parent is None and session.info.get(_ROWS):
        session.info[_ROWS] = []
