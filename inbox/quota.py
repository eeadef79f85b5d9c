"""Quotas counted in the database: "at most N new web-chat conversations an hour (and a
minute) from one client address / one chat session".

Each quota is a sliding window (an hour, a minute), estimated from two fixed clock windows
(the way Cloudflare's and similar limiters do it): the use in the last hour is taken as this
clock hour's count plus the previous one's weighted by how much of it is still inside the
last 60 minutes. That needs one row per key and window and never lets a client double its
allowance at the turn of the hour, as plain fixed windows would. The estimate spreads the
previous window's uses evenly over it, so after a burst ``Retry-After`` may say up to two
windows.

Taking a unit is one conditional ``UPDATE … SET count = count + 1 WHERE count + 1 <= budget
RETURNING count`` per quota, all in one transaction: atomic on PostgreSQL (the row is locked
and the condition re-checked after a concurrent update) and on SQLite (``BEGIN IMMEDIATE``:
one writer), so parallel requests from many processes can never pass a quota together. When
one quota refuses, the transaction is rolled back: a refused request uses none of the
others, and refused requests are not counted at all (a client that stops gets its allowance
back as the hour slides, however hard it tried before).
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, select

from inbox.models import QuotaCounter

HOUR = 3600
MINUTE = 60
KEY_LENGTH = 255


@dataclass(frozen=True)
class Quota:
    """At most ``limit`` uses of ``scope`` per key in any ``window`` seconds; 0 turns it off.
    A scope has one window (the rows count clock windows of that length)."""

    scope: str
    limit: int
    window: int = HOUR


@dataclass(frozen=True)
class Refused:
    quota: Quota
    #: Seconds until the key may try again (for ``Retry-After``).
    retry_after: int


def address_key(host: str) -> str:
    """The key of a client address: an IPv6 client owns a whole /64 (it can pick any address
    in it), so IPv6 is counted per /64; an IPv4-mapped IPv6 address as its IPv4 address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:KEY_LENGTH]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def take(
    factory: sessionmaker[Session], charges: list[tuple[Quota, str]], now: datetime
) -> Refused | None:
    """Use one unit of each ``(quota, key)``; None when every quota allowed it, else the
    first refusal (and nothing is used)."""
    active = [(q, key[:KEY_LENGTH]) for q, key in charges if q.limit > 0]
    if not active:
        return None
    seconds = now.timestamp()
    with factory() as session:
        for quota, key in active:
            slot = int(seconds // quota.window)
            elapsed = (seconds % quota.window) / quota.window
            previous = _count(session, quota, key, slot - 1)
            budget = quota.limit - previous * (1 - elapsed)
            if _ensure_row(session, quota, key, slot):
                _prune(session, quota, slot)
            taken = session.execute(
                sa.update(QuotaCounter)
                .where(col(QuotaCounter.scope) == quota.scope)
                .where(col(QuotaCounter.key) == key)
                .where(col(QuotaCounter.slot) == slot)
                .where(col(QuotaCounter.count) <= budget - 1)
                .values(count=QuotaCounter.count + 1)
                .returning(col(QuotaCounter.count))
            ).first()
            if taken is None:
                current = _count(session, quota, key, slot)
                session.rollback()
                share = retry_after(quota.limit, previous, current, elapsed)
                return Refused(quota, max(1, math.ceil(share * quota.window)))
        session.commit()
    return None


def retry_after(limit: int, previous: int, current: int, elapsed: float) -> float:
    """How long (in windows) until the sliding estimate leaves room for one more use, if
    nothing else is used meanwhile. ``elapsed``: the share of the current window gone."""
    room = limit - current - 1  # what the previous window's weighted count may still be
    if room >= 0:
        needed = 1.0 - room / previous if previous else 0.0
        return max(0.0, needed - elapsed)
    # this window alone is full: wait into the next one, where it weighs less and less
    needed = 1.0 - (limit - 1) / current if current else 0.0
    return (1.0 - elapsed) + max(0.0, needed)


def _count(session: Session, quota: Quota, key: str, slot: int) -> int:
    found = session.exec(
        select(QuotaCounter.count)
        .where(QuotaCounter.scope == quota.scope)
        .where(QuotaCounter.key == key)
        .where(QuotaCounter.slot == slot)
    ).first()
    return int(found or 0)


def _ensure_row(session: Session, quota: Quota, key: str, slot: int) -> bool:
    """Create the key's row for this window; whether it was created now."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = session.execute(
        insert(QuotaCounter)
        .values(scope=quota.scope, key=key, slot=slot, count=0)
        .on_conflict_do_nothing(index_elements=["scope", "key", "slot"])
    )
    return bool(getattr(result, "rowcount", 0))


def _prune(session: Session, quota: Quota, slot: int) -> None:
    """Forget the scope's windows that no longer count (older than the previous one). Runs
    when a row is created, so at most once per key and window; rows another transaction
    holds are skipped."""
    stale = (
        select(col(QuotaCounter.id))
        .where(col(QuotaCounter.scope) == quota.scope)
        .where(col(QuotaCounter.slot) < slot - 1)
        .limit(1000)
        .with_for_update(skip_locked=True)
    )
    session.execute(sa.delete(QuotaCounter).where(col(QuotaCounter.id).in_(stale)))


class RecentRefusals:
    """Refusals this process gave, remembered until their ``Retry-After`` ends (at least
    ``hold``), so that a flood's next requests are refused without touching the database (on
    SQLite every transaction takes the one write lock the operators' pages wait for, and a
    crowd of quota queries held it nearly all the time). Only a shortcut: the database stays
    the judge. When a remembered refusal has ended, one request at a time asks the database
    again for that key (the others are refused for a second meanwhile), so the end of a
    refusal does not let the whole flood in to query. At most ``max_keys`` keys, the oldest
    forgotten first."""

    def __init__(self, max_keys: int = 10_000, hold: timedelta = timedelta(seconds=5)) -> None:
        self.max_keys = max_keys
        self.hold = hold
        self._until: OrderedDict[tuple[str, str], tuple[Quota, datetime]] = OrderedDict()
        self._asking: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def check(self, charges: list[tuple[Quota, str]], now: datetime) -> Refused | None:
        """A refusal still in force for one of the charges; None: ask the database (then
        call ``done``), which this request now does for the keys refused before."""
        with self._lock:
            claimed: list[tuple[str, str]] = []
            for quota, key in charges:
                name = (quota.scope, key[:KEY_LENGTH])
                found = self._until.get(name)
                if found is None:
                    continue
                if found[1] > now:
                    seconds = (found[1] - now).total_seconds()
                    return Refused(found[0], max(1, math.ceil(seconds)))
                if name in self._asking:  # another request is asking right now
                    return Refused(found[0], 1)
                claimed.append(name)
            self._asking.update(claimed)
            return None

    def done(
        self, charges: list[tuple[Quota, str]], refused: Refused | None, now: datetime
    ) -> None:
        """What the database said for ``charges`` (after ``check`` returned None)."""
        with self._lock:
            for quota, key in charges:
                self._asking.discard((quota.scope, key[:KEY_LENGTH]))
            if refused is None:
                return
            key = next(k for q, k in charges if q == refused.quota)
            wait = max(timedelta(seconds=refused.retry_after), self.hold)
            self._until[(refused.quota.scope, key[:KEY_LENGTH])] = (refused.quota, now + wait)
            self._until.move_to_end((refused.quota.scope, key[:KEY_LENGTH]))
            while len(self._until) > self.max_keys:
                self._until.popitem(last=False)
