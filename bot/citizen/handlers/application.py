"""Submitting an application (заявление): kind, address, description, phone, confirmation.

``application_number`` (re-exported here) comes from ``inbox.applications``, where the
agency's side of the lifecycle lives."""

from __future__ import annotations

import re

from sqlmodel import col, select

from bot.citizen import texts
from bot.citizen.dialogue import Turn
from bot.citizen.handlers import complaint
from bot.citizen.router import Router, button, has_text, step
from inbox import audit
from inbox.applications import application_number
from inbox.models import Application

router = Router("application")

_NON_DIGITS = re.compile(r"[\s()\-.]")


def normalize_phone(text: str) -> str | None:
    """A Russian phone number as +7XXXXXXXXXX, or None when it is not one."""
    digits = _NON_DIGITS.sub("", text.strip())
    match = re.fullmatch(r"(?:\+7|8|7)?(\d{10})", digits)
    return f"+7{match.group(1)}" if match else None


def _service_buttons(turn: Turn) -> list[list[texts.Button]]:
    rows: list[list[texts.Button]] = [
        [{"id": f"{texts.SERVICE_PREFIX}{s.id}", "text": s.title}]
        for s in turn.context.catalog.services
    ]
    return [*rows, *texts.BACK]


@router.on(button(texts.APPLY))
def start(turn: Turn) -> None:
    turn.state.form = {}
    turn.ask("apply.service", texts.APPLY_SERVICE, _service_buttons(turn))


@router.on(step("apply.service"), button(texts.SERVICE_PREFIX))
def chosen_service(turn: Turn) -> None:
    assert turn.input.button is not None
    service = turn.context.catalog.service(turn.input.button.removeprefix(texts.SERVICE_PREFIX))
    if service is None:
        turn.ask("apply.service", texts.APPLY_CHOOSE_SERVICE, _service_buttons(turn))
        return
    turn.state.form = {"service": service.id}
    turn.ask("apply.address", texts.APPLY_ADDRESS, texts.BACK)


@router.on(step("apply.service"))
def service_not_chosen(turn: Turn) -> None:
    turn.ask("apply.service", texts.APPLY_CHOOSE_SERVICE, _service_buttons(turn))


@router.on(step("apply.address", "apply.description"), has_text)
def free_text_field(turn: Turn) -> None:
    value = turn.input.text.strip()
    if len(value) < 5:
        turn.ask(turn.state.step, texts.APPLY_TOO_SHORT, texts.BACK)
        return
    if turn.state.step == "apply.address":
        turn.state.form["address"] = value[:300]
        if complaint.offer(turn):  # an open shared complaint of this place: +1 instead?
            return
        turn.ask("apply.description", texts.APPLY_DESCRIPTION, texts.BACK)
    else:
        turn.state.form["description"] = value[:2000]
        turn.ask("apply.phone", texts.APPLY_PHONE, texts.BACK)


@router.on(step("apply.phone"), has_text)
def phone(turn: Turn) -> None:
    number = normalize_phone(turn.input.text)
    if number is None:
        turn.ask("apply.phone", texts.APPLY_BAD_PHONE, texts.BACK)
        return
    turn.state.form["phone"] = number
    form = turn.state.form
    service = turn.context.catalog.service(form["service"])
    summary = texts.APPLY_CHECK.format(
        service=service.title if service else form["service"],
        address=form["address"],
        description=form["description"],
        phone=number,
    )
    turn.ask("apply.confirm", summary, texts.CONFIRM)


@router.on(step("apply.confirm"), button(texts.APPLY_CONFIRM))
def confirm(turn: Turn) -> None:
    form = turn.state.form
    service = turn.context.catalog.service(form.get("service", ""))
    application = Application(
        citizen_id=turn.conversation.citizen_id,
        conversation_id=turn.conversation.id,
        service=form.get("service", ""),
        fields={**form, "service_title": service.title if service else ""},
        created_at=turn.now,
        updated_at=turn.now,
    )
    turn.session.add(application)
    turn.session.flush()
    assert application.id is not None
    application.number = application_number(turn.now.year, application.id)
    audit.record(
        turn.session, "application_submitted", turn.now, conversation_id=turn.conversation.id,
        actor="bot", number=application.number, service=application.service,
    )  # fmt: skip
    turn.state.form = {}
    turn.ask(None, texts.APPLY_DONE.format(number=application.number), texts.AFTER_ANSWER)


@router.on(step("apply.confirm"), button(texts.APPLY_CANCEL))
def cancel(turn: Turn) -> None:
    turn.state.form = {}
    turn.ask(None, texts.APPLY_CANCELLED, texts.MAIN_MENU)


@router.on(step("apply.address", "apply.description", "apply.phone", "apply.confirm"))
def unexpected(turn: Turn) -> None:
    """A file or a stray button in the middle of the form: repeat the question."""
    prompts = {
        "apply.address": texts.APPLY_ADDRESS,
        "apply.description": texts.APPLY_DESCRIPTION,
        "apply.phone": texts.APPLY_PHONE,
    }
    if turn.state.step == "apply.confirm":
        turn.ask("apply.confirm", "Нажмите «Отправить» или «Отменить».", texts.CONFIRM)
        return
    assert turn.state.step is not None
    turn.ask(turn.state.step, prompts[turn.state.step], texts.BACK)


def citizen_applications(turn: Turn, limit: int = 5) -> list[Application]:
    return list(
        turn.session.exec(
            select(Application)
            .where(Application.citizen_id == turn.conversation.citizen_id)
            .order_by(col(Application.id).desc())
            .limit(limit)
        )
    )
