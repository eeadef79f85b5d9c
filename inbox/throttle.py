"""Login throttling: failed logins counted per login name and per client address.

After ``max_failures`` failures of one subject (a login name, or a client address) within
``window``, the subject is locked for ``lock``: every attempt is refused, the right password
too, until the lock ends. A successful login clears its login name's counter (not the
address's: an attacker holding one account must not be able to wipe the count of their
guesses at others).

The counters live in the ``login_throttle`` table, not in memory, so that all web processes
of a deployment (several uvicorn workers on one PostgreSQL) share them. Counting a failure
locks the subject's rows (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite takes its write lock
at ``BEGIN``), always in the same order, so concurrent failures are all counted and two
requests never deadlock. Login names are counted whether or not they exist, so the lock says
nothing about which logins exist. Requests already past the lock check when the lock lands
still finish (a handful at most; the per-address rate limit in ``inbox/web/limits.py``
bounds the burst).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from inbox.clock import as_utc
from inbox.config import Settings
from inbox.models import LoginThrottle

#: The ``scope`` column's values.
LOGIN = "login"
IP = "ip"
#: Longest key stored (the column's length); no login name or address is longer.
KEY_LENGTH = 255


@dataclass(frozen=True)
class Subject:
    """What a failure is counted against: one login name or one client address."""

    scope: str
    key: str
    max_failures: int


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int
    ip_max_failures: int
    window: timedelta
    lock: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            max_failures=settings.login_max_failures,
            ip_max_failures=settings.login_ip_max_failures,
            window=timedelta(seconds=settings.login_failure_window),
            lock=timedelta(seconds=settings.login_lockout),
        )

    def subjects(self, login: str, ip: str) -> list[Subject]:
        """The subjects an attempt counts against, in locking order; a limit of 0 is off."""
        candidates = [
            Subject(LOGIN, login[:KEY_LENGTH], self.max_failures),
            Subject(IP, ip[:KEY_LENGTH], self.ip_max_failures),
        ]
        return sorted((s for s in candidates if s.max_failures > 0), key=lambda s: (s.scope, s.key))


@dataclass(frozen=True)
class Lock:
    subject: Subject
    until: datetime


def _matches(subject: Subject) -> sa.ColumnElement[bool]:
    return sa.and_(col(LoginThrottle.scope) == subject.scope, col(LoginThrottle.key) == subject.key)


def active_lock(session: Session, subjects: list[Subject], now: datetime) -> datetime | None:
    """When the latest lock on any of ``subjects`` ends, if one is in force at ``now``."""
    if not subjects:
        return None
    rows = session.exec(select(LoginThrottle).where(sa.or_(*map(_matches, subjects)))).all()
    ends = [as_utc(r.locked_until) for r in rows if r.locked_until is not None]
    return max((end for end in ends if end > now), default=None)


def count_failure(
    session: Session, subjects: list[Subject], now: datetime, policy: ThrottlePolicy
) -> list[Lock]:
    """Count one failed login against each subject; the locks this failure started."""
    started: list[Lock] = []
    for subject in subjects:
        row = _row_for_update(session, subject)
        if row.window_start is None or now - as_utc(row.window_start) >= policy.window:
            row.failures, row.window_start = 0, now
        row.failures += 1
        if row.failures >= subject.max_failures:
            # The lock starts a fresh count: after it, the subject gets its full allowance.
            row.locked_until = now + policy.lock
            row.failures, row.window_start = 0, None
            started.append(Lock(subject, row.locked_until))
        session.add(row)
    return started


def clear_login(session: Session, login: str) -> None:
    """Forget a login name's failures (after a successful login)."""
    subject = Subject(LOGIN, login[:KEY_LENGTH], 0)
    session.execute(sa.delete(LoginThrottle).where(_matches(subject)))


def prune(session: Session, now: datetime, policy: ThrottlePolicy) -> None:
    """Delete counters that no longer matter: window over and no lock in force.

    Rows another transaction holds are skipped (``SKIP LOCKED``), so pruning never waits for
    or deadlocks with a login being counted.
    """
    stale = (
        select(col(LoginThrottle.id))
        .where(
            sa.or_(
                col(LoginThrottle.locked_until).is_(None), col(LoginThrottle.locked_until) <= now
            )
        )
        .where(
            sa.or_(
                col(LoginThrottle.window_start).is_(None),
                col(LoginThrottle.window_start) <= now - policy.window,
            )
        )
        .with_for_update(skip_locked=True)
    )
    session.execute(sa.delete(LoginThrottle).where(col(LoginThrottle.id).in_(stale)))


def _row_for_update(session: Session, subject: Subject) -> LoginThrottle:
    """The subject's counter row, created if missing, locked until the transaction ends."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {"scope": subject.scope, "key": subject.key, "failures": 0}
    session.execute(
        insert(LoginThrottle).values(values).on_conflict_do_nothing(index_elements=["scope", "key"])
    )
    query = (
        select(LoginThrottle)
        .where(_matches(subject))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.exec(query).one()
