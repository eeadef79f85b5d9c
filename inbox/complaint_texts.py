"""What citizens read about a shared complaint (plain Russian, one place): the notice that
they joined, the notice of each status change, the bot's +1 offer.

Every template passes the readability check (tests/test_complaints.py). The tracker link is
``public_url`` + ``/public/complaints/<slug>`` (``OTKLIK_PUBLIC_URL``; without it, the path).
"""

from __future__ import annotations

from datetime import date

from inbox.application_status import ApplicationStatus
from inbox.application_texts import CITIZEN_LABELS, format_date

S = ApplicationStatus

TRACKER_PATH = "/public/complaints/{slug}"

JOINED = (
    "Ваше обращение {number} добавили к общей жалобе «{title}» ({place}). "
    "Её поддерживают жителей: {count}. Мы напишем вам, когда статус жалобы изменится."
)
TRACK = "Следить за жалобой: {url}"
NOTICE_HEAD: dict[str, str] = {
    S.submitted: "Общая жалоба «{title}» снова ждёт рассмотрения.",
    S.in_progress: "Общую жалобу «{title}» взяли в работу.",
    S.info_needed: "По общей жалобе «{title}» нужны сведения.",
    S.done: "Общая жалоба «{title}»: работа выполнена. Спасибо, что поддержали её!",
    S.refused: "Общая жалоба «{title}»: сделать это сейчас нельзя.",
}
NOTICE_DATE = "Срок: до {date}."
NOTICE_WHEN = "Когда будет можно: {date}."
NOTICE_ANSWER = "Ответ ведомства: {answer}"

#: The bot's offer, when a new application matches an open shared complaint.
OFFER = (
    "О такой проблеме уже сообщили соседи: «{title}» ({place}). "
    "Её поддерживают жителей: {count}. Статус: {status}.\n"
    "Можно поддержать эту жалобу, а не подавать новое заявление. "
    "Тогда мы напишем вам о каждом её изменении."
)
BUTTON_JOIN = "Поддержать (+1)"
BUTTON_SEPARATE = "Подать отдельно"
JOIN_DONE = (
    "Спасибо! Вы поддержали жалобу «{title}». Теперь её поддерживают жителей: {count}. "
    "Мы напишем вам, когда статус жалобы изменится."
)
JOIN_ALREADY = "Вы уже поддержали жалобу «{title}». Мы напишем вам о каждом её изменении."
JOIN_CLOSED = "Эта жалоба уже закрыта. Продолжим ваше заявление."


def tracker_url(public_url: str, slug: str) -> str:
    return public_url.rstrip("/") + TRACKER_PATH.format(slug=slug)


def status_notice(
    title: str,
    previous: str,
    status: str,
    *,
    answer: str | None,
    expected_date: date | None,
    url: str,
) -> str:
    """The message every supporter gets when the complaint moves from ``previous`` to
    ``status``."""
    head = NOTICE_HEAD.get(status, "Статус общей жалобы «{title}» изменился.")
    lines = [head.format(title=title)]
    if expected_date and status == S.in_progress:
        lines.append(NOTICE_DATE.format(date=format_date(expected_date)))
    if expected_date and status == S.refused:
        lines.append(NOTICE_WHEN.format(date=format_date(expected_date)))
    if answer:
        lines.append(NOTICE_ANSWER.format(answer=answer))
    lines.append(TRACK.format(url=url))
    return "\n".join(lines)


def status_label(status: str) -> str:
    """The status as citizens read it (the tracker page, the bot's offer)."""
    return CITIZEN_LABELS.get(status, status)
