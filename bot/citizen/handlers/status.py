"""Tracking an application's status by its number (typed, or picked from the citizen's own).

The answer shows the status and its history: each change the agency made, with the
comment the citizen may read and, for a refusal, why and when it becomes possible
(``inbox.application_texts``). Internal notes and who made a change are never shown.
The «Отправить сведения» button under a «more information needed» notice hands the dialogue
to an operator, who receives the citizen's answer.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.citizen import texts
from bot.citizen.dialogue import Turn
from bot.citizen.handlers.application import citizen_applications
from bot.citizen.router import Router, button, has_text, step, typed
from core.clock import as_utc
from inbox.application_status import ApplicationStatus
from inbox.application_texts import CITIZEN_LABELS, INFO_BUTTON, HistoryItem, history_lines
from inbox.applications import application_number, history
from inbox.models import Application

router = Router("status")

#: «З-2026-000042», also typed loosely: «з 2026 42», «3-2026-000042» (a digit for the letter).
NUMBER = r"(?<!\w)[ЗзZz3]\s*-?\s*(\d{4})\s*-?\s*(\d{1,9})(?!\d)"


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


@router.on(button(INFO_BUTTON))
def send_information(turn: Turn) -> None:
    """«Отправить сведения»: an operator takes the dialogue and gets what the citizen writes."""
    assert turn.input.button is not None
    number = turn.input.button.removeprefix(INFO_BUTTON)
    application = _own(turn, number)
    if application is None or application.status != ApplicationStatus.info_needed.value:
        _answer(turn, number)
        return
    # The application's number, not the appeal's: it is the one the citizen knows. (It is an
    # existing application's number here, so there is nothing left for handoff to format.)
    text = texts.STATUS_SEND_INFO.format(number=application.number)
    turn.handoff(f"сведения по заявлению {application.number}", text)


@router.on(typed(NUMBER))
def typed_number(turn: Turn) -> None:
    number = _find_number(turn.input.text)
    assert number is not None
    _answer(turn, number)


@router.on(step("status"), has_text)
def not_a_number(turn: Turn) -> None:
    turn.ask("status", texts.STATUS_PROMPT, texts.BACK)


def _own(turn: Turn, number: str) -> Application | None:
    """Only the citizen's own applications are shown (personal data, 152-ФЗ)."""
    return turn.session.exec(
        select(Application)
        .where(Application.number == number[:32])
        .where(Application.citizen_id == turn.conversation.citizen_id)
    ).first()


def _answer(turn: Turn, number: str) -> None:
    application = _own(turn, number)
    if application is None:
        turn.ask("status", texts.STATUS_NOT_FOUND.format(number=number[:32]), texts.BACK)
        return
    assert application.id is not None
    zone = ZoneInfo(turn.context.rules.calendar.timezone)
    head = texts.STATUS_FOUND.format(
        number=application.number,
        service=application.fields.get("service_title") or application.service,
        created=as_utc(application.created_at).astimezone(zone).strftime("%d.%m.%Y"),
        status=CITIZEN_LABELS.get(application.status, application.status),
    )
    changes = [
        HistoryItem(c.changed_at, c.to_status, c.comment, c.reason, c.expected_date)
        for c in history(turn.session, application.id)
    ]
    if changes:
        submitted = as_utc(application.created_at).astimezone(zone).date()
        lines = history_lines(submitted, changes, lambda at: as_utc(at).astimezone(zone).date())
        head = "\n".join([head, *lines])
    buttons = texts.AFTER_ANSWER
    if application.status == ApplicationStatus.info_needed.value:
        buttons = [
            [{"id": f"{INFO_BUTTON}{application.number}", "text": texts.SEND_INFO_LABEL}],
            *texts.AFTER_ANSWER,
        ]
    turn.ask(None, head, buttons)
