"""Journal rows whose processing keeps failing: counted, backed off, set aside, retried by hand.

An acknowledged event must never be lost, and one that cannot be processed must not be tried
forever (a traceback each round) nor hold the others up. So each failed attempt is counted on
its journal row (``attempts``, the masked ``error``); the row then waits before its next try
(``retry_after``: the first retry comes at once, later ones after a doubling delay); after
``RetryPolicy.max_attempts`` failures it is set aside (``failed_at``) and ``process_pending``
no longer selects it. Failures of the database itself (down, locked, a deadlock) are not the
event's fault and are not counted.

Administrators see the set-aside rows with their error (``/ui/admin/journal``, ``otklik
journal failed``) and give one another try once the cause is fixed (``retry``: the next
``process_pending`` round takes it, with the channel's after-processing hook, the citizen
bot) or dismiss it (``dismiss``: kept in the journal, no longer listed). Both are audited.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, func, select

from core.config import Settings
from inbox import audit
from inbox.logging import mask
from inbox.models import InboundRecord

log = logging.getLogger(__name__)

#: The longest wait between two tries, however many failures came before.
MAX_DELAY = timedelta(hours=1)
#: Characters of the citizen's text shown next to a failed event (masked).
EXCERPT = 80


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing event is tried before it is set aside, and how long it waits."""

    max_attempts: int = 5
    #: The wait after the second failure; it doubles with each further one.
    delay: timedelta = timedelta(seconds=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=max(1, settings.journal_max_attempts),
            delay=timedelta(seconds=max(0.0, settings.journal_retry_delay)),
        )

    def wait_after(self, attempts: int) -> timedelta:
        """The back-off after the ``attempts``-th failure: none after the first (a webhook's
        inline processing failed: the next round tries again), then 1, 2, 4... × ``delay``."""
        if attempts <= 1:
            return timedelta(0)
        return min(self.delay * 2 ** (attempts - 2), MAX_DELAY)


def is_transient(exc: BaseException) -> bool:
    """A failure of the database, not of the event: it is down, locked or chose a deadlock
    victim. Such failures are recorded but not counted against the event."""
    if isinstance(exc, sa.exc.OperationalError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


#: SQLAlchemy's asides in an error's text that say nothing about this failure.
_NOISE = re.compile(
    r"\(raised as a result of Query-invoked autoflush;[^)]*\)\s*"
    r"|\s*\(Background on this error at: [^)]*\)"
)


def error_text(exc: BaseException) -> str:
    """What the journal row keeps of a failure, personal data masked (a database error quotes
    the statement's parameters, the citizen's text among them)."""
    return mask(_NOISE.sub("", f"{type(exc).__name__}: {exc}"))[:2000]


def record_failure(
    factory: sessionmaker[Session],
    record_id: int,
    exc: BaseException,
    now: datetime,
    policy: RetryPolicy,
) -> None:
    """Count a failed attempt on the row: back it off, or set it aside after the last one."""
    with factory() as session:
        record = session.exec(
            select(InboundRecord).where(InboundRecord.id == record_id).with_for_update()
        ).first()
        if record is None or record.processed_at is not None:
            return  # processed meanwhile by another process
        record.error = error_text(exc)
        if not is_transient(exc):
            record.attempts += 1
            if record.attempts >= policy.max_attempts:
                record.failed_at = now
                record.retry_after = None
            else:
                wait = policy.wait_after(record.attempts)
                record.retry_after = now + wait if wait else None
        attempts, failed = record.attempts, record.failed_at is not None
        channel = record.channel
        session.commit()
    if failed:
        log.error(
            "inbound event %s (%s) set aside after %d failed attempts: %s; see "
            "/ui/admin/journal or otklik journal failed",
            record_id, channel, attempts, error_text(exc),
        )  # fmt: skip


def due_for_processing(now: datetime) -> list[sa.ColumnElement[bool]]:
    """``process_pending``'s conditions besides "not processed": not set aside, not backed off."""
    return [
        col(InboundRecord.failed_at).is_(None),
        sa.or_(col(InboundRecord.retry_after).is_(None), col(InboundRecord.retry_after) <= now),
    ]


def _listed() -> list[sa.ColumnElement[bool]]:
    """Failed rows an administrator still has to look at (``ix_inbound_failed``)."""
    return [
        col(InboundRecord.failed_at).is_not(None),
        col(InboundRecord.processed_at).is_(None),
        col(InboundRecord.dismissed_at).is_(None),
    ]


@dataclass(frozen=True)
class FailedEvent:
    """A set-aside journal row as administrators see it."""

    id: int
    channel: str
    received_at: datetime
    failed_at: datetime
    attempts: int
    error: str
    #: The start of the citizen's text, personal data masked (or what the event carried).
    excerpt: str


def count_failed(session: Session) -> int:
    query = select(func.count()).select_from(InboundRecord).where(*_listed())
    return int(session.exec(query).one())


def list_failed(session: Session, limit: int = 200) -> list[FailedEvent]:
    """The newest set-aside rows first."""
    rows = session.exec(
        select(InboundRecord).where(*_listed()).order_by(col(InboundRecord.id).desc()).limit(limit)
    ).all()
    return [
        FailedEvent(
            id=r.id or 0,
            channel=r.channel,
            received_at=r.received_at,
            failed_at=r.failed_at or r.received_at,
            attempts=r.attempts,
            error=mask(r.error or ""),
            excerpt=excerpt(r.event),
        )
        for r in rows
    ]


def excerpt(event: dict[str, Any]) -> str:
    """A short, masked look at what the event carried, enough to recognise it."""
    text = " ".join(str(event.get("text") or "").split())
    if not text:
        names = [str(a.get("name") or a.get("kind") or "") for a in event.get("attachments") or []]
        text = f"[вложения: {', '.join(n for n in names if n)}]" if names else ""
    text = mask(text)
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1].rstrip() + "…"


def _select_rows(
    session: Session, ids: Sequence[int] | None, *, dismissed_too: bool
) -> list[InboundRecord]:
    query = select(InboundRecord).where(
        col(InboundRecord.failed_at).is_not(None), col(InboundRecord.processed_at).is_(None)
    )
    if ids is None:
        query = query.where(col(InboundRecord.dismissed_at).is_(None))
    else:
        query = query.where(col(InboundRecord.id).in_(list(ids)))
        if not dismissed_too:
            query = query.where(col(InboundRecord.dismissed_at).is_(None))
    return list(session.exec(query.order_by(col(InboundRecord.id)).with_for_update()))


def retry(
    session: Session,
    ids: Sequence[int] | None,
    now: datetime,
    policy: RetryPolicy,
    *,
    actor: str,
    operator_id: int | None = None,
) -> list[int]:
    """Give set-aside rows (``ids``, or every listed one) one more try; the caller commits.

    The next ``process_pending`` round processes them and runs their channel's hook; a row
    that fails again is set aside again at once, with its new error. A dismissed row can be
    retried by its id. Returns the ids reset.
    """
    done = []
    for record in _select_rows(session, ids, dismissed_too=True):
        assert record.id is not None
        record.failed_at = None
        record.dismissed_at = None
        record.retry_after = None
        record.attempts = max(0, policy.max_attempts - 1)
        audit.record(
            session, "journal_retried", now, operator_id=operator_id, actor=actor,
            record_id=record.id, channel=record.channel, error=mask(record.error or ""),
        )  # fmt: skip
        done.append(record.id)
    return done


def dismiss(
    session: Session,
    ids: Sequence[int] | None,
    now: datetime,
    *,
    actor: str,
    operator_id: int | None = None,
) -> list[int]:
    """Take set-aside rows off the list (they stay in the journal); the caller commits."""
    done = []
    for record in _select_rows(session, ids, dismissed_too=False):
        assert record.id is not None
        record.dismissed_at = now
        audit.record(
            session, "journal_dismissed", now, operator_id=operator_id, actor=actor,
            record_id=record.id, channel=record.channel, error=mask(record.error or ""),
        )  # fmt: skip
        done.append(record.id)
    return done
