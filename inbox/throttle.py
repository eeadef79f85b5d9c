"""Login throttling: failed logins counted per login name and per client address.

After ``max_failures`` failures of one subject (a login name, or a client address) within
``window``, the subject is locked for ``lock``: every attempt is refused, the right password
too, until the lock ends. A successful login clears its login name's counter (not the
address's: an attacker holding one account must not be able to wipe the count of their
guesses at others; the address only gets back the one attempt the success used).

Check and count are one step (``reserve``), taken before the password is checked: the
attempt is counted as a failure at once, under the subjects' row locks (``SELECT … FOR
UPDATE`` on PostgreSQL; SQLite takes its write lock at ``BEGIN``), always in the same order,
so two requests never deadlock. Parallel attempts therefore cannot pass the limit: once
``max_failures`` attempts are counted (failed, or still being checked), the next one is
refused without a password check and locks the subject. Checking the password then settles
the attempt: a failure may start the lock (``count_failure``), a success gives the counted
attempt back (``count_success``). Issue #9 measured 22 password checks for a limit of 5 with
59 parallel logins when check and count were two steps with the password check between.

The counters live in the ``login_throttle`` table, not in memory, so that all web processes
of a deployment (several uvicorn workers on one PostgreSQL) share them. Login names are
counted whether or not they exist (in lower case, as logins are stored), so the lock says
nothing about which logins exist. An administrator can lift a lock on a login
(``clear_login``) or on an address (``clear_address``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from core.clock import as_utc
from core.config import Settings
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


@dataclass(frozen=True)
class Reservation:
    """The outcome of ``reserve``: refused until ``refused_until`` (None: the attempt may
    check its password), and the locks the refusal started (for the audit trail)."""

    refused_until: datetime | None
    started: list[Lock]


def reserve(
    session: Session, subjects: list[Subject], now: datetime, policy: ThrottlePolicy
) -> Reservation:
    """Check the subjects and count one attempt against each, in one step: refused when a
    lock is in force, or when the subject's allowance is already taken by counted attempts
    (then the lock starts now). Commit before checking the password."""
    rows = [(_row_for_update(session, subject), subject) for subject in subjects]
    ends = [as_utc(r.locked_until) for r, _ in rows if r.locked_until is not None]
    in_force = max((end for end in ends if end > now), default=None)
    if in_force is not None:
        return Reservation(in_force, [])
    for row, _ in rows:
        if row.window_start is None or now - as_utc(row.window_start) >= policy.window:
            row.failures, row.window_start = 0, now
    started = [_lock(row, subject, now, policy) for row, subject in rows if _full(row, subject)]
    if started:
        return Reservation(max(lock.until for lock in started), started)
    for row, _ in rows:
        row.failures += 1
        session.add(row)
    return Reservation(None, [])


def count_failure(
    session: Session, subjects: list[Subject], now: datetime, policy: ThrottlePolicy
) -> tuple[list[Lock], datetime | None]:
    """Settle a reserved attempt whose password was wrong: the locks it started, and until
    when the attempt's subjects are locked (by it or by a parallel attempt), if they are."""
    started: list[Lock] = []
    until: datetime | None = None
    for subject in subjects:
        row = _row_for_update(session, subject)
        if row.locked_until is not None and as_utc(row.locked_until) > now:
            until = max(until or now, as_utc(row.locked_until))
        elif _full(row, subject):
            lock = _lock(row, subject, now, policy)
            started.append(lock)
            until = max(until or now, lock.until)
    return started, until


def count_success(session: Session, subjects: list[Subject]) -> None:
    """Settle a reserved attempt that logged in: the login name's count is cleared, the
    address gets the attempt back."""
    for subject in subjects:
        if subject.scope == LOGIN:
            clear_login(session, subject.key)
            continue
        session.execute(
            sa.update(LoginThrottle)
            .where(_matches(subject))
            .where(col(LoginThrottle.failures) > 0)
            .values(failures=LoginThrottle.failures - 1)
        )


def _full(row: LoginThrottle, subject: Subject) -> bool:
    return row.failures >= subject.max_failures


def _lock(row: LoginThrottle, subject: Subject, now: datetime, policy: ThrottlePolicy) -> Lock:
    """Start the subject's lock. The lock starts a fresh count: after it, the subject gets its
    full allowance."""
    row.locked_until = now + policy.lock
    row.failures, row.window_start = 0, None
    return Lock(subject, row.locked_until)


def clear_login(session: Session, login: str) -> None:
    """Forget a login name's failures and lift its lock (a successful login, an admin)."""
    subject = Subject(LOGIN, login[:KEY_LENGTH], 0)
    session.execute(sa.delete(LoginThrottle).where(_matches(subject)))


def clear_address(session: Session, address: str) -> bool:
    """Forget a client address's failures and lift its lock (an administrator); whether the
    address had a counter."""
    subject = Subject(IP, address[:KEY_LENGTH], 0)
    result = session.execute(sa.delete(LoginThrottle).where(_matches(subject)))
    return bool(getattr(result, "rowcount", 0))


def locked_addresses(session: Session, now: datetime) -> list[tuple[str, datetime]]:
    """Client addresses locked at ``now`` and until when, the latest lock first."""
    rows = session.exec(
        select(LoginThrottle)
        .where(LoginThrottle.scope == IP)
        .where(col(LoginThrottle.locked_until) > now)
        .order_by(col(LoginThrottle.locked_until).desc())
    ).all()
    return [(r.key, as_utc(r.locked_until)) for r in rows if r.locked_until is not None]


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
