"""One conversation: history, suggestions, the reply with its readability verdict, actions."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from core.bounded import DbId
from core.clock import as_utc
from inbox import audit, workflow
from inbox.history import citizen_history, merge_citizens, root_citizen
from inbox.models import (
    Citizen,
    Conversation,
    Direction,
    Identity,
    Message,
    ModerationDecision,
    Operator,
    Role,
)
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from inbox.web.deps import RuntimeDep
from inbox.web.ui.application_routes import citizen_panels
from inbox.web.ui.mailing_routes import citizen_consents
from inbox.web.ui.resources import knowledge_base, readability_bar
from inbox.web.ui.security import OperatorDep, has_role, verify_csrf
from inbox.web.ui.templating import flash, render
from knowledge_base.readability import check_text
from knowledge_base.templates import (
    KNOWN_VARIABLES,
    MissingVariablesError,
    default_templates,
    render_template,
)

router = APIRouter(dependencies=[Depends(verify_csrf)])


def _back(conversation_id: int) -> RedirectResponse:
    return RedirectResponse(f"/ui/c/{conversation_id}", status_code=303)


def _load(session: Session, conversation_id: int, *, lock: bool = False) -> Conversation:
    if lock:
        conversation = workflow.lock_conversation(session, conversation_id)
    else:
        conversation = session.exec(
            select(Conversation).where(Conversation.id == conversation_id)
        ).first()
    if conversation is None:
        raise HTTPException(404, detail="Обращение не найдено.")
    return conversation


def _template_variables(
    rt: Runtime, conversation: Conversation, citizen: Citizen | None, me: Operator, answer: str
) -> dict[str, Any]:
    zone = ZoneInfo(rt.rules.calendar.timezone)
    due = as_utc(conversation.due_at).astimezone(zone) if conversation.due_at else None
    return {
        "citizen_name": citizen.display_name if citizen else None,
        "appeal_number": conversation.number,
        "deadline": due,
        "operator_name": me.display_name,
        "agency_name": rt.profile.names[0],
        "answer": answer or None,
    }


def fill_template(template_id: str, variables: dict[str, Any]) -> str:
    """The template filled in; a variable we cannot fill is marked for the operator to edit.

    Unlike ``templates.preview`` this skips the readability check: the verdict appears when
    the operator puts the text into the reply box, and a page shows a dozen templates.
    """
    try:
        return render_template(template_id, variables)
    except MissingVariablesError as exc:
        marks = {name: f"[не заполнено: {KNOWN_VARIABLES.get(name, name)}]" for name in exc.missing}
        return render_template(template_id, {**variables, **marks})


@router.get("/c/{conversation_id}")
def conversation_page(
    request: Request, rt: RuntimeDep, me: OperatorDep, conversation_id: DbId
) -> Response:
    with rt.factory() as session:
        conversation = _load(session, conversation_id)
        citizen = session.get(Citizen, conversation.citizen_id)
        identities = session.exec(
            select(Identity).where(Identity.citizen_id == conversation.citizen_id)
        ).all()
        history = citizen_history(session, conversation.citizen_id)
        messages = next((m for c, m in history if c.id == conversation.id), [])
        decisions: dict[int, list[ModerationDecision]] = defaultdict(list)
        ids = [m.id for m in messages if m.id is not None]
        if ids:
            for d in session.exec(
                select(ModerationDecision)
                .where(col(ModerationDecision.message_id).in_(ids))
                .order_by(col(ModerationDecision.id))
            ).all():
                decisions[d.message_id].append(d)
        operators = session.exec(
            select(Operator).where(col(Operator.active).is_(True)).order_by(Operator.login)
        ).all()
        names = {o.id: o.display_name for o in session.exec(select(Operator)).all()}
    inbound = [m.text for m in messages if m.direction == Direction.inbound.value]
    hits = knowledge_base(request).search(inbound[-1], k=3) if inbound else []
    best = hits[0].entry if hits else None
    answer = (best.short_answer if conversation.is_public else best.full_answer) if best else ""
    variables = _template_variables(rt, conversation, citizen, me, answer)
    templates = [
        (t, fill_template(t.id, variables))
        for t in default_templates().values()
        if t.channel == "any" or t.channel == ("public" if conversation.is_public else "private")
    ]
    move_to_private = fill_template("move_to_private", variables)
    return render(
        request,
        "conversation.html",
        me,
        c=conversation,
        citizen=citizen,
        identities=identities,
        history=history,
        messages=messages,
        decisions=decisions,
        operators=operators,
        names=names,
        hits=hits,
        templates=templates,
        move_to_private=move_to_private,
        app_panels=citizen_panels(rt, conversation),
        **citizen_consents(rt, conversation),
    )


@router.post("/readability")
def readability(
    request: Request,
    me: OperatorDep,
    text: Annotated[str, Form()] = "",
    field: Annotated[str, Form()] = "",
    short_answer: Annotated[str, Form()] = "",
    full_answer: Annotated[str, Form()] = "",
    cannot_because: Annotated[str, Form()] = "",
    available_when: Annotated[str, Form()] = "",
) -> Response:
    """The verdict on a draft (a warning for the operator, never a block).

    The reply box sends ``text``. A field of the KB entry form (htmx sends the whole form)
    names itself in ``field``: its text is checked, not its neighbours'.
    """
    fields = {
        "short_answer": short_answer,
        "full_answer": full_answer,
        "cannot_because": cannot_because,
        "available_when": available_when,
    }
    text = fields.get(field, text)
    report = check_text(text, readability_bar(request)) if text.strip() else None
    return render(request, "_readability.html", me, report=report)


#: The conversation's version the operator saw (hidden field): a stale one means someone else
#: changed it meanwhile, e.g. a colleague already answered; the action is then refused.
VersionForm = Annotated[int | None, Form()]


def _act(
    request: Request,
    rt: Runtime,
    conversation_id: int,
    action: Any,
    done: str,
    seen_version: int | None = None,
) -> Response:
    """Run ``action(session, conversation)`` in one transaction; report errors as a flash."""
    with rt.factory() as session:
        conversation = _load(session, conversation_id, lock=True)
        if seen_version is not None and seen_version != conversation.version:
            flash(request, "Обращение изменилось, пока вы его читали (например, коллега уже "
                  "ответил). Проверьте переписку и повторите.", "error")  # fmt: skip
            return _back(conversation_id)
        try:
            action(session, conversation)
        except workflow.WorkflowError as exc:
            session.rollback()
            flash(request, str(exc), "error")
            return _back(conversation_id)
        session.commit()
    flash(request, done)
    return _back(conversation_id)


@router.post("/c/{conversation_id}/take")
def take(
    request: Request, rt: RuntimeDep, me: OperatorDep, conversation_id: DbId,
    version: VersionForm = None,
) -> Response:  # fmt: skip
    now = rt.clock.now()
    return _act(
        request, rt, conversation_id,
        lambda s, c: workflow.assign(s, c, s.get(Operator, me.id), now),
        "Вы взяли обращение в работу.", version,
    )  # fmt: skip


@router.post("/c/{conversation_id}/assign")
def assign(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    conversation_id: DbId,
    operator_id: Annotated[DbId, Form()],
    version: VersionForm = None,
) -> Response:
    if operator_id != me.id and not has_role(me, Role.supervisor):
        raise HTTPException(403, detail="Назначать другим может только руководитель.")
    now = rt.clock.now()

    def action(session: Session, conversation: Conversation) -> None:
        target = session.get(Operator, operator_id)
        if target is None:
            raise workflow.WorkflowError("нет такого оператора")
        workflow.assign(session, conversation, target, now, by=session.get(Operator, me.id))

    return _act(request, rt, conversation_id, action, "Исполнитель назначен.", version)


@router.post("/c/{conversation_id}/merge-citizen")
def merge_citizen(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    conversation_id: DbId,
    number: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """«Тот же житель»: the citizen of the conversation numbered ``number`` is this one's (an
    operator recognised them: same name and address by phone and in a chat). One history from
    then on; audited (``citizens_merged`` with the operator) by ``merge_citizens``."""
    now = rt.clock.now()

    def action(session: Session, conversation: Conversation) -> None:
        other = session.exec(
            select(Conversation).where(Conversation.number == number.strip().upper())
        ).first()
        if other is None:
            raise workflow.WorkflowError("Обращение с таким номером не найдено.")
        keep = root_citizen(session, conversation.citizen_id)
        merged = root_citizen(session, other.citizen_id)
        if keep == merged:
            raise workflow.WorkflowError("Эти обращения уже от одного жителя.")
        try:
            merge_citizens(session, keep, merged, now, actor=me.login)
        except ValueError as exc:
            raise workflow.WorkflowError(f"Объединить нельзя: {exc}.") from exc
        audit.record(
            session, "citizens_merged_by_operator", now, conversation_id=conversation.id,
            operator_id=me.id, actor=me.login, keep=keep, merged=merged, other=other.id,
        )  # fmt: skip

    return _act(request, rt, conversation_id, action, "Обращения объединены: это один житель.")


@router.post("/c/{conversation_id}/to-bot")
def to_bot(
    request: Request, rt: RuntimeDep, me: OperatorDep, conversation_id: DbId,
    version: VersionForm = None,
) -> Response:  # fmt: skip
    now = rt.clock.now()
    return _act(
        request, rt, conversation_id,
        lambda s, c: workflow.to_bot(s, c, now, actor=me.login),
        "Обращение возвращено боту.", version,
    )  # fmt: skip


@router.post("/c/{conversation_id}/close")
def close(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    conversation_id: DbId,
    reason: Annotated[str, Form()] = "",
    version: VersionForm = None,
) -> Response:
    now = rt.clock.now()
    return _act(
        request, rt, conversation_id,
        lambda s, c: workflow.close(s, c, now, by=s.get(Operator, me.id), reason=reason.strip()),
        "Обращение закрыто.", version,
    )  # fmt: skip


@router.post("/c/{conversation_id}/reply")
def reply(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    conversation_id: DbId,
    text: Annotated[str, Form()],
    mode: Annotated[str, Form()] = "default",
    version: VersionForm = None,
) -> Response:
    """Send the reply (public or private), or publicly offer to continue in private."""
    now = rt.clock.now()
    report = check_text(text, readability_bar(request))

    def action(session: Session, conversation: Conversation) -> None:
        operator = session.get(Operator, me.id)
        public = {"public": True, "private": False, "move_private": True}.get(mode)
        message = workflow.reply(session, conversation, text, now, operator=operator, public=public)
        message.meta = {
            **message.meta,
            "readability": {"ok": report.ok, "grade": report.grade_level},
            "mode": mode,
        }
        if mode == "move_private":
            workflow.note(
                session, conversation, operator,  # type: ignore[arg-type]
                "Жителю публично предложено продолжить в личных сообщениях.", now,
            )  # fmt: skip

    done = "Ответ поставлен в очередь на отправку."
    if not report.ok:
        done += " Текст сложный для чтения — проверьте его в следующий раз."
    return _act(request, rt, conversation_id, action, done, version)


@router.post("/c/{conversation_id}/note")
def add_note(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    conversation_id: DbId,
    text: Annotated[str, Form()],
) -> Response:
    now = rt.clock.now()

    def action(session: Session, conversation: Conversation) -> None:
        if not text.strip():
            raise workflow.WorkflowError("пустая заметка не сохраняется")
        workflow.note(session, conversation, session.get(Operator, me.id), text.strip(), now)  # type: ignore[arg-type]

    return _act(request, rt, conversation_id, action, "Заметка сохранена.")


@router.post("/c/{conversation_id}/moderation/{message_id}")
def moderate(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    conversation_id: DbId,
    message_id: DbId,
    action: Annotated[str, Form()],
    reason: Annotated[str, Form()],
) -> Response:
    """Confirm or override an automatic moderation decision; the reason is required."""
    now = rt.clock.now()

    def review(session: Session, conversation: Conversation) -> None:
        workflow.review_moderation(session, conversation, message_id, action, reason, me, now)

    return _act(request, rt, conversation_id, review, "Решение модерации записано.")


@router.post("/c/{conversation_id}/retry/{message_id}")
def retry(
    request: Request, rt: RuntimeDep, me: OperatorDep, conversation_id: DbId, message_id: DbId
) -> Response:
    with rt.factory() as session:
        message = session.get(Message, message_id)
        if message is None or message.conversation_id != conversation_id:
            raise HTTPException(404, detail="Сообщение не найдено.")
    try:
        Outbox(rt.factory, rt.clock, {}).retry_now(message_id)
    except ValueError:
        flash(request, "Повторить можно только недоставленное сообщение.", "error")
        return _back(conversation_id)
    with rt.factory() as session:
        audit.record(
            session, "retry_requested", rt.clock.now(), conversation_id=conversation_id,
            operator_id=me.id, actor=me.login, message_id=message_id,
        )  # fmt: skip
        session.commit()
    flash(request, "Сообщение снова поставлено в очередь.")
    return _back(conversation_id)
