"""Supervisor metrics: deadlines met, breaches, response times, load, ratings, volume.

Computed in Python over plain queries, so that SQLite and PostgreSQL give the same numbers
(percentiles and hour buckets differ between their SQL dialects). A period is
``[since, until)`` in UTC; the dashboard passes the last N days.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from core.clock import as_utc
from inbox.models import (
    OPEN_STATUSES,
    Conversation,
    Direction,
    Message,
    Operator,
    Rating,
    SlaClock,
    SlaClockStatus,
)

#: The kinds of item the standard sets a deadline for.
RESPONSE_KINDS = ("mention", "comment", "appeal")

#: Upper bounds (minutes) of the response-time histogram buckets; the last one is open.
RESPONSE_BUCKETS = (15, 30, 60, 120, 240)


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime

    @classmethod
    def last_days(cls, now: datetime, days: int) -> Period:
        return cls(as_utc(now) - timedelta(days=days), as_utc(now))

    def contains(self, moment: datetime | None) -> bool:
        return moment is not None and self.since <= as_utc(moment) < self.until


@dataclass
class DeadlineShare:
    channel: str
    kind: str
    met: int = 0
    late: int = 0  # answered after the deadline
    overdue: int = 0  # deadline passed, still not answered

    @property
    def total(self) -> int:
        return self.met + self.late + self.overdue

    @property
    def share(self) -> float | None:
        """Share answered within the deadline (0..1); None when nothing was due."""
        return self.met / self.total if self.total else None


@dataclass(frozen=True)
class Breach:
    conversation_id: int
    number: str | None
    channel: str
    kind: str
    due_at: datetime
    answered_at: datetime | None
    #: How late: until the answer, or until now while still unanswered.
    late_by: timedelta


@dataclass(frozen=True)
class ResponseTimes:
    count: int
    median: timedelta | None
    p90: timedelta | None
    #: (bucket label, count), see ``RESPONSE_BUCKETS``.
    histogram: list[tuple[str, int]]


@dataclass(frozen=True)
class OperatorLoad:
    operator_id: int
    login: str
    display_name: str
    role: str
    open_assigned: int


@dataclass
class RatingSummary:
    count: int = 0
    average: float | None = None
    #: CSAT: share of ratings 4 or 5.
    csat: float | None = None
    distribution: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(1, 6), 0))
    by_channel: dict[str, tuple[int, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class KBRating:
    kb_entry_id: str
    count: int
    average: float
    low: int  # ratings of 1 or 2


def _finished_clocks(session: Session, period: Period, now: datetime) -> list[SlaClock]:
    """Clocks whose deadline fell in the period (and has passed) or that were answered in it."""
    end = min(period.until, as_utc(now))
    clocks = session.exec(
        select(SlaClock)
        .where(col(SlaClock.status) != SlaClockStatus.cancelled.value)
        .where(col(SlaClock.due_at) >= period.since)
        .where(col(SlaClock.started_at) < period.until)
    ).all()
    result = []
    for clock in clocks:
        if (
            clock.status in (SlaClockStatus.met.value, SlaClockStatus.breached_met.value)
            or as_utc(clock.due_at) <= end
        ):
            result.append(clock)
    return result


def _conversations(session: Session, ids: set[int]) -> dict[int, Conversation]:
    if not ids:
        return {}
    rows = session.exec(select(Conversation).where(col(Conversation.id).in_(ids))).all()
    return {c.id: c for c in rows if c.id is not None}


def deadline_shares(session: Session, period: Period, now: datetime) -> list[DeadlineShare]:
    """Share answered within the deadline per channel and kind (only items whose deadline came)."""
    clocks = _finished_clocks(session, period, now)
    conversations = _conversations(session, {c.conversation_id for c in clocks})
    shares: dict[tuple[str, str], DeadlineShare] = {}
    for clock in clocks:
        conversation = conversations[clock.conversation_id]
        key = (conversation.channel, clock.kind)
        share = shares.setdefault(key, DeadlineShare(*key))
        if clock.status == SlaClockStatus.met.value:
            share.met += 1
        elif clock.status == SlaClockStatus.breached_met.value:
            share.late += 1
        else:
            share.overdue += 1
    return sorted(shares.values(), key=lambda s: (s.channel, s.kind))


def total_share(shares: list[DeadlineShare]) -> DeadlineShare:
    total = DeadlineShare("all", "all")
    for share in shares:
        total.met += share.met
        total.late += share.late
        total.overdue += share.overdue
    return total


def breaches(session: Session, period: Period, now: datetime, limit: int = 50) -> list[Breach]:
    """Missed deadlines, most recent deadline first."""
    clocks = [
        c for c in _finished_clocks(session, period, now) if c.status != SlaClockStatus.met.value
    ]
    conversations = _conversations(session, {c.conversation_id for c in clocks})
    result = []
    for clock in clocks:
        conversation = conversations[clock.conversation_id]
        answered = as_utc(clock.met_at) if clock.met_at else None
        result.append(
            Breach(
                conversation_id=clock.conversation_id,
                number=conversation.number,
                channel=conversation.channel,
                kind=clock.kind,
                due_at=as_utc(clock.due_at),
                answered_at=answered,
                late_by=(answered or as_utc(now)) - as_utc(clock.due_at),
            )
        )
    result.sort(key=lambda b: b.due_at, reverse=True)
    return result[:limit]


def percentile(values: list[float], percent: float) -> float | None:
    """Nearest-rank percentile (a value that occurred, no interpolation)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _bucket_labels() -> list[str]:
    labels = []
    lower = 0
    for upper in RESPONSE_BUCKETS:
        labels.append(f"{_minutes_label(lower)}–{_minutes_label(upper)}")
        lower = upper
    labels.append(f"> {_minutes_label(lower)}")
    return labels


def _minutes_label(minutes: int) -> str:
    return f"{minutes // 60} ч" if minutes >= 60 and minutes % 60 == 0 else f"{minutes} мин"


def response_times(session: Session, period: Period) -> ResponseTimes:
    """Time from publication to the first response, for items first answered in the period."""
    rows = session.exec(
        select(Conversation.opened_at, Conversation.first_response_at)
        .where(col(Conversation.kind).in_(RESPONSE_KINDS))
        .where(col(Conversation.first_response_at).is_not(None))
        .where(col(Conversation.first_response_at) >= period.since)
        .where(col(Conversation.first_response_at) < period.until)
    ).all()
    seconds = [
        max(0.0, (as_utc(answered) - as_utc(opened)).total_seconds())
        for opened, answered in rows
        if answered is not None
    ]
    counts = [0] * (len(RESPONSE_BUCKETS) + 1)
    for value in seconds:
        index = next(
            (i for i, upper in enumerate(RESPONSE_BUCKETS) if value < upper * 60),
            len(RESPONSE_BUCKETS),
        )
        counts[index] += 1
    mid, p90 = median(seconds), percentile(seconds, 90)
    return ResponseTimes(
        count=len(seconds),
        median=timedelta(seconds=mid) if mid is not None else None,
        p90=timedelta(seconds=p90) if p90 is not None else None,
        histogram=list(zip(_bucket_labels(), counts, strict=True)),
    )


def operator_load(session: Session) -> list[OperatorLoad]:
    """Open conversations assigned to each active operator, busiest first."""
    counts = dict(
        session.exec(
            select(Conversation.assignee_id, func.count())
            .where(col(Conversation.assignee_id).is_not(None))
            .where(col(Conversation.status).in_([s.value for s in OPEN_STATUSES]))
            .group_by(col(Conversation.assignee_id))
        ).all()
    )
    operators = session.exec(select(Operator).where(col(Operator.active).is_(True))).all()
    loads = [
        OperatorLoad(o.id or 0, o.login, o.display_name, o.role, int(counts.get(o.id, 0)))
        for o in operators
    ]
    return sorted(loads, key=lambda load: (-load.open_assigned, load.login))


def volume_by_hour(session: Session, period: Period, timezone: str) -> list[int]:
    """Inbound messages per hour of the day (local time of the agency), 24 numbers."""
    zone = ZoneInfo(timezone)
    stamps = session.exec(
        select(Message.published_at)
        .where(Message.direction == Direction.inbound.value)
        .where(col(Message.published_at) >= period.since)
        .where(col(Message.published_at) < period.until)
    ).all()
    hours = Counter(as_utc(stamp).astimezone(zone).hour for stamp in stamps)
    return [hours.get(hour, 0) for hour in range(24)]


def ratings(session: Session, period: Period | None = None) -> RatingSummary:
    """CSAT and the 1-5 distribution, overall and per channel."""
    query = select(Rating.score, Conversation.channel).join(
        Conversation, col(Conversation.id) == col(Rating.conversation_id)
    )
    if period is not None:
        query = query.where(col(Rating.rated_at) >= period.since).where(
            col(Rating.rated_at) < period.until
        )
    rows = session.exec(query).all()
    summary = RatingSummary()
    if not rows:
        return summary
    scores = [score for score, _ in rows]
    summary.count = len(scores)
    summary.average = sum(scores) / len(scores)
    summary.csat = sum(1 for s in scores if s >= 4) / len(scores)
    for score in scores:
        summary.distribution[score] = summary.distribution.get(score, 0) + 1
    per_channel: dict[str, list[int]] = defaultdict(list)
    for score, channel in rows:
        per_channel[channel].append(score)
    summary.by_channel = {
        channel: (len(values), sum(values) / len(values))
        for channel, values in sorted(per_channel.items())
    }
    return summary


def low_rated_kb_answers(
    session: Session, period: Period | None = None, threshold: float = 3.5
) -> list[KBRating]:
    """Knowledge-base answers whose average rating is below ``threshold``, worst first."""
    query = select(Rating.kb_entry_id, Rating.score).where(col(Rating.kb_entry_id).is_not(None))
    if period is not None:
        query = query.where(col(Rating.rated_at) >= period.since).where(
            col(Rating.rated_at) < period.until
        )
    per_entry: dict[str, list[int]] = defaultdict(list)
    for entry_id, score in session.exec(query).all():
        if entry_id:
            per_entry[entry_id].append(score)
    result = [
        KBRating(entry, len(scores), sum(scores) / len(scores), sum(1 for s in scores if s <= 2))
        for entry, scores in per_entry.items()
    ]
    return sorted((r for r in result if r.average < threshold), key=lambda r: (r.average, -r.count))


@dataclass(frozen=True)
class ConversationRow:
    """One line of the CSV export."""

    number: str | None
    channel: str
    kind: str
    status: str
    opened_at: datetime
    due_at: datetime | None
    first_response_at: datetime | None
    response_minutes: float | None
    sla: str
    assignee: str | None


def conversation_rows(session: Session, period: Period) -> list[ConversationRow]:
    """Conversations opened in the period with their deadline outcome, for CSV export."""
    conversations = session.exec(
        select(Conversation)
        .where(col(Conversation.opened_at) >= period.since)
        .where(col(Conversation.opened_at) < period.until)
        .order_by(col(Conversation.opened_at), col(Conversation.id))
    ).all()
    ids = {c.id for c in conversations if c.id is not None}
    first_clock: dict[int, SlaClock] = {}
    if ids:
        for found in session.exec(
            select(SlaClock)
            .where(col(SlaClock.conversation_id).in_(ids))
            .order_by(col(SlaClock.id))
        ).all():
            first_clock.setdefault(found.conversation_id, found)
    logins = {o.id: o.login for o in session.exec(select(Operator)).all()}
    rows = []
    for c in conversations:
        clock = first_clock.get(c.id or 0)
        response = (
            (as_utc(c.first_response_at) - as_utc(c.opened_at)).total_seconds() / 60
            if c.first_response_at
            else None
        )
        rows.append(
            ConversationRow(
                number=c.number,
                channel=c.channel,
                kind=c.kind,
                status=c.status,
                opened_at=as_utc(c.opened_at),
                due_at=as_utc(clock.due_at) if clock else None,
                first_response_at=as_utc(c.first_response_at) if c.first_response_at else None,
                response_minutes=round(response, 1) if response is not None else None,
                sla=clock.status if clock else "none",
                assignee=logins.get(c.assignee_id) if c.assignee_id else None,
            )
        )
    return rows
