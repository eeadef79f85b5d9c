"""Jinja2 templates (autoescaped: citizens' text is never trusted) and the labels they show."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from core.clock import as_utc
from inbox.models import Operator, Role
from inbox.web.deps import get_runtime
from inbox.web.ui.security import ROLE_NAMES, csrf_token, has_role

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

CHANNELS = {
    "telegram": "Telegram",
    "vk": "ВКонтакте",
    "max": "MAX",
    "email": "Эл. почта",
    "phone": "Телефон",
    "webchat": "Веб-чат",
}
KINDS = {
    "appeal": "Обращение",
    "comment": "Комментарий",
    "mention": "Упоминание",
    "other": "Прочее",
}
STATUSES = {
    "new": "Новое",
    "bot": "У бота",
    "waiting_operator": "Ждёт оператора",
    "answered": "Отвечено",
    "closed": "Закрыто",
}
DELIVERY = {
    "queued": "в очереди",
    "sending": "отправляется",
    "sent": "доставлено",
    "failed": "не доставлено",
    "withheld": "не отправлено: нет согласия",
}
SLA = {
    "running": "идёт",
    "met": "в срок",
    "breached": "просрочено",
    "breached_met": "ответ с опозданием",
    "cancelled": "отменён",
    "none": "без срока",
}
MODERATION_ACTIONS = {"allow": "оставить", "flag": "на проверку", "hide": "скрыть"}


def duration_text(delta: timedelta) -> str:
    """«1 ч 05 мин», «12 мин», «2 д 3 ч»; always positive."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} д {hours} ч"
    if hours:
        return f"{hours} ч {mins:02d} мин"
    return f"{mins} мин"


def countdown(due_at: datetime | None, now: datetime, warn_before: timedelta) -> tuple[str, str]:
    """The text and CSS class of a deadline countdown (the page's script keeps it ticking)."""
    if due_at is None:
        return "без срока", "none"
    left = as_utc(due_at) - as_utc(now)
    if left.total_seconds() < 0:
        return f"просрочено на {duration_text(left)}", "breached"
    css = "warn" if left <= warn_before else "ok"
    return f"осталось {duration_text(left)}", css


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.globals.update(
        CHANNELS=CHANNELS,
        KINDS=KINDS,
        STATUSES=STATUSES,
        DELIVERY=DELIVERY,
        SLA=SLA,
        ROLE_NAMES=ROLE_NAMES,
        MODERATION_ACTIONS=MODERATION_ACTIONS,
        Role=Role,
        has_role=has_role,
        duration_text=duration_text,
    )
    env.filters["percent"] = lambda v: "—" if v is None else f"{v * 100:.0f} %"
    env.filters["duration"] = lambda v: "—" if v is None else duration_text(v)
    env.filters["iso"] = lambda v: as_utc(v).isoformat() if v else ""
    return templates


TEMPLATES = make_templates()


def flash(
    request: Request, text: str, level: str = "ok", link: tuple[str, str] | None = None
) -> None:
    """A message for the next page this browser renders (after a redirect); ``link``: an
    (address, words) pair shown after the text."""
    message: dict[str, Any] = {"text": text, "level": level}
    if link is not None:
        message["link"] = list(link)
    request.session["flash"] = message


def render(
    request: Request,
    name: str,
    operator: Operator | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    runtime = get_runtime(request)
    zone = ZoneInfo(runtime.rules.calendar.timezone)

    def local(moment: datetime | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
        return as_utc(moment).astimezone(zone).strftime(fmt) if moment else "—"

    now = runtime.clock.now()
    warn = runtime.rules.warn_before
    return TEMPLATES.TemplateResponse(
        request,
        name,
        {
            "me": operator,
            "csrf": csrf_token(request),
            "now": now,
            "warn_seconds": int(warn.total_seconds()),
            "local": local,
            "countdown": lambda due: countdown(due, now, warn),
            # fragments (``_*.html``, fetched by htmx) leave the message for the next page
            "flash": None if name.startswith("_") else request.session.pop("flash", None),
            **context,
        },
        status_code=status_code,
    )
