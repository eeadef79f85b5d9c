"""``/api/v1/mailings``: mailings for the agency's back-office system (docs/api.md).

Scopes ``mailings:read`` and ``mailings:write`` (``inbox/api_tokens.py``). The same functions
as the supervisors' page ``/ui/mailings`` (``inbox.mailings``): the text is cleaned and must
pass the readability check with the bar supervisors set, as the page checks it; a mailing
goes to the topic's subscribers whose consent is live when it is written, through the
outbox, once each.

A mailing is made as a draft (``POST``) and sent by ``POST …/schedule`` (at a time, or at once:
the worker's next round). So a retried creation leaves a second draft, which sends nothing,
instead of a second message to every subscriber; scheduling again for the same time changes
nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import Session, col, func, select

from core.clock import as_utc
from inbox import mailings
from inbox.models import Mailing
from inbox.web.api.applications import AUTH_ERRORS
from inbox.web.api.auth import MailingReaderDep, MailingWriterDep
from inbox.web.api.errors import ApiRoute, ErrorOut
from inbox.web.deps import RuntimeDep
from inbox.web.ui.resources import readability_bar
from knowledge_base.readability import ReadabilityReport, check_text
from rules.proactive import ProactiveRules, proactive_rules

router = APIRouter(prefix="/api/v1/mailings", tags=["mailings"], route_class=ApiRoute)

Status = Literal["draft", "scheduled", "sending", "sent", "cancelled"]
MailingId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The mailing's id")]
ID_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No mailing with this id"},
    422: {"model": ErrorOut, "description": "Invalid input"},
}
STATE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ID_ERRORS,
    409: {"model": ErrorOut, "description": "The mailing has started, been sent or cancelled"},
}


class Progress(BaseModel):
    """Where each recipient is (``inbox.mailings.figures``)."""

    recipients: int = Field(description="Subscribers written so far, skipped ones included")
    queued: int = Field(description="In the outbox, not yet delivered")
    sent: int
    failed: int
    skipped_without_consent: int = Field(description="No live consent when it was written")
    withheld: int = Field(description="The consent was withdrawn after it was queued")
    in_digest: int = Field(description="Waiting for a daily or weekly digest")


class MailingOut(BaseModel):
    id: int
    topic: str
    topic_title: str | None
    area: str | None = Field(description="Only this district's subscribers; null: everyone")
    text: str
    status: Status
    status_label: str
    scheduled_at: datetime | None
    created_at: datetime
    created_by: str = Field(description="An operator's login, a system user or a token name")
    started_at: datetime | None
    finished_at: datetime | None
    progress: Progress


class MailingDetail(MailingOut):
    audience_now: int = Field(
        description="Live subscriptions it would reach if written now (before the consent check)"
    )


class MailingPage(BaseModel):
    items: list[MailingOut]
    total: int
    limit: int
    offset: int


class Subscribers(BaseModel):
    now: int = 0
    daily: int = 0
    weekly: int = 0
    total: int = 0


class TopicOut(BaseModel):
    id: str
    title: str
    service: str = Field(description="The service whose consent a subscription needs")
    areas: bool = Field(description="Subscribers pick a district; a mailing may name one")
    subscribers: Subscribers


class AreaOut(BaseModel):
    id: str
    title: str


class Topics(BaseModel):
    topics: list[TopicOut]
    areas: list[AreaOut]


class MailingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str = Field(pattern=r"^[a-z0-9_]{1,30}$", description="A topic id (GET …/topics)")
    area: str | None = Field(
        default=None, pattern=r"^[a-z0-9_]{1,30}$",
        description="A district id, for topics with areas; null: every subscriber",
    )  # fmt: skip
    text: str = Field(max_length=mailings.MAX_TEXT * 2, description="Plain Russian, at most "
                      f"{mailings.MAX_TEXT} characters after cleaning")  # fmt: skip


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduled_at: AwareDatetime | None = Field(
        default=None, description="When to send (with a time zone); null: at once"
    )


class Finding(BaseModel):
    kind: str = Field(description="stock_phrase, verbal_noun, genitive_chain, passive, "
                      "long_sentence")  # fmt: skip
    fragment: str
    message: str
    suggestion: str | None


class Readability(BaseModel):
    ok: bool
    grade_level: float
    grade_text: str
    failures: list[str] = Field(description="Why it fails the bar, in Russian")
    findings: list[Finding]


class ReadabilityErrorOut(ErrorOut):
    readability: Readability


class MailingCreated(MailingDetail):
    readability: Readability


def _error(detail: str, code: str, field: str | None, status: int) -> JSONResponse:
    body = ErrorOut(detail=detail, code=code, field=field)
    return JSONResponse(body.model_dump(), status_code=status)


def _not_found() -> JSONResponse:
    return _error("Рассылка не найдена.", "not_found", "mailing_id", 404)


def _readability(report: ReadabilityReport) -> Readability:
    return Readability(
        ok=report.ok, grade_level=report.grade_level, grade_text=report.grade_text,
        failures=report.failures,
        findings=[
            Finding(kind=i.kind, fragment=i.fragment, message=i.message, suggestion=i.suggestion)
            for i in report.issues
        ],
    )  # fmt: skip


def _out(session: Session, rules: ProactiveRules, m: Mailing) -> dict[str, Any]:
    assert m.id is not None
    f = mailings.figures(session, m.id)
    topic = rules.topic(m.topic)
    return {
        "id": m.id, "topic": m.topic, "topic_title": topic.title if topic else None,
        "area": m.area, "text": m.text, "status": m.status,
        "status_label": mailings.STATUSES.get(m.status, m.status),
        "scheduled_at": as_utc(m.scheduled_at) if m.scheduled_at else None,
        "created_at": as_utc(m.created_at), "created_by": m.created_by,
        "started_at": as_utc(m.started_at) if m.started_at else None,
        "finished_at": as_utc(m.finished_at) if m.finished_at else None,
        "progress": Progress(
            recipients=f.recipients, queued=f.queued, sent=f.sent, failed=f.failed,
            skipped_without_consent=f.skipped, withheld=f.withheld, in_digest=f.in_digest,
        ),
    }  # fmt: skip


def _detail(session: Session, rules: ProactiveRules, m: Mailing) -> MailingDetail:
    return MailingDetail(
        **_out(session, rules, m), audience_now=mailings.audience(session, rules, m.topic, m.area)
    )


@router.get("/topics", response_model=Topics, responses=AUTH_ERRORS)
def topics(rt: RuntimeDep, _caller: MailingReaderDep) -> Topics:
    """The topics of ``rules/proactive.yaml`` with their live subscribers by frequency, and
    the districts."""
    rules = proactive_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        counts = mailings.subscribers(session)
    found = []
    for t in rules.topics:
        by = counts.get(t.id, {})
        subscribers = Subscribers(**by, total=sum(by.values()))
        found.append(
            TopicOut(
                id=t.id, title=t.title, service=t.service, areas=t.areas, subscribers=subscribers
            )
        )
    return Topics(topics=found, areas=[AreaOut(id=a.id, title=a.title) for a in rules.areas])


@router.get("", response_model=MailingPage, responses=AUTH_ERRORS)
def list_mailings(
    rt: RuntimeDep,
    _caller: MailingReaderDep,
    status: Annotated[list[Status] | None, Query(max_length=5)] = None,
    topic: Annotated[str | None, Query(max_length=30)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> MailingPage:
    """Mailings, newest first, with their delivery figures."""
    rules = proactive_rules(rt.settings.rules_dir)
    query = select(Mailing)
    counted = select(func.count(col(Mailing.id)))
    if status:
        query = query.where(col(Mailing.status).in_(status))
        counted = counted.where(col(Mailing.status).in_(status))
    if topic is not None:
        query = query.where(Mailing.topic == topic)
        counted = counted.where(Mailing.topic == topic)
    with rt.factory() as session:
        total = int(session.exec(counted).one())
        rows = session.exec(query.order_by(col(Mailing.id).desc()).limit(limit).offset(offset))
        items = [MailingOut(**_out(session, rules, m)) for m in rows.all()]
    return MailingPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{mailing_id}", response_model=MailingDetail, responses={**AUTH_ERRORS, **ID_ERRORS})
def get_mailing(rt: RuntimeDep, _caller: MailingReaderDep, mailing_id: MailingId) -> Any:
    """One mailing with its progress and the audience it would reach now."""
    rules = proactive_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        mailing = session.get(Mailing, mailing_id)
        if mailing is None:
            return _not_found()
        return _detail(session, rules, mailing)


@router.post(
    "", response_model=MailingCreated, status_code=201,
    responses={**AUTH_ERRORS, 422: {
        "model": ReadabilityErrorOut | ErrorOut,
        "description": "Invalid input, or the text fails the readability check (code "
        "readability, with the check's findings)",
    }},
)  # fmt: skip
def create_mailing(
    request: Request, rt: RuntimeDep, caller: MailingWriterDep, body: MailingIn
) -> Any:
    """A draft mailing, checked as the supervisors' page checks it; ``…/schedule`` sends it."""
    rules = proactive_rules(rt.settings.rules_dir)
    now = rt.clock.now()
    draft = mailings.MailingDraft(body.topic, body.area, body.text, None)
    topic = rules.topic(body.topic)
    if topic is None:
        return _error(f"Нет такой темы рассылки: «{body.topic}».", "invalid", "topic", 422)
    if body.area is not None and (not topic.areas or rules.area(body.area) is None):
        return _error(f"У этой темы нет района «{body.area}».", "invalid", "area", 422)
    try:
        clean = mailings.check_draft(rules, draft, now)
    except mailings.MailingError as exc:
        return _error(str(exc), "invalid", "text", 422)
    report = check_text(clean, readability_bar(request))
    if not report.ok:
        refused = ReadabilityErrorOut(
            detail="Текст рассылки трудно читать: "
            + "; ".join(f.rstrip(".") for f in report.failures)
            + ". Упростите его и отправьте снова.",
            code="readability", field="text", readability=_readability(report),
        )  # fmt: skip
        return JSONResponse(refused.model_dump(), status_code=422)
    with rt.factory() as session:
        try:
            mailing = mailings.create(
                session, rules, draft, now, by=f"api:{caller.name}", keep_draft=True
            )
        except mailings.MailingError as exc:  # the rules changed in between
            session.rollback()
            return _error(str(exc), "invalid", None, 422)
        session.commit()
        return MailingCreated(
            **_detail(session, rules, mailing).model_dump(), readability=_readability(report)
        )


def _locked(session: Session, mailing_id: int) -> Mailing | None:
    """The mailing, its row locked as the sender locks it (no start and cancel at once)."""
    return session.exec(select(Mailing).where(Mailing.id == mailing_id).with_for_update()).first()


def _not_startable(mailing: Mailing) -> JSONResponse:
    label = mailings.STATUSES.get(mailing.status, mailing.status)
    return _error(f"Рассылка уже {label}: изменить её нельзя.", "conflict", "status", 409)


@router.post(
    "/{mailing_id}/schedule", response_model=MailingDetail,
    responses={**AUTH_ERRORS, **STATE_ERRORS},
)  # fmt: skip
def schedule_mailing(
    rt: RuntimeDep, caller: MailingWriterDep, mailing_id: MailingId, body: ScheduleIn
) -> Any:
    """Send the draft at ``scheduled_at``, or at once (null): the worker writes the
    recipients in its next round. A mailing not yet started may be moved."""
    rules = proactive_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        mailing = _locked(session, mailing_id)
        if mailing is None:
            return _not_found()
        if mailing.status not in ("draft", "scheduled"):
            return _not_startable(mailing)
        try:
            mailings.schedule(
                session, mailing, body.scheduled_at, rt.clock.now(), by=f"api:{caller.name}"
            )
        except mailings.MailingError as exc:
            session.rollback()
            return _error(str(exc), "invalid", "scheduled_at", 422)
        session.commit()
        return _detail(session, rules, mailing)


@router.post(
    "/{mailing_id}/cancel", response_model=MailingDetail,
    responses={**AUTH_ERRORS, **STATE_ERRORS},
)  # fmt: skip
def cancel_mailing(rt: RuntimeDep, caller: MailingWriterDep, mailing_id: MailingId) -> Any:
    """Cancel a draft or a mailing that has not started."""
    rules = proactive_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        mailing = _locked(session, mailing_id)
        if mailing is None:
            return _not_found()
        if mailing.status not in ("draft", "scheduled"):
            return _not_startable(mailing)
        mailings.cancel(session, mailing, rt.clock.now(), by=f"api:{caller.name}")
        session.commit()
        return _detail(session, rules, mailing)
