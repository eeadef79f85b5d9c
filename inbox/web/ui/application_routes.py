"""Applications in the operator UI: the list with filters, one application, the status form,
and the administrators' page of API tokens.

The status form is on the application's page and in the conversation view (the citizen's
applications, the one from that conversation first). It posts to one route, which calls
``inbox.applications.change_status`` like the API and the CLI do: the change, its history
row and the citizen's message in the outbox are one transaction. The form carries the
application's version: if a colleague (or the back office) changed it meanwhile, the change
is refused, so the citizen never gets two contradicting messages by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from math import ceil
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from inbox import api_tokens, applications, audit
from inbox.application_status import LABELS, NEEDS, ApplicationStatus, allowed_moves
from inbox.application_texts import status_notice
from inbox.applications import (
    Actor,
    ApplicationError,
    ApplicationFilter,
    ChangeRequest,
)
from inbox.models import (
    ApiToken,
    Application,
    ApplicationStatusChange,
    Citizen,
    Conversation,
    Message,
    Operator,
)
from inbox.runtime import Runtime
from inbox.web.deps import RuntimeDep
from inbox.web.ui.resources import readability_bar
from inbox.web.ui.security import AdminDep, OperatorDep, verify_csrf
from inbox.web.ui.templating import TEMPLATES, flash, render
from knowledge_base.readability import check_text
from rules.applications import ApplicationRules, application_rules

router = APIRouter(dependencies=[Depends(verify_csrf)])

PAGE_SIZE = 50
#: How the UI names who made a change.
ACTOR_KINDS = {"operator": "", "api": "система ведомства", "cli": "командная строка"}


@dataclass
class Panel:
    """One application as the status panel shows it."""

    application: Application
    channel: str | None
    changes: list[ApplicationStatusChange]
    moves: list[ApplicationStatus]
    overdue: bool
    due: date
    #: Delivery status of each change's notification, by message id.
    deliveries: dict[int | None, str | None] = field(default_factory=dict)
    #: This application came from the conversation being viewed.
    here: bool = False


def _zone(rt: Runtime) -> ZoneInfo:
    return ZoneInfo(rt.rules.calendar.timezone)


def _panel(
    session: Session, rt: Runtime, rules: ApplicationRules, application: Application,
    channel: str | None, here: bool = False,
) -> Panel:  # fmt: skip
    assert application.id is not None
    now, zone = rt.clock.now(), _zone(rt)
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
    return Panel(
        application=application,
        channel=channel,
        changes=changes,
        moves=allowed_moves(application.status),
        overdue=applications.is_overdue(application, now, applications.today_in(zone, now), rules),
        due=applications.due_date(application, zone, rules),
        deliveries=deliveries,
        here=here,
    )


def citizen_panels(rt: Runtime, conversation: Conversation, limit: int = 10) -> list[Panel]:
    """The citizen's applications for the conversation view: this conversation's first."""
    rules = application_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        found = session.exec(
            select(Application)
            .where(Application.citizen_id == conversation.citizen_id)
            .order_by(col(Application.id).desc())
            .limit(limit)
        ).all()
        channels = dict(
            session.exec(
                select(Conversation.id, Conversation.channel).where(
                    col(Conversation.id).in_(
                        [a.conversation_id for a in found if a.conversation_id]
                    )
                )
            ).all()
        )
        panels = [
            _panel(
                session,
                rt,
                rules,
                a,
                channels.get(a.conversation_id),
                here=a.conversation_id == conversation.id,
            )
            for a in found
        ]
    return sorted(panels, key=lambda p: not p.here)


def _names(session: Session) -> dict[int | None, str]:
    return {o.id: o.display_name for o in session.exec(select(Operator)).all()}


#: What the application templates share (the panel is also shown in the conversation view).
TEMPLATES.env.globals.update(
    APP_STATUSES={s.value: LABELS[s] for s in ApplicationStatus},
    APP_NEEDS={s.value: NEEDS[s] for s in ApplicationStatus},
    ACTOR_KINDS=ACTOR_KINDS,
)


# -- the list -------------------------------------------------------------------------------


def _parse_day(value: str, label: str, errors: list[str]) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        errors.append(f"Дата «{label}» не распознана: нужна в виде ГГГГ-ММ-ДД.")
        return None


@router.get("/applications")
def applications_page(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    status: Annotated[str, Query(max_length=30)] = "",
    service: Annotated[str, Query(max_length=100)] = "",
    channel: Annotated[str, Query(max_length=20)] = "",
    created_from: Annotated[str, Query(alias="from", max_length=30)] = "",
    created_to: Annotated[str, Query(alias="to", max_length=30)] = "",
    overdue: Annotated[str, Query(max_length=5)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    errors: list[str] = []
    statuses = [status] if status in {s.value for s in ApplicationStatus} else []
    if status == "open":
        statuses = ["submitted", "in_progress", "info_needed"]
    filters = ApplicationFilter(
        statuses=statuses, service=service or None, channel=channel or None,
        created_from=_parse_day(created_from, "с", errors),
        created_to=_parse_day(created_to, "по", errors), overdue=bool(overdue),
    )  # fmt: skip
    rules = application_rules(rt.settings.rules_dir)
    now, zone = rt.clock.now(), _zone(rt)
    today = applications.today_in(zone, now)
    with rt.factory() as session:
        rows, total = applications.search(
            session, filters, now, zone, rules, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        services = applications.services(session)
        citizens = {
            c.id: c.display_name
            for c in session.exec(
                select(Citizen).where(col(Citizen.id).in_([r.application.citizen_id for r in rows]))
            ).all()
        }
    items = [
        (r, applications.is_overdue(r.application, now, today, rules),
         applications.due_date(r.application, zone, rules), citizens.get(r.application.citizen_id))
        for r in rows
    ]  # fmt: skip
    query = {
        "status": status, "service": service, "channel": channel, "from": created_from,
        "to": created_to, "overdue": overdue,
    }  # fmt: skip
    kept = {k: v for k, v in query.items() if v}

    def page_url(number: int) -> str:
        return "/ui/applications?" + urlencode({**kept, "page": number})

    return render(
        request, "applications.html", me, section="applications", items=items, total=total,
        page=page, pages=max(1, ceil(total / PAGE_SIZE)), page_url=page_url, q=query,
        services=services, errors=errors,
    )  # fmt: skip


# -- one application ------------------------------------------------------------------------


@router.get("/applications/{application_id}")
def application_page(
    request: Request, rt: RuntimeDep, me: OperatorDep, application_id: int
) -> Response:
    if not 0 < application_id < 2**31:
        raise HTTPException(404, detail="Заявление не найдено.")
    rules = application_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        application = session.get(Application, application_id)
        if application is None:
            raise HTTPException(404, detail="Заявление не найдено.")
        conversation = (
            session.get(Conversation, application.conversation_id)
            if application.conversation_id
            else None
        )
        citizen = session.get(Citizen, application.citizen_id)
        panel = _panel(
            session, rt, rules, application, conversation.channel if conversation else None
        )
        names = _names(session)
    return render(
        request, "application.html", me, section="applications", p=panel,
        conversation=conversation, citizen=citizen, names=names, back="application",
    )  # fmt: skip


def _back(back: str, application: Application | None, application_id: int) -> RedirectResponse:
    """Where the form came from: the conversation view or the application's page (never a
    URL from the form: no open redirect)."""
    if back == "conversation" and application is not None and application.conversation_id:
        return RedirectResponse(
            f"/ui/c/{application.conversation_id}#application-{application_id}", status_code=303
        )
    return RedirectResponse(f"/ui/applications/{application_id}", status_code=303)


def _request_from_form(
    status: str, comment: str, reason: str, expected_date: str, internal_note: str
) -> ChangeRequest:
    when = None
    if expected_date.strip():
        try:
            when = date.fromisoformat(expected_date.strip()[:10])
        except ValueError:
            raise ApplicationError("Дата не распознана: нужна в виде ГГГГ-ММ-ДД.") from None
    return ChangeRequest(status, comment or None, reason or None, when, internal_note or None)


@router.post("/applications/{application_id}/status")
def change_status(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    application_id: int,
    status: Annotated[str, Form(max_length=30)],
    comment: Annotated[str, Form(max_length=applications.MAX_COMMENT * 2)] = "",
    reason: Annotated[str, Form(max_length=applications.MAX_REASON * 2)] = "",
    expected_date: Annotated[str, Form(max_length=30)] = "",
    internal_note: Annotated[str, Form(max_length=applications.MAX_NOTE * 2)] = "",
    version: Annotated[int | None, Form(ge=0, le=2**31 - 1)] = None,
    back: Annotated[str, Form(max_length=20)] = "application",
) -> Response:
    """Change the status from the form; the outcome is a flash message on the page."""
    if not 0 < application_id < 2**31:
        raise HTTPException(404, detail="Заявление не найдено.")
    with rt.factory() as session:
        application = session.get(Application, application_id)
        if application is None:
            raise HTTPException(404, detail="Заявление не найдено.")
        try:
            change = _request_from_form(status, comment, reason, expected_date, internal_note)
            outcome = applications.change_status(
                session, application_id, change, Actor.operator(me), rt.clock.now(), _zone(rt),
                seen_version=version,
            )  # fmt: skip
            session.commit()
        except ApplicationError as exc:
            session.rollback()
            flash(request, f"Статус не изменён: {exc}", "error")
            return _back(back, application, application_id)
        text = applications.notification_text(outcome.application, outcome.change)
    done = f"Статус изменён: {LABELS[ApplicationStatus(outcome.change.to_status)]}."
    if outcome.change.message_id:
        done += " Сообщение жителю поставлено в очередь."
    else:
        done += " Жителю написать некуда: заявление пришло не из переписки."
    if not check_text(text, readability_bar(request)).ok:
        done += " Текст для жителя сложный — в следующий раз пишите проще."
    flash(request, done)
    return _back(back, application, application_id)


@router.post("/applications/{application_id}/preview")
def preview(
    request: Request,
    me: OperatorDep,
    rt: RuntimeDep,
    application_id: int,
    status: Annotated[str, Form(max_length=30)] = "",
    comment: Annotated[str, Form(max_length=applications.MAX_COMMENT * 2)] = "",
    reason: Annotated[str, Form(max_length=applications.MAX_REASON * 2)] = "",
    expected_date: Annotated[str, Form(max_length=30)] = "",
) -> Response:
    """What the citizen will read, with its readability verdict (htmx, while typing)."""
    with rt.factory() as session:
        application = (
            session.get(Application, application_id) if 0 < application_id < 2**31 else None
        )
    text = None
    if (
        application is not None
        and application.number
        and status in {s.value for s in allowed_moves(application.status)}
    ):
        when = None
        try:
            when = date.fromisoformat(expected_date.strip()[:10]) if expected_date.strip() else None
        except ValueError:
            when = None
        text = status_notice(
            application.number, application.status, status,
            comment=comment.strip() or None, reason=reason.strip() or None, expected_date=when,
        )  # fmt: skip
    report = check_text(text, readability_bar(request)) if text else None
    return render(request, "_application_preview.html", me, text=text, report=report)


# -- API tokens (administrators) ------------------------------------------------------------


def _tokens_page(
    request: Request, rt: Runtime, me: Operator, secret: str | None = None,
    created: ApiToken | None = None, status_code: int = 200,
) -> Response:  # fmt: skip
    with rt.factory() as session:
        tokens = api_tokens.all_tokens(session)
    response = render(
        request, "admin_tokens.html", me, section="tokens", tokens=tokens, secret=secret,
        created=created, scopes=api_tokens.SCOPES, status_code=status_code,
    )  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/admin/tokens")
def tokens_page(request: Request, rt: RuntimeDep, me: AdminDep) -> Response:
    return _tokens_page(request, rt, me)


@router.post("/admin/tokens")
def create_token(
    request: Request,
    rt: RuntimeDep,
    me: AdminDep,
    name: Annotated[str, Form(max_length=200)],
    scope: Annotated[list[str] | None, Form(max_length=5)] = None,
) -> Response:
    """The new token is shown on this response only (never put in the session cookie)."""
    now = rt.clock.now()
    with rt.factory() as session:
        try:
            token, secret = api_tokens.create(session, name, scope or [], now, me.login)
        except api_tokens.TokenError as exc:
            flash(request, str(exc), "error")
            return RedirectResponse("/ui/admin/tokens", status_code=303)
        audit.record(
            session, "api_token_created", now, operator_id=me.id, actor=me.login,
            name=token.name, scopes=token.scopes,
        )  # fmt: skip
        session.commit()
    return _tokens_page(request, rt, me, secret=secret, created=token)


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token(request: Request, rt: RuntimeDep, me: AdminDep, token_id: int) -> Response:
    now = rt.clock.now()
    with rt.factory() as session:
        token = session.get(ApiToken, token_id) if 0 < token_id < 2**31 else None
        if token is None:
            raise HTTPException(404, detail="Токен не найден.")
        api_tokens.revoke(session, token, now)
        audit.record(
            session, "api_token_revoked", now, operator_id=me.id, actor=me.login, name=token.name
        )
        session.commit()
        name = token.name
    flash(request, f"Токен «{name}» отозван: он больше не работает.")
    return RedirectResponse("/ui/admin/tokens", status_code=303)
