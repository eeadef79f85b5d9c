"""``/api/v1/applications``: the agency's back-office system reads applications and moves
their status on (docs/api.md). Authenticated by API tokens (``inbox/web/api/auth.py``).

An application is addressed by its number, ``З-2026-000042``; ``Z-2026-000042`` (ASCII) is
the same. A status change may carry an ``Idempotency-Key`` header: a retry with the same key
and body returns the first answer (``Idempotent-Replayed: true``) and changes nothing; the
same key with another body is refused (422).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from core.clock import as_utc
from inbox import applications
from inbox.application_status import LABELS, MOVES, NEEDS, ApplicationStatus, allowed_moves
from inbox.applications import (
    MAX_COMMENT,
    MAX_NOTE,
    MAX_REASON,
    Actor,
    ApplicationError,
    ApplicationFilter,
    ChangeRequest,
)
from inbox.models import Application, ApplicationStatusChange, Conversation, Message
from inbox.runtime import Runtime
from inbox.web.api.auth import ReaderDep, WriterDep
from inbox.web.api.errors import ApiRoute, ErrorOut
from inbox.web.deps import RuntimeDep
from rules.applications import ApplicationRules, application_rules

router = APIRouter(prefix="/api/v1/applications", tags=["applications"], route_class=ApiRoute)

#: Channels an application can come from (the inbox's channel names).
CHANNEL_PATTERN = r"^[a-z]{1,20}$"


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No token, or an unknown or revoked one"},
    403: {"model": ErrorOut, "description": "The token lacks the scope"},
    429: {"model": ErrorOut, "description": "Over the token's rate; see Retry-After"},
}
NUMBER_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No application with this number"},
    422: {"model": ErrorOut, "description": "Not an application number, or invalid input"},
}

NumberPath = Annotated[
    str,
    Path(
        max_length=40,
        description="The application's number, e.g. З-2026-000042 (Z-2026-000042 also works)",
    ),
]


class ApplicationSummary(BaseModel):
    number: str
    status: ApplicationStatus
    status_label: str = Field(description="The status in Russian, as operators see it")
    service: str
    service_title: str
    channel: str | None = Field(description="Where it came from: telegram, vk, webchat...")
    created_at: datetime
    updated_at: datetime
    expected_date: date | None = Field(
        description="The date given with the current status (in work: done by; refused: "
        "possible from)"
    )
    due_date: date = Field(description="The expected date, or submission + the rules' days")
    overdue: bool
    version: int = Field(description="Bumped on every change; send it back to detect races")


class HistoryEntry(BaseModel):
    id: int
    at: datetime
    from_status: ApplicationStatus
    to_status: ApplicationStatus
    actor_kind: str = Field(description="operator, api or cli")
    actor: str = Field(description="The operator's login, the token's name or the system user")
    comment: str | None = Field(description="Shown to the citizen")
    reason: str | None = Field(description="Why it is refused; shown to the citizen")
    expected_date: date | None
    internal_note: str | None = Field(description="Never shown to the citizen")
    notification: str | None = Field(
        description="Delivery of the citizen's message: queued, sending, sent, failed; null "
        "when the application has no conversation to write to"
    )


class ApplicationDetail(ApplicationSummary):
    fields: dict[str, str] = Field(description="What the citizen filled in: address, description…")
    submitted_via: str = "bot"
    allowed_moves: list[ApplicationStatus]
    history: list[HistoryEntry]


class ApplicationPage(BaseModel):
    items: list[ApplicationSummary]
    total: int
    limit: int
    offset: int


class StatusInfo(BaseModel):
    status: ApplicationStatus
    label: str
    moves: list[ApplicationStatus]
    needs_comment: bool
    needs_reason: bool
    takes_expected_date: bool


class StatusChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ApplicationStatus
    comment: str | None = Field(
        default=None,
        max_length=MAX_COMMENT,
        description="For the citizen; required for info_needed (what is needed)",
    )
    reason: str | None = Field(
        default=None, max_length=MAX_REASON, description="Refused only, and required there: why"
    )
    expected_date: date | None = Field(
        default=None,
        description="in_progress: done by; refused: when it becomes possible. Not in the past",
    )
    internal_note: str | None = Field(
        default=None, max_length=MAX_NOTE, description="For the agency; never sent"
    )
    version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="If given, the change is refused (409) "
        "when the application changed since this version"
    )  # fmt: skip


class StatusChangeOut(BaseModel):
    change: HistoryEntry
    application: ApplicationDetail
    replayed: bool = Field(description="true: an earlier request with this Idempotency-Key")


def _zone(rt: Runtime) -> ZoneInfo:
    return ZoneInfo(rt.rules.calendar.timezone)


def _summary(
    application: Application,
    channel: str | None,
    rt: Runtime,
    rules: ApplicationRules,
) -> dict[str, Any]:
    now = rt.clock.now()
    zone = _zone(rt)
    status = ApplicationStatus(application.status)
    return {
        "number": application.number,
        "status": status,
        "status_label": LABELS[status],
        "service": application.service,
        "service_title": str(application.fields.get("service_title") or application.service),
        "channel": channel,
        "created_at": as_utc(application.created_at),
        "updated_at": as_utc(application.updated_at),
        "expected_date": application.expected_date,
        "due_date": applications.due_date(application, zone, rules),
        "overdue": applications.is_overdue(
            application, now, applications.today_in(zone, now), rules
        ),
        "version": application.version,
    }


def _entry(change: ApplicationStatusChange, delivery: str | None) -> HistoryEntry:
    assert change.id is not None
    return HistoryEntry(
        id=change.id,
        at=as_utc(change.changed_at),
        from_status=ApplicationStatus(change.from_status),
        to_status=ApplicationStatus(change.to_status),
        actor_kind=change.actor_kind,
        actor=change.actor,
        comment=change.comment,
        reason=change.reason,
        expected_date=change.expected_date,
        internal_note=change.internal_note,
        notification=delivery,
    )


def _detail(session: Session, application: Application, rt: Runtime) -> ApplicationDetail:
    assert application.id is not None
    channel = None
    if application.conversation_id is not None:
        conversation = session.get(Conversation, application.conversation_id)
        channel = conversation.channel if conversation else None
    changes = applications.history(session, application.id)
    ids = [c.message_id for c in changes if c.message_id is not None]
    deliveries = (
        dict(
            session.exec(
                select(Message.id, Message.delivery_status).where(col(Message.id).in_(ids))
            ).all()
        )
        if ids
        else {}
    )
    fields = {
        k: str(v) for k, v in application.fields.items() if k not in ("service", "service_title")
    }
    return ApplicationDetail(
        **_summary(application, channel, rt, application_rules(rt.settings.rules_dir)),
        fields=fields,
        allowed_moves=allowed_moves(application.status),
        history=[_entry(c, deliveries.get(c.message_id)) for c in changes],
    )


def _error(exc: ApplicationError) -> JSONResponse:
    status = {"not_found": 404, "conflict": 409}.get(exc.kind, 422)
    body = ErrorOut(detail=str(exc), code=exc.kind, field=exc.field)
    return JSONResponse(body.model_dump(), status_code=status)


def _bad_number() -> JSONResponse:
    body = ErrorOut(
        detail="Это не номер заявления. Он выглядит так: З-2026-000042.",
        code="invalid",
        field="number",
    )
    return JSONResponse(body.model_dump(), status_code=422)


def _not_found() -> JSONResponse:
    body = ErrorOut(detail="Заявление не найдено.", code="not_found", field="number")
    return JSONResponse(body.model_dump(), status_code=404)


@router.get("", response_model=ApplicationPage, responses=AUTH_ERRORS)
def list_applications(
    rt: RuntimeDep,
    _caller: ReaderDep,
    status: Annotated[list[ApplicationStatus] | None, Query(max_length=5)] = None,
    service: Annotated[str | None, Query(max_length=100)] = None,
    channel: Annotated[str | None, Query(pattern=CHANNEL_PATTERN)] = None,
    created_from: Annotated[date | None, Query(description="Submitted on or after")] = None,
    created_to: Annotated[date | None, Query(description="Submitted on or before")] = None,
    overdue: Annotated[bool, Query(description="Only the overdue ones")] = False,
    updated_since: Annotated[
        datetime | None, Query(description="Changed at or after (ISO 8601 with a time zone)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ApplicationPage:
    """Applications, newest first, filtered; one page of ``limit`` and the total."""
    filters = ApplicationFilter(
        statuses=[s.value for s in status or []], service=service, channel=channel,
        created_from=created_from, created_to=created_to, overdue=overdue,
        updated_since=updated_since,
    )  # fmt: skip
    rules = application_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        rows, total = applications.search(
            session, filters, rt.clock.now(), _zone(rt), rules, limit=limit, offset=offset
        )
    items = [ApplicationSummary(**_summary(r.application, r.channel, rt, rules)) for r in rows]
    return ApplicationPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/statuses", response_model=list[StatusInfo], responses=AUTH_ERRORS)
def statuses(_caller: ReaderDep) -> list[StatusInfo]:
    """The lifecycle: every status, where it may go and what a change to it needs."""
    return [
        StatusInfo(
            status=s,
            label=LABELS[s],
            moves=[m for m in ApplicationStatus if m in MOVES[s]],
            needs_comment=NEEDS[s].comment,
            needs_reason=NEEDS[s].reason,
            takes_expected_date=NEEDS[s].expected_date,
        )
        for s in ApplicationStatus
    ]


@router.get(
    "/{number}", response_model=ApplicationDetail, responses={**AUTH_ERRORS, **NUMBER_ERRORS}
)
def get_application(rt: RuntimeDep, _caller: ReaderDep, number: NumberPath) -> Any:
    """One application with what the citizen filled in and its whole history."""
    if applications.normalize_number(number) is None:
        return _bad_number()
    with rt.factory() as session:
        application = applications.find_by_number(session, number)
        if application is None:
            return _not_found()
        return _detail(session, application, rt)


@router.post(
    "/{number}/status",
    response_model=StatusChangeOut,
    status_code=201,
    responses={
        **AUTH_ERRORS,
        **NUMBER_ERRORS,
        200: {"model": StatusChangeOut, "description": "A replay of an earlier request"},
        409: {"model": ErrorOut, "description": "The move is not allowed, or a stale version"},
    },
)
def change_status(
    rt: RuntimeDep,
    caller: WriterDep,
    number: NumberPath,
    body: StatusChangeIn,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=r"^[\x21-\x7e]{1,100}$",
            description="Any 1-100 printable ASCII characters, unique per change (a UUID)",
        ),
    ] = None,
) -> Any:
    """Move the application to ``status``; the citizen is told in the channel it came from."""
    if applications.normalize_number(number) is None:
        return _bad_number()
    request = ChangeRequest(
        status=body.status.value, comment=body.comment, reason=body.reason,
        expected_date=body.expected_date, internal_note=body.internal_note,
    )  # fmt: skip
    actor = Actor.api(caller.token_id, caller.name)
    for attempt in (1, 2):
        with rt.factory() as session:
            application = applications.find_by_number(session, number)
            if application is None or application.id is None:
                return _not_found()
            try:
                outcome = applications.change_status(
                    session, application.id, request, actor, rt.clock.now(), _zone(rt),
                    seen_version=body.version, idempotency_key=idempotency_key,
                )  # fmt: skip
                session.commit()
            except ApplicationError as exc:
                session.rollback()
                return _error(exc)
            except sa.exc.IntegrityError:
                # Two requests with one key at once: the other one's change is there now.
                session.rollback()
                if attempt == 2:
                    raise
                continue
            detail = _detail(session, outcome.application, rt)
            delivery = next(h.notification for h in detail.history if h.id == outcome.change.id)
            result = StatusChangeOut(
                change=_entry(outcome.change, delivery),
                application=detail,
                replayed=outcome.replayed,
            )
            if outcome.replayed:
                return JSONResponse(
                    result.model_dump(mode="json"),
                    status_code=200,
                    headers={"Idempotent-Replayed": "true"},
                )
            return result
    raise AssertionError("unreachable")
