"""Hourly quotas counted in the database: "at most N new web-chat conversations an hour from
one client address / one chat session".

Each quota is a sliding hour, estimated from two fixed clock hours (the way Cloudflare and
nginx-style limiters do it): the use in the last 60 minutes is taken as this hour's count
plus the previous hour's count weighted by how much of it is still inside the 60 minutes.
That needs one row per key and hour and never lets a client double its allowance at the
turn of the hour, as plain fixed hours would. The estimate spreads the previous hour's uses
evenly over it, so after a burst ``Retry-After`` may say up to two hours.

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
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, select

from inbox.models import QuotaCounter

HOUR = 3600
KEY_LENGTH = 255


@dataclass(frozen=True)
class Quota:
    """At most ``per_hour`` uses of ``scope`` per key in any 60 minutes; 0 turns it off."""

    scope: str
    per_hour: int


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
    active = [(q, key[:KEY_LENGTH]) for q, key in charges if q.per_hour > 0]
    if not active:
        return None
    seconds = now.timestamp()
    hour = int(seconds // HOUR)
    elapsed = (seconds % HOUR) / HOUR
    with factory() as session:
        for quota, key in active:
            previous = _count(session, quota, key, hour - 1)
            budget = quota.per_hour - previous * (1 - elapsed)
            if _ensure_row(session, quota, key, hour):
                _prune(session, hour)
            taken = session.execute(
                sa.update(QuotaCounter)
                .where(col(QuotaCounter.scope) == quota.scope)
                .where(col(QuotaCounter.key) == key)
                .where(col(QuotaCounter.hour) == hour)
                .where(col(QuotaCounter.count) <= budget - 1)
                .values(count=QuotaCounter.count + 1)
                .returning(col(QuotaCounter.count))
            ).first()
            if taken is None:
                current = _count(session, quota, key, hour)
                session.rollback()
                wait = retry_after(quota.per_hour, previous, current, elapsed)
                return Refused(quota, wait)
        session.commit()
    return None


def retry_after(limit: int, previous: int, current: int, elapsed: float) -> int:
    """Seconds until the sliding estimate leaves room for one more use, if nothing else is
    used meanwhile. ``elapsed``: the share of the current hour gone (0..1)."""
    room = limit - current - 1  # what the previous hour's weighted count may still be
    if room >= 0:
        needed = 1.0 - room / previous if previous else 0.0
        wait = max(0.0, needed - elapsed)
    else:  # this hour alone is full: wait into the next one, where it weighs less and less
        needed = 1.0 - (limit - 1) / current if current else 0.0
        wait = (1.0 - elapsed) + max(0.0, needed)
    return max(1, math.ceil(wait * HOUR))


def _count(session: Session, quota: Quota, key: str, hour: int) -> int:
    found = session.exec(
        select(QuotaCounter.count)
        .where(QuotaCounter.scope == quota.scope)
        .where(QuotaCounter.key == key)
        .where(QuotaCounter.hour == hour)
    ).first()
    return int(found or 0)


def _ensure_row(session: Session, quota: Quota, key: str, hour: int) -> bool:
    """Create the key's row for this hour; whether it was created now."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = session.execute(
        insert(QuotaCounter)
        .values(scope=quota.scope, key=key, hour=hour, count=0)
        .on_conflict_do_nothing(index_elements=["scope", "key", "hour"])
    )
    return bool(getattr(result, "rowcount", 0))


def _prune(session: Session, hour: int) -> None:
    """Forget hours that no longer count (older than the previous one). Runs when a row is
    created, so at most once per key and hour; rows another transaction holds are skipped."""
    stale = (
        select(col(QuotaCounter.id))
        .where(col(QuotaCounter.hour) < hour - 1)
        .limit(1000)
        .with_for_update(skip_locked=True)
    )
    session.execute(sa.delete(QuotaCounter).where(col(QuotaCounter.id).in_(stale)))
