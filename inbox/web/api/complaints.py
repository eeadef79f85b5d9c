"""``/api/v1/complaints``: shared complaints for the agency's back-office system (docs/api.md).

Scopes ``complaints:read`` and ``complaints:write`` (``inbox/api_tokens.py``). A complaint is
addressed by its id; appeals by their numbers (``2026-000123``). A status change goes to
every supporter once, as from the UI and the CLI (``inbox.complaints.change_status``); send
the ``version`` read last, and a repeated or stale request is refused with 409 instead of
telling everyone twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from core.clock import as_utc
from inbox import complaints
from inbox.application_status import LABELS, ApplicationStatus, allowed_moves
from inbox.applications import MAX_NOTE, Actor
from inbox.complaint_texts import tracker_url
from inbox.complaints import ComplaintChange, ComplaintError
from inbox.models import ComplaintStatusChange, Conversation, SharedComplaint
from inbox.runtime import Runtime
from inbox.web.api.applications import AUTH_ERRORS
from inbox.web.api.auth import ComplaintReaderDep, ComplaintWriterDep
from inbox.web.api.errors import ApiRoute, ErrorOut
from inbox.web.deps import RuntimeDep
from rules.catalog import load_catalog

router = APIRouter(prefix="/api/v1/complaints", tags=["complaints"], route_class=ApiRoute)

ID_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No complaint with this id, or an unknown appeal"},
    422: {"model": ErrorOut, "description": "Invalid input"},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ID_ERRORS,
    409: {"model": ErrorOut, "description": "The move is not allowed, a stale version, or the "
          "complaint is closed"},
}  # fmt: skip
ComplaintId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The complaint's id")]
AppealNumbers = Annotated[
    list[Annotated[str, Field(pattern=r"^\d{4}-\d{1,9}$")]],
    Field(min_length=1, max_length=200, description="Appeal numbers, e.g. 2026-000123"),
]


class ComplaintSummary(BaseModel):
    id: int
    title: str = Field(description="The problem (public)")
    place: str
    topic: str = Field(description="A service id of the bot's catalog: lighting, roads…")
    status: ApplicationStatus
    status_label: str
    answer: str | None = Field(description="The agency's current answer (public)")
    expected_date: date | None
    supporters: int
    tracker_url: str = Field(description="The public page (no personal data)")
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="Bumped on every change; send it back to detect races")


class ChangeEntry(BaseModel):
    id: int
    at: datetime
    from_status: ApplicationStatus
    to_status: ApplicationStatus
    actor_kind: str
    actor: str
    answer: str | None
    expected_date: date | None
    internal_note: str | None = Field(description="Never shown to citizens")
    notified: int = Field(description="Supporters told of this change")


class SupporterEntry(BaseModel):
    appeal: str | None = Field(description="The appeal's number")
    channel: str
    joined_at: datetime
    via: str = Field(description="bot (the citizen pressed +1), operator, api or cli")


class ComplaintDetail(ComplaintSummary):
    allowed_moves: list[ApplicationStatus]
    history: list[ChangeEntry]
    supporters_list: list[SupporterEntry]


class ComplaintPage(BaseModel):
    items: list[ComplaintSummary]
    total: int
    limit: int
    offset: int


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(max_length=complaints.MAX_TITLE, description="The problem, public")
    place: str = Field(max_length=complaints.MAX_PLACE)
    topic: str = Field(max_length=100)
    appeals: AppealNumbers


class SupportersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appeals: AppealNumbers


class SupportersOut(BaseModel):
    added: int = Field(description="Citizens added (the others already supported it)")
    complaint: ComplaintDetail


class ComplaintStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ApplicationStatus
    answer: str | None = Field(
        default=None, max_length=complaints.MAX_ANSWER,
        description="Public; every supporter gets it. Required for refused and info_needed",
    )  # fmt: skip
    expected_date: date | None = Field(
        default=None, description="in_progress: done by; refused: when it becomes possible"
    )
    internal_note: str | None = Field(default=None, max_length=MAX_NOTE)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class ComplaintStatusOut(BaseModel):
    change: ChangeEntry
    complaint: ComplaintDetail


def _zone(rt: Runtime) -> ZoneInfo:
    return ZoneInfo(rt.rules.calendar.timezone)


def _error(exc: ComplaintError) -> JSONResponse:
    status = {"not_found": 404, "conflict": 409}.get(exc.kind, 422)
    body = ErrorOut(detail=str(exc), code=exc.kind, field=exc.field)
    return JSONResponse(body.model_dump(), status_code=status)


def _not_found() -> JSONResponse:
    return _error(ComplaintError("Жалоба не найдена.", "not_found", "id"))


def _summary(rt: Runtime, complaint: SharedComplaint, count: int) -> dict[str, Any]:
    status = ApplicationStatus(complaint.status)
    return {
        "id": complaint.id, "title": complaint.title, "place": complaint.place,
        "topic": complaint.topic, "status": status, "status_label": LABELS[status],
        "answer": complaint.answer, "expected_date": complaint.expected_date,
        "supporters": count, "tracker_url": tracker_url(rt.settings.public_url, complaint.slug),
        "created_at": as_utc(complaint.created_at), "updated_at": as_utc(complaint.updated_at),
        "version": complaint.version,
    }  # fmt: skip


def _entry(change: ComplaintStatusChange) -> ChangeEntry:
    assert change.id is not None
    return ChangeEntry(
        id=change.id, at=as_utc(change.changed_at),
        from_status=ApplicationStatus(change.from_status),
        to_status=ApplicationStatus(change.to_status), actor_kind=change.actor_kind,
        actor=change.actor, answer=change.answer, expected_date=change.expected_date,
        internal_note=change.internal_note, notified=change.notified,
    )  # fmt: skip


def _detail(session: Session, rt: Runtime, complaint: SharedComplaint) -> ComplaintDetail:
    assert complaint.id is not None
    supporters = complaints.supporters(session, complaint.id)
    conversations = {
        c.id: c
        for c in session.exec(
            select(Conversation).where(
                col(Conversation.id).in_([s.conversation_id for s in supporters])
            )
        )
    }
    listed = [
        SupporterEntry(
            appeal=conversations[s.conversation_id].number,
            channel=conversations[s.conversation_id].channel,
            joined_at=as_utc(s.joined_at),
            via=s.via,
        )
        for s in supporters
    ]
    return ComplaintDetail(
        **_summary(rt, complaint, len(supporters)),
        allowed_moves=allowed_moves(complaint.status),
        history=[_entry(c) for c in complaints.history(session, complaint.id)],
        supporters_list=listed,
    )


def _appeal_ids(session: Session, numbers: list[str]) -> list[int]:
    found = dict(
        session.exec(
            select(Conversation.number, Conversation.id).where(
                col(Conversation.number).in_(numbers)
            )
        ).all()
    )
    for number in numbers:
        if found.get(number) is None:
            raise ComplaintError(f"Обращение {number} не найдено.", "not_found", "appeals")
    return [int(found[n]) for n in numbers]  # type: ignore[arg-type]


@router.get("", response_model=ComplaintPage, responses=AUTH_ERRORS)
def list_complaints(
    rt: RuntimeDep,
    _caller: ComplaintReaderDep,
    status: Annotated[list[ApplicationStatus] | None, Query(max_length=5)] = None,
    topic: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ComplaintPage:
    """Shared complaints, the most recently changed first, with their supporters' counts."""
    with rt.factory() as session:
        rows, total = complaints.search(
            session, statuses=[s.value for s in status or []], topic=topic, limit=limit,
            offset=offset,
        )  # fmt: skip
    items = [ComplaintSummary(**_summary(rt, r.complaint, r.supporters)) for r in rows]
    return ComplaintPage(items=items, total=total, limit=limit, offset=offset)


@router.post(
    "", response_model=ComplaintDetail, status_code=201, responses={**AUTH_ERRORS, **ID_ERRORS}
)
def create_complaint(rt: RuntimeDep, caller: ComplaintWriterDep, body: ComplaintIn) -> Any:
    """A shared complaint from these appeals; the first appeal's SLA clock is its clock."""
    if body.topic not in {s.id for s in load_catalog(rt.settings.bot_catalog).services}:
        return _error(ComplaintError("Неизвестная тема: нужен id вида из каталога бота.",
                                     field="topic"))  # fmt: skip
    with rt.factory() as session:
        try:
            complaint = complaints.create(
                session, title=body.title, place=body.place, topic=body.topic,
                conversation_ids=_appeal_ids(session, body.appeals),
                actor=Actor.api(caller.token_id, caller.name), now=rt.clock.now(),
                public_url=rt.settings.public_url, rules=rt.rules,
            )  # fmt: skip
            session.commit()
        except ComplaintError as exc:
            session.rollback()
            return _error(exc)
        return _detail(session, rt, complaint)


@router.get(
    "/{complaint_id}", response_model=ComplaintDetail, responses={**AUTH_ERRORS, **ID_ERRORS}
)
def get_complaint(rt: RuntimeDep, _caller: ComplaintReaderDep, complaint_id: ComplaintId) -> Any:
    """One complaint with its history and its supporters' appeals."""
    with rt.factory() as session:
        complaint = session.get(SharedComplaint, complaint_id)
        if complaint is None:
            return _not_found()
        return _detail(session, rt, complaint)


@router.post(
    "/{complaint_id}/supporters", response_model=SupportersOut,
    responses={**AUTH_ERRORS, **WRITE_ERRORS},
)  # fmt: skip
def add_supporters(
    rt: RuntimeDep, caller: ComplaintWriterDep, complaint_id: ComplaintId, body: SupportersIn
) -> Any:
    """Add appeals to an open complaint (their citizens are told; each citizen once)."""
    with rt.factory() as session:
        complaint = session.get(SharedComplaint, complaint_id)
        if complaint is None:
            return _not_found()
        try:
            added = 0
            ids = _appeal_ids(session, body.appeals)
            for conversation in complaints.load_conversations(session, ids):
                joined = complaints.join(
                    session, complaint, conversation, "api", rt.clock.now(),
                    actor=Actor.api(caller.token_id, caller.name),
                    public_url=rt.settings.public_url,
                )  # fmt: skip
                added += joined is not None
            session.commit()
        except ComplaintError as exc:
            session.rollback()
            return _error(exc)
        return SupportersOut(added=added, complaint=_detail(session, rt, complaint))


@router.post(
    "/{complaint_id}/status", response_model=ComplaintStatusOut, status_code=201,
    responses={**AUTH_ERRORS, **WRITE_ERRORS},
)  # fmt: skip
def change_status(
    rt: RuntimeDep, caller: ComplaintWriterDep, complaint_id: ComplaintId, body: ComplaintStatusIn
) -> Any:
    """Move the complaint to ``status``; every supporter is told once, in their channel."""
    request = ComplaintChange(
        body.status.value, body.answer, body.expected_date, body.internal_note
    )
    with rt.factory() as session:
        try:
            outcome = complaints.change_status(
                session, complaint_id, request, Actor.api(caller.token_id, caller.name),
                rt.clock.now(), _zone(rt), seen_version=body.version,
                public_url=rt.settings.public_url,
            )  # fmt: skip
            session.commit()
        except ComplaintError as exc:
            session.rollback()
            return _error(exc)
        return ComplaintStatusOut(
            change=_entry(outcome.change), complaint=_detail(session, rt, outcome.complaint)
        )
