"""Shared complaints in the operator UI, and their public tracker page.

Operators make a shared complaint from appeals (their numbers on the list page, or «Общая
жалоба» in the conversation view), add more appeals to it, and change its status with one
answer that every supporter gets (``inbox.complaints.change_status``, as the API and the
CLI do). The tracker page ``/public/complaints/<slug>`` needs no login and shows nothing
personal: the problem, the place, the count of supporters, the status, the agency's answers
and dates. It is under ``/public``, so the public rate limit applies
(``OTKLIK_RATE_LIMIT_PUBLIC_*``); an unknown slug and a malformed one get the same 404.
"""

from __future__ import annotations

import re
from datetime import date
from math import ceil
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from inbox import complaints
from inbox.application_status import OPEN, ApplicationStatus, allowed_moves
from inbox.applications import Actor
from inbox.complaint_texts import status_label, status_notice, tracker_url
from inbox.complaints import ComplaintChange, ComplaintError
from inbox.models import Citizen, Conversation, SharedComplaint
from inbox.runtime import Runtime
from inbox.web.deps import RuntimeDep
from inbox.web.ui.resources import readability_bar
from inbox.web.ui.security import OperatorDep, verify_csrf
from inbox.web.ui.templating import flash, render
from knowledge_base.readability import check_text
from rules.catalog import load_catalog

router = APIRouter(dependencies=[Depends(verify_csrf)])
public_router = APIRouter()

PAGE_SIZE = 50
#: Appeal numbers as operators type them: «2026-000123», several separated by commas,
#: spaces or new lines.
_APPEAL = re.compile(r"^\d{4}-\d{1,9}$")
_SEPARATORS = re.compile(r"[\s,;]+")
MAX_NUMBERS = 200
NOT_FOUND = "Жалоба не найдена."


def _zone(rt: Runtime) -> ZoneInfo:
    return ZoneInfo(rt.rules.calendar.timezone)


def topics(rt: Runtime) -> dict[str, str]:
    """Topics operators choose from: the kinds of the bot's catalog (what citizens choose)."""
    return {s.id: s.title for s in load_catalog(rt.settings.bot_catalog).services}


def _conversation_ids(session: Session, numbers: str) -> list[int]:
    """The conversations of the appeal numbers typed; ComplaintError naming a bad one."""
    wanted = [n for n in _SEPARATORS.split(numbers.strip()) if n]
    if len(wanted) > MAX_NUMBERS:
        raise ComplaintError(f"Не больше {MAX_NUMBERS} номеров за раз.", field="numbers")
    for number in wanted:
        if not _APPEAL.fullmatch(number):
            raise ComplaintError(
                f"«{number[:30]}» — не номер обращения (вида 2026-000123).", field="numbers"
            )
    found = dict(
        session.exec(
            select(Conversation.number, Conversation.id).where(col(Conversation.number).in_(wanted))
        ).all()
    )
    missing = [n for n in wanted if n not in found]
    if missing:
        raise ComplaintError(f"Обращение {missing[0]} не найдено.", "not_found", "numbers")
    return [i for i in (found[n] for n in wanted) if i is not None]


def _complaint_or_404(session: Session, complaint_id: int) -> SharedComplaint:
    complaint = session.get(SharedComplaint, complaint_id) if 0 < complaint_id < 2**31 else None
    if complaint is None:
        raise HTTPException(404, detail=NOT_FOUND)
    return complaint


ComplaintId = Annotated[int, Path(ge=1, le=2**31 - 1)]


# -- the list and a new complaint ------------------------------------------------------------


@router.get("/complaints")
def complaints_page(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    status: Annotated[str, Query(max_length=30)] = "open",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    statuses = [s.value for s in OPEN] if status == "open" else []
    if status in {s.value for s in ApplicationStatus}:
        statuses = [status]
    with rt.factory() as session:
        rows, total = complaints.search(
            session, statuses=statuses, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    return render(
        request, "complaints.html", me, section="complaints", rows=rows, total=total,
        page=page, pages=max(1, ceil(total / PAGE_SIZE)), status=status, topics=topics(rt),
        label=status_label,
    )  # fmt: skip


@router.post("/complaints")
def create_complaint(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    title: Annotated[str, Form(max_length=complaints.MAX_TITLE * 2)],
    place: Annotated[str, Form(max_length=complaints.MAX_PLACE * 2)],
    topic: Annotated[str, Form(max_length=100)],
    numbers: Annotated[str, Form(max_length=5000)] = "",
    conversation_id: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
    conversation: Annotated[list[int] | None, Form(max_length=MAX_NUMBERS)] = None,
) -> Response:
    """A complaint from the appeals typed (list page), from one conversation (its view) or
    from those ticked in the inbox queue (``conversation``, repeated)."""
    back = f"/ui/c/{conversation_id}" if conversation_id else "/ui/complaints"
    if conversation:
        back = "/ui/inbox"
    with rt.factory() as session:
        try:
            ids = [*([conversation_id] if conversation_id else []), *(conversation or [])]
            ids += _conversation_ids(session, numbers)
            if topic not in topics(rt):
                raise ComplaintError("Выберите тему из списка.", field="topic")
            complaint = complaints.create(
                session, title=title, place=place, topic=topic, conversation_ids=ids,
                actor=Actor.operator(me), now=rt.clock.now(), public_url=rt.settings.public_url,
                rules=rt.rules,
            )  # fmt: skip
            session.commit()
        except ComplaintError as exc:
            session.rollback()
            flash(request, f"Жалоба не создана: {exc}", "error")
            return RedirectResponse(back, status_code=303)
        assert complaint.id is not None
        count = complaints.supporters_count(session, complaint.id)
        flash(request, f"Общая жалоба создана, поддерживают: {count}.")
        return RedirectResponse(f"/ui/complaints/{complaint.id}", status_code=303)


# -- one complaint ---------------------------------------------------------------------------


@router.get("/complaints/merge-form")
def merge_form(request: Request, rt: RuntimeDep, me: OperatorDep) -> Response:
    """The inbox's form (fetched by htmx) for the conversations ticked in the queue."""
    return render(request, "_complaint_merge.html", me, topics=topics(rt))


@router.get("/complaints/{complaint_id}")
def complaint_page(
    request: Request, rt: RuntimeDep, me: OperatorDep, complaint_id: ComplaintId
) -> Response:
    with rt.factory() as session:
        complaint = _complaint_or_404(session, complaint_id)
        supporters = complaints.supporters(session, complaint_id)
        conversations = {
            c.id: c
            for c in session.exec(
                select(Conversation).where(
                    col(Conversation.id).in_([s.conversation_id for s in supporters])
                )
            )
        }
        names = {
            c.id: c.display_name
            for c in session.exec(
                select(Citizen).where(col(Citizen.id).in_([s.citizen_id for s in supporters]))
            )
        }
        changes = complaints.history(session, complaint_id)
        lead = session.get(Conversation, complaint.conversation_id or 0)
    return render(
        request, "complaint.html", me, section="complaints", complaint=complaint,
        supporters=supporters, conversations=conversations, names=names, changes=changes,
        moves=allowed_moves(complaint.status), lead=lead, topics=topics(rt), label=status_label,
        tracker=tracker_url(rt.settings.public_url, complaint.slug),
    )  # fmt: skip


def _change_from_form(
    status: str, answer: str, expected_date: str, internal_note: str
) -> ComplaintChange:
    when = None
    if expected_date.strip():
        try:
            when = date.fromisoformat(expected_date.strip()[:10])
        except ValueError:
            raise ComplaintError("Дата не распознана: нужна в виде ГГГГ-ММ-ДД.") from None
    return ComplaintChange(status, answer or None, when, internal_note or None)


@router.post("/complaints/{complaint_id}/status")
def change_status(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    complaint_id: ComplaintId,
    status: Annotated[str, Form(max_length=30)],
    answer: Annotated[str, Form(max_length=complaints.MAX_ANSWER * 2)] = "",
    expected_date: Annotated[str, Form(max_length=30)] = "",
    internal_note: Annotated[str, Form(max_length=4000)] = "",
    version: Annotated[int | None, Form(ge=0, le=2**31 - 1)] = None,
) -> Response:
    """One change and one message to every supporter; the outcome is a flash message."""
    page = RedirectResponse(f"/ui/complaints/{complaint_id}", status_code=303)
    with rt.factory() as session:
        complaint = _complaint_or_404(session, complaint_id)
        try:
            change = _change_from_form(status, answer, expected_date, internal_note)
            outcome = complaints.change_status(
                session, complaint_id, change, Actor.operator(me), rt.clock.now(), _zone(rt),
                seen_version=version, public_url=rt.settings.public_url,
            )  # fmt: skip
            session.commit()
        except ComplaintError as exc:
            session.rollback()
            flash(request, f"Статус не изменён: {exc}", "error")
            return page
        text = status_notice(
            complaint.title, outcome.change.from_status, outcome.change.to_status,
            answer=outcome.change.answer, expected_date=outcome.change.expected_date, url="",
        )  # fmt: skip
    done = (
        f"Статус изменён: {status_label(outcome.change.to_status)}. "
        f"Сообщений жителям в очереди: {len(outcome.notified)}."
    )
    if not check_text(text, readability_bar(request)).ok:
        done += " Текст для жителей сложный — в следующий раз пишите проще."
    flash(request, done)
    return page


@router.post("/complaints/{complaint_id}/join")
def add_appeals(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    complaint_id: ComplaintId,
    numbers: Annotated[str, Form(max_length=5000)] = "",
    conversation_id: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """Add appeals (their numbers, or the conversation viewed) to the supporters."""
    back = f"/ui/c/{conversation_id}" if conversation_id else f"/ui/complaints/{complaint_id}"
    with rt.factory() as session:
        complaint = _complaint_or_404(session, complaint_id)
        try:
            ids = _conversation_ids(session, numbers)
            if conversation_id is not None:
                ids.insert(0, conversation_id)
            added = 0
            for conversation in complaints.load_conversations(session, ids):
                joined = complaints.join(
                    session, complaint, conversation, "operator", rt.clock.now(),
                    actor=Actor.operator(me), public_url=rt.settings.public_url,
                )  # fmt: skip
                added += joined is not None
            session.commit()
        except ComplaintError as exc:
            session.rollback()
            flash(request, f"Не добавлено: {exc}", "error")
            return RedirectResponse(back, status_code=303)
    flash(request, f"Добавлено жителей: {added}." if added else "Эти жители уже поддерживают.")
    return RedirectResponse(back, status_code=303)


@router.post("/complaints/{complaint_id}/supporters/{supporter_id}/remove")
def remove_supporter(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    complaint_id: ComplaintId,
    supporter_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    """«Убрать»: an appeal merged by mistake leaves the complaint."""
    with rt.factory() as session:
        _complaint_or_404(session, complaint_id)
        try:
            complaints.remove_supporter(
                session, complaint_id, supporter_id, rt.clock.now(), Actor.operator(me)
            )
            session.commit()
        except ComplaintError as exc:
            session.rollback()
            flash(request, f"Не убрано: {exc}", "error")
        else:
            flash(request, "Обращение убрано из жалобы. Жителю больше не будут писать о ней.")
    return RedirectResponse(f"/ui/complaints/{complaint_id}", status_code=303)


@router.post("/c/{conversation_id}/complaints")
def add_conversation(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    conversation_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    complaint_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
) -> Response:
    """«Добавить к жалобе» in the conversation view."""
    return add_appeals(request, rt, me, complaint_id, "", conversation_id)


@router.get("/c/{conversation_id}/complaints")
def conversation_panel(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    conversation_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    """The conversation view's panel (fetched by htmx): the complaints this appeal supports,
    adding it to an open one, or a new complaint from it."""
    with rt.factory() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise HTTPException(404, detail="Обращение не найдено.")
        supported = complaints.supporting(session, conversation_id)
        open_rows, _ = complaints.search(session, statuses=[s.value for s in OPEN], limit=100)
    joined = {k.id for k in supported}
    return render(
        request, "_complaint_panel.html", me, c=conversation, supported=supported,
        open_rows=[r for r in open_rows if r.complaint.id not in joined], topics=topics(rt),
        label=status_label,
    )  # fmt: skip


# -- the public tracker ----------------------------------------------------------------------


@public_router.get("/public/complaints/{slug}")
def tracker(
    request: Request, rt: RuntimeDep, slug: Annotated[str, Path(max_length=64)]
) -> Response:
    """The public page of one complaint: nothing personal, nothing internal."""
    with rt.factory() as session:
        complaint = complaints.by_slug(session, slug)
        if complaint is None or complaint.id is None:
            raise HTTPException(404, detail=NOT_FOUND)
        count = complaints.supporters_count(session, complaint.id)
        changes = complaints.history(session, complaint.id)
    return render(
        request, "public_complaint.html", None, complaint=complaint, count=count,
        changes=changes, label=status_label, topics=topics(rt), agency=rt.profile.names[0],
    )  # fmt: skip
