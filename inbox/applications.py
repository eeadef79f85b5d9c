"""What the agency does with an application: find it, list it, move its status on.

One function changes a status, ``change_status``, for every door: operators in the UI, the
back-office system through ``/api/v1`` and ``otklik application set-status``. In one
transaction it checks the move against ``application_status.MOVES``, writes the
``ApplicationStatusChange`` row, updates the application and stores the citizen's
notification in the outbox (the ``message`` table) on the conversation the application came
from. So a change and its message exist together or not at all, whatever crashes; the
message's idempotency key is derived from the change (unique), so there is never a second
one; and the outbox delivers it once (inbox/outbox.py).

A back-office retry sends the same ``Idempotency-Key``: the change it made is found (unique
per API token) and returned instead of being applied twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from core.clock import as_utc
from inbox import audit, workflow
from inbox.application_status import (
    AGENCY_TURN,
    MOVES,
    NEEDS,
    ApplicationStatus,
    allowed_moves,
    parse,
)
from inbox.application_texts import notice_buttons, status_notice
from inbox.models import (
    Application,
    ApplicationStatusChange,
    Conversation,
    Message,
    Operator,
)
from rules.applications import ApplicationRules

#: Longest comment or reason the citizen gets (a chat message, not a letter).
MAX_COMMENT = 1000
MAX_REASON = 1000
#: Longest internal note.
MAX_NOTE = 2000
#: An expected date further ahead than this is a typo (or an attack), not a plan.
MAX_YEARS_AHEAD = 5
#: What the message is for, in ``Message.meta["purpose"]``: news of the citizen's own
#: application, which needs no consent for proactive service (issue #10, part 2).
PURPOSE = "application_status"

#: «З-2026-000042», also «Z-2026-000042» or «3-2026-42» (ASCII for back-office systems).
_NUMBER = re.compile(r"^\s*[ЗзZz3]\s*-?\s*(\d{4})\s*-?\s*(\d{1,9})\s*$")
#: Characters refused in what people type for the citizen: controls (except new lines and
#: tabs), direction overrides and isolates that can make text read other than it is stored.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class ApplicationError(ValueError):
    """A request that cannot be done; the message is for the person who made it (Russian).

    ``kind``: ``invalid`` (bad input: 422), ``not_found`` (404), ``conflict`` (the move is not
    allowed from the current status, or someone changed it meanwhile: 409),
    ``idempotency`` (the key was used for another request: 422).
    """

    def __init__(self, message: str, kind: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


def application_number(year: int, application_id: int) -> str:
    """``З-2026-000042``: the year of submission and the row id."""
    return f"З-{year}-{application_id:06d}"


def normalize_number(text: str) -> str | None:
    """The canonical number of ``text`` (``Z-2026-42`` → ``З-2026-000042``), or None."""
    match = _NUMBER.match(text) if len(text) <= 40 else None
    return application_number(int(match.group(1)), int(match.group(2))) if match else None


def clean_text(value: str | None, field_name: str, limit: int) -> str | None:
    """Stripped text, None when empty; refuses what a person would not mean to send."""
    if value is None:
        return None
    text = value.replace("\r\n", "\n").strip()
    if not text:
        return None
    if len(text) > limit:
        raise ApplicationError(
            f"Слишком длинный текст: не больше {limit} символов.", field=field_name
        )
    for char in text:
        if char in "\n\t":
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Cn") or char in _BIDI:
            raise ApplicationError(
                f"В тексте есть недопустимый символ U+{ord(char):04X}.", field=field_name
            )
    return text


@dataclass(frozen=True)
class Actor:
    """Who changes a status: an operator, a back-office token or the command line."""

    kind: str
    name: str
    operator_id: int | None = None
    api_token_id: int | None = None

    @classmethod
    def operator(cls, operator: Operator) -> Actor:
        return cls("operator", operator.login, operator_id=operator.id)

    @classmethod
    def api(cls, token_id: int, token_name: str) -> Actor:
        return cls("api", token_name, api_token_id=token_id)

    @classmethod
    def cli(cls, user: str) -> Actor:
        return cls("cli", user[:100] or "cli")

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass
class ChangeRequest:
    """A requested change, as typed or sent (cleaned and checked by ``change_status``)."""

    status: str
    comment: str | None = None
    reason: str | None = None
    expected_date: date | None = None
    internal_note: str | None = None

    def fingerprint(self, number: str) -> str:
        """What makes two requests the same one (for idempotency keys)."""
        data = {
            "number": number,
            "status": self.status,
            "comment": self.comment or None,
            "reason": self.reason or None,
            "expected_date": self.expected_date.isoformat() if self.expected_date else None,
            "internal_note": self.internal_note or None,
        }
        raw = json.dumps(data, ensure_ascii=True, sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()


@dataclass
class ChangeOutcome:
    application: Application
    change: ApplicationStatusChange
    #: The change was made by an earlier request with the same idempotency key.
    replayed: bool = False


def lock_application(session: Session, application_id: int) -> Application | None:
    """Load an application for changing it, locked against other writers until commit
    (``FOR NO KEY UPDATE``: status change rows that point at it can still be inserted)."""
    query = select(Application).where(Application.id == application_id)
    return session.exec(query.with_for_update(key_share=True)).first()


def find_by_number(session: Session, number: str) -> Application | None:
    canonical = normalize_number(number)
    if canonical is None:
        return None
    return session.exec(select(Application).where(Application.number == canonical)).first()


def today_in(zone: ZoneInfo, now: datetime) -> date:
    return as_utc(now).astimezone(zone).date()


def _check(
    request: ChangeRequest, current: ApplicationStatus, today: date
) -> tuple[ApplicationStatus, str | None, str | None, str | None]:
    """The target status and the cleaned comment, reason and note; or ApplicationError."""
    target = parse(request.status)
    if target is None:
        known = ", ".join(s.value for s in ApplicationStatus)
        raise ApplicationError(
            f"Неизвестный статус «{request.status[:40]}». Есть: {known}.", field="status"
        )
    comment = clean_text(request.comment, "comment", MAX_COMMENT)
    reason = clean_text(request.reason, "reason", MAX_REASON)
    note = clean_text(request.internal_note, "internal_note", MAX_NOTE)
    if target == current:
        raise ApplicationError("Заявление уже в этом статусе.", "conflict", "status")
    if target not in MOVES[current]:
        allowed = ", ".join(s.value for s in allowed_moves(current)) or "никуда"
        raise ApplicationError(
            f"Из статуса «{current.value}» нельзя перейти в «{target.value}». Можно: {allowed}.",
            "conflict",
            "status",
        )
    needs = NEEDS[target]
    if needs.comment and not comment:
        raise ApplicationError("Напишите жителю, какие сведения нужны.", field="comment")
    if needs.reason and not reason:
        raise ApplicationError("Напишите причину отказа: почему сейчас нельзя.", field="reason")
    if reason and not needs.reason:
        raise ApplicationError("Причина пишется только при отказе.", field="reason")
    if request.expected_date is not None:
        if not needs.expected_date:
            raise ApplicationError(
                "Срок указывается только для статусов «в работе» и «отказано».",
                field="expected_date",
            )
        if request.expected_date < today:
            raise ApplicationError(
                "Срок уже прошёл: укажите дату не раньше сегодняшней.", field="expected_date"
            )
        if request.expected_date > today + timedelta(days=366 * MAX_YEARS_AHEAD):
            raise ApplicationError(
                f"Срок дальше {MAX_YEARS_AHEAD} лет: проверьте дату.", field="expected_date"
            )
    return target, comment, reason, note


def change_status(
    session: Session,
    application_id: int,
    request: ChangeRequest,
    actor: Actor,
    now: datetime,
    zone: ZoneInfo,
    *,
    seen_version: int | None = None,
    idempotency_key: str | None = None,
) -> ChangeOutcome:
    """Move the application on, record who did it, and queue the citizen's notification.

    Not committed: the caller commits (the change, the application and the message together).
    """
    application = lock_application(session, application_id)
    if application is None or application.number is None:
        raise ApplicationError("Заявление не найдено.", "not_found")
    request_hash = request.fingerprint(application.number) if idempotency_key else None
    if idempotency_key:
        earlier = session.exec(
            select(ApplicationStatusChange)
            .where(ApplicationStatusChange.api_token_id == actor.api_token_id)
            .where(ApplicationStatusChange.idempotency_key == idempotency_key)
        ).first()
        if earlier is not None:
            if earlier.request_hash != request_hash or earlier.application_id != application_id:
                raise ApplicationError(
                    "Этот ключ идемпотентности уже использован для другого запроса.", "idempotency"
                )
            return ChangeOutcome(application, earlier, replayed=True)
    if seen_version is not None and seen_version != application.version:
        raise ApplicationError(
            "Заявление изменилось, пока вы его читали. Проверьте историю и повторите.",
            "conflict",
            "version",
        )
    current = parse(application.status)
    if current is None:
        raise ApplicationError(f"Неизвестный текущий статус «{application.status}».", "conflict")
    target, comment, reason, note = _check(request, current, today_in(zone, now))
    change = ApplicationStatusChange(
        application_id=application_id,
        from_status=current.value,
        to_status=target.value,
        changed_at=now,
        actor_kind=actor.kind,
        actor=actor.name[:100],
        operator_id=actor.operator_id,
        api_token_id=actor.api_token_id,
        comment=comment,
        reason=reason,
        expected_date=request.expected_date,
        internal_note=note,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    session.add(change)
    session.flush()
    application.status = target.value
    application.expected_date = request.expected_date
    application.updated_at = now
    application.version += 1
    message = _notify(session, application, change, actor, now)
    if message is not None:
        change.message_id = message.id
    audit.record(
        session, "application_status_changed", now, conversation_id=application.conversation_id,
        operator_id=actor.operator_id, actor=actor.label, number=application.number,
        change_id=change.id, from_status=current.value, to_status=target.value,
        message_id=change.message_id,
    )  # fmt: skip
    session.flush()
    return ChangeOutcome(application, change)


def notification_text(application: Application, change: ApplicationStatusChange) -> str:
    assert application.number is not None
    return status_notice(
        application.number, change.from_status, change.to_status,
        comment=change.comment, reason=change.reason, expected_date=change.expected_date,
    )  # fmt: skip


def _notify(
    session: Session,
    application: Application,
    change: ApplicationStatusChange,
    actor: Actor,
    now: datetime,
) -> Message | None:
    """The citizen's message in the outbox, on the conversation the application came from.

    It is news, not a reply: the conversation's state and deadline stay as they are (the
    conversation may be closed long ago; the channel's thread is the same). The key is the
    change's, unique in the outbox: there cannot be two messages for one change.
    """
    if application.conversation_id is None:
        return None
    conversation = session.get(Conversation, application.conversation_id)
    if conversation is None:
        return None
    assert application.number is not None
    target = {k: v for k, v in conversation.reply_target.items() if k != "reply_to_message_id"}
    operator = session.get(Operator, actor.operator_id) if actor.operator_id else None
    message = workflow.queue_outbound(
        session, conversation, notification_text(application, change), now,
        operator=operator, reply_target=target,
    )  # fmt: skip
    message.idempotency_key = f"application-status-{change.id}"
    message.meta = {
        "purpose": PURPOSE,
        "application": application.number,
        "status_change_id": change.id,
        "buttons": notice_buttons(application.number, change.to_status),
        "after_close": conversation.status == "closed",
    }
    session.flush()
    return message


def history(session: Session, application_id: int) -> list[ApplicationStatusChange]:
    return list(
        session.exec(
            select(ApplicationStatusChange)
            .where(ApplicationStatusChange.application_id == application_id)
            .order_by(col(ApplicationStatusChange.id))
        )
    )


# -- lists ----------------------------------------------------------------------------------


@dataclass
class ApplicationFilter:
    """What the list pages, the API and the CLI filter by (all optional)."""

    statuses: list[str] = field(default_factory=list)
    service: str | None = None
    channel: str | None = None
    #: Submitted on or after / on or before these days (the agency's time zone).
    created_from: date | None = None
    created_to: date | None = None
    #: Only the overdue ones (``is_overdue``).
    overdue: bool = False
    #: Changed at or after this moment (a back office polling for news).
    updated_since: datetime | None = None
    citizen_id: int | None = None


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight of ``day`` in the agency's zone, in UTC; the first or last representable
    moment at the ends of the calendar (0001-01-01 east of UTC is before year 1: a 500 once)."""
    try:
        return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    except OverflowError:
        return (
            datetime.min.replace(tzinfo=UTC) if day.year == 1 else datetime.max.replace(tzinfo=UTC)
        )


def _overdue_clause(now: datetime, today: date, rules: ApplicationRules) -> Any:
    """SQL for ``is_overdue``: waiting for the agency, and past the date given or, without
    one, past the time the rules allow for its service."""

    def cutoff(days: int) -> Any:
        return sa.literal(as_utc(now) - timedelta(days=days), sa.DateTime(timezone=True))

    limit = (
        sa.case(
            *((col(Application.service) == s, cutoff(d)) for s, d in rules.services.items()),
            else_=cutoff(rules.answer_within_days),
        )
        if rules.services
        else cutoff(rules.answer_within_days)
    )
    return sa.and_(
        col(Application.status).in_([s.value for s in AGENCY_TURN]),
        sa.or_(
            sa.and_(
                col(Application.expected_date).is_not(None),
                col(Application.expected_date) < sa.literal(today, sa.Date()),
            ),
            sa.and_(col(Application.expected_date).is_(None), col(Application.created_at) < limit),
        ),
    )


def is_overdue(
    application: Application, now: datetime, today: date, rules: ApplicationRules
) -> bool:
    if parse(application.status) not in AGENCY_TURN:
        return False
    if application.expected_date is not None:
        return application.expected_date < today
    allowed = timedelta(days=rules.days_for(application.service))
    return as_utc(application.created_at) + allowed < as_utc(now)


def due_date(application: Application, zone: ZoneInfo, rules: ApplicationRules) -> date:
    """The day an answer is due: the date given, or submission plus the rules' days."""
    if application.expected_date is not None:
        return application.expected_date
    due = as_utc(application.created_at) + timedelta(days=rules.days_for(application.service))
    return due.astimezone(zone).date()


def _where(
    query: Any, filters: ApplicationFilter, now: datetime, zone: ZoneInfo, rules: ApplicationRules
) -> Any:
    if filters.statuses:
        query = query.where(col(Application.status).in_(filters.statuses))
    if filters.service:
        query = query.where(Application.service == filters.service)
    if filters.channel:
        query = query.where(Conversation.channel == filters.channel)
    if filters.created_from:
        query = query.where(col(Application.created_at) >= _day_start(filters.created_from, zone))
    if filters.created_to:
        end = _day_start(
            min(filters.created_to, date.max - timedelta(days=1)) + timedelta(days=1), zone
        )
        query = query.where(col(Application.created_at) < end)
    if filters.updated_since:
        query = query.where(col(Application.updated_at) >= as_utc(filters.updated_since))
    if filters.citizen_id is not None:
        query = query.where(Application.citizen_id == filters.citizen_id)
    if filters.overdue:
        query = query.where(_overdue_clause(now, today_in(zone, now), rules))
    return query


@dataclass
class Listed:
    application: Application
    #: The channel it came from (None: not from a conversation).
    channel: str | None


def search(
    session: Session,
    filters: ApplicationFilter,
    now: datetime,
    zone: ZoneInfo,
    rules: ApplicationRules,
    *,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Listed], int]:
    """One page of applications, newest first, and how many match in all."""
    joined = select(Application, Conversation.channel).outerjoin(
        Conversation, col(Conversation.id) == col(Application.conversation_id)
    )
    rows = session.exec(
        _where(joined, filters, now, zone, rules)
        .order_by(col(Application.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    counted = select(func.count(col(Application.id))).outerjoin(
        Conversation, col(Conversation.id) == col(Application.conversation_id)
    )
    total = int(session.exec(_where(counted, filters, now, zone, rules)).one())
    return [Listed(a, c) for a, c in rows], total


def services(session: Session) -> dict[str, str]:
    """Service ids that applications have, with the title the citizen chose them by."""
    latest = select(func.max(col(Application.id))).group_by(col(Application.service)).limit(200)
    rows = session.exec(
        select(Application.service, Application.fields).where(col(Application.id).in_(latest))
    ).all()
    found = {s: str((f or {}).get("service_title") or s) for s, f in rows}
    return dict(sorted(found.items(), key=lambda item: item[1]))
