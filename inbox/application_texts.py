"""What the citizen reads about an application's status, in plain Russian, in one place.

The notification sent on each change (``status_notice``) and the lines of the history the
bot shows (``history_lines``). Every template passes the readability check
(tests/test_applications.py); what operators type into a comment or a reason is theirs, and
the UI shows its verdict before sending. The citizen bot imports these (bot → inbox), the
inbox never imports the bot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from inbox.application_status import ApplicationStatus

S = ApplicationStatus

#: The status as the citizen is told it («Статус: в работе»).
CITIZEN_LABELS: dict[str, str] = {
    S.submitted: "принято, ждёт рассмотрения",
    S.in_progress: "в работе",
    S.info_needed: "нужны сведения от вас",
    S.done: "выполнено",
    S.refused: "отказано",
}

#: The first line of the notification, by the new status.
NOTICE_HEAD: dict[str, str] = {
    S.in_progress: "Ваше заявление {number} взяли в работу. Мы напишем, когда всё будет готово.",
    S.info_needed: "По заявлению {number} нам нужны сведения от вас.",
    S.done: "Ваше заявление {number} выполнено. Спасибо, что написали нам!",
    S.refused: "Заявление {number}: сделать это сейчас нельзя.",
}
#: Back to work after ``done`` or ``refused``.
NOTICE_REOPENED = "Ваше заявление {number} снова в работе. Мы напишем, когда всё будет готово."
NOTICE_DATE = "Срок: до {date}."
NOTICE_WHAT = "Что нужно: {comment}"
NOTICE_HOW_TO_ANSWER = "Нажмите «Отправить сведения» и напишите ответ. Его получит оператор."
NOTICE_WHY = "Почему: {reason}"
NOTICE_WHEN = "Когда будет можно: {date}."
NOTICE_NO_DATE = "Срок пока назвать не можем."
NOTICE_COMMENT = "Комментарий: {comment}"

#: Buttons under the notification (ids as in ``bot.citizen.texts``: short and ASCII-prefixed).
STATUS_BUTTON = "status:"
INFO_BUTTON = "appinfo:"
BUTTON_HISTORY = "История заявления"
BUTTON_SEND_INFO = "Отправить сведения"

#: The bot's status answer: the head line, then the history.
HISTORY_HEAD = "История:"
HISTORY_SUBMITTED = "{date} — подано."
HISTORY_LINE = "{date} — {status}."
#: At most this many changes in the bot's answer (the newest), each text cut to ``CUT``
#: characters: a message must stay far below Telegram's 4096.
HISTORY_LIMIT = 5
CUT = 300


def format_date(value: date) -> str:
    return value.strftime("%d.%m.%Y")


def _cut(text: str, limit: int = CUT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def status_notice(
    number: str,
    previous: str,
    status: str,
    *,
    comment: str | None = None,
    reason: str | None = None,
    expected_date: date | None = None,
) -> str:
    """The message the citizen gets when the application moves from ``previous`` to ``status``."""
    reopened = status == S.in_progress and previous in (S.done, S.refused)
    lines = [(NOTICE_REOPENED if reopened else NOTICE_HEAD[status]).format(number=number)]
    if status == S.in_progress and expected_date:
        lines.append(NOTICE_DATE.format(date=format_date(expected_date)))
    if status == S.info_needed:
        lines.append(NOTICE_WHAT.format(comment=comment or ""))
        lines.append(NOTICE_HOW_TO_ANSWER)
    if status == S.refused:
        lines.append(NOTICE_WHY.format(reason=reason or ""))
        if expected_date:
            lines.append(NOTICE_WHEN.format(date=format_date(expected_date)))
        else:
            lines.append(NOTICE_NO_DATE)
    if comment and status != S.info_needed:
        lines.append(NOTICE_COMMENT.format(comment=comment))
    return "\n".join(lines)


def notice_buttons(number: str, status: str) -> list[list[dict[str, str]]]:
    """The notification's buttons: send the information asked for, or see the history."""
    if status == S.info_needed:
        return [[{"id": f"{INFO_BUTTON}{number}", "text": BUTTON_SEND_INFO}]]
    return [[{"id": f"{STATUS_BUTTON}{number}", "text": BUTTON_HISTORY}]]


@dataclass(frozen=True)
class HistoryItem:
    """One change as the citizen may see it (no internal note, no actor)."""

    at: datetime
    status: str
    comment: str | None = None
    reason: str | None = None
    expected_date: date | None = None


def history_lines(submitted_on: date, items: list[HistoryItem], day_of: object) -> list[str]:
    """The history for the bot's status answer: the submission, then the newest changes.

    ``day_of`` turns a moment into the agency's local date (the caller knows the time zone).
    """
    lines = [HISTORY_HEAD]
    shown = items[-HISTORY_LIMIT:]
    if len(shown) == len(items):
        lines.append(HISTORY_SUBMITTED.format(date=format_date(submitted_on)))
    for item in shown:
        day: date = day_of(item.at)  # type: ignore[operator]
        line = HISTORY_LINE.format(
            date=format_date(day), status=CITIZEN_LABELS.get(item.status, item.status)
        )
        parts = [line]
        if item.status == S.in_progress and item.expected_date:
            parts.append(NOTICE_DATE.format(date=format_date(item.expected_date)))
        if item.status == S.refused:
            parts.append(NOTICE_WHY.format(reason=_cut(item.reason or "")))
            parts.append(
                NOTICE_WHEN.format(date=format_date(item.expected_date))
                if item.expected_date
                else NOTICE_NO_DATE
            )
        if item.comment:
            label = NOTICE_WHAT if item.status == S.info_needed else NOTICE_COMMENT
            parts.append(label.format(comment=_cut(item.comment)))
        lines.append(" ".join(parts))
    return lines
