"""Tracking an application's status by its number (typed, or picked from the citizen's own)."""

from __future__ import annotations

import re

from sqlmodel import select

from bot.citizen import texts
from bot.citizen.dialogue import Turn
from bot.citizen.handlers.application import application_number, citizen_applications
from bot.citizen.router import Router, button, has_text, step, typed
from inbox.clock import as_utc
from inbox.models import Application

router = Router("status")

#: «З-2026-000042», also typed loosely: «з 2026 42», «3-2026-000042» (a digit for the letter).
NUMBER = r"(?<!\w)[ЗзZz3]\s*-?\s*(\d{4})\s*-?\s*(\d{1,6})(?!\d)"


def _find_number(text: str) -> str | None:
    match = re.search(NUMBER, text)
    return application_number(int(match.group(1)), int(match.group(2))) if match else None


@router.on(button(texts.STATUS))
def ask_number(turn: Turn) -> None:
    own = citizen_applications(turn)
    if not own:
        turn.ask("status", texts.STATUS_PROMPT, texts.BACK)
        return
    rows: list[list[texts.Button]] = [
        [{"id": f"{texts.STATUS_PREFIX}{a.number}", "text": f"{a.number}"}] for a in own
    ]
    turn.ask("status", texts.STATUS_PICK, [*rows, *texts.BACK])


@router.on(button(texts.STATUS_PREFIX))
def picked(turn: Turn) -> None:
    assert turn.input.button is not None
    _answer(turn, turn.input.button.removeprefix(texts.STATUS_PREFIX))


@router.on(typed(NUMBER))
def typed_number(turn: Turn) -> None:
    number = _find_number(turn.input.text)
    assert number is not None
    _answer(turn, number)


@router.on(step("status"), has_text)
def not_a_number(turn: Turn) -> None:
    turn.ask("status", texts.STATUS_PROMPT, texts.BACK)


def _answer(turn: Turn, number: str) -> None:
    """Only the citizen's own applications are shown (personal data, 152-ФЗ)."""
    application = turn.session.exec(
        select(Application)
        .where(Application.number == number)
        .where(Application.citizen_id == turn.conversation.citizen_id)
    ).first()
    if application is None:
        turn.ask("status", texts.STATUS_NOT_FOUND.format(number=number), texts.BACK)
        return
    text = texts.STATUS_FOUND.format(
        number=application.number,
        service=application.fields.get("service_title") or application.service,
        created=as_utc(application.created_at).strftime("%d.%m.%Y"),
        status=texts.STATUS_LABELS.get(application.status, application.status),
    )
    turn.ask(None, text, texts.AFTER_ANSWER)
