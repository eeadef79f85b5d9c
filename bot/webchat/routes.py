"""The web chat: ``GET /chat`` (the page) and its JSON API under ``/api/chat``.

The page polls ``GET /api/chat/messages?after=<id>`` every two seconds; a message is sent with
``POST /api/chat/messages`` (JSON only: with the SameSite=Lax cookie this keeps other sites from
posting in the citizen's name). The citizen's input is stored, then processed and answered by
the bot on the app's processing executor (``inbox/web/processing.py``, as the webhooks) before
the POST returns, so the bot's reply is there on the next poll; when the executor is full, the
message waits in the journal for ``process_pending`` and its hook answers it. With
``OTKLIK_PROCESSING=worker`` the POST only stores it in the journal; ``otklik worker``
processes it and the bot answers within about a second, and the page's polling shows the
citizen's message and the answer then (a pressed button's "an operator has it" note is not
shown in that mode: the POST no longer knows whether the bot will answer).

Sessions are ids the server issued and signed (``bot.webchat.session``). A message that would
open a new conversation counts against quotas per client address (an hour, a minute) and per
session (an hour) (``inbox.quota``); over one, the POST answers 429 with ``Retry-After`` and a
Russian ``detail`` the page shows. Messages in an open conversation and rating presses do not count.
"""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import Field, model_validator

from bot.citizen.payment import qr_png
from bot.citizen.texts import BUTTON_WHILE_OPERATOR, RATE_PREFIX, RATE_REFUSED
from bot.intake import receive
from bot.webchat import session, store
from bot.webchat.session import COOKIE
from core.bounded import INT64_MAX, DbId
from core.codepoints import StorableModel
from inbox import quota
from inbox.runtime import Runtime
from inbox.web.processing import settled

__all__ = ["COOKIE", "router"]

log = logging.getLogger(__name__)

router = APIRouter()
STATIC = Path(__file__).resolve().parent / "static"
UNAVAILABLE = "Сервис временно недоступен, попробуйте ещё раз"
#: The quotas of new conversations (``OTKLIK_WEBCHAT_NEW_CONVERSATIONS_PER_…``).
BY_ADDRESS = "webchat-address"
BY_ADDRESS_MINUTE = "webchat-address-minute"
BY_SESSION = "webchat-session"
#: What the page shows on 429 (``{minutes}``: when to try again).
TOO_MANY_NEW = {
    BY_ADDRESS: (
        "С вашего адреса за последний час открыто слишком много новых обращений. "
        "Попробуйте снова через {minutes} мин."
    ),
    BY_ADDRESS_MINUTE: (
        "С вашего адреса сейчас открывают слишком много новых обращений. "
        "Попробуйте снова через {minutes} мин."
    ),
    BY_SESSION: (
        "В этом чате за последний час открыто слишком много новых обращений. "
        "Попробуйте снова через {minutes} мин."
    ),
}


class ChatInput(StorableModel):  # a lone surrogate becomes U+FFFD before any check
    text: str = Field(default="", max_length=4000)
    button: str | None = Field(default=None, max_length=64)
    label: str | None = Field(default=None, max_length=200)
    #: A random id the page gives each message, so a resent POST is not stored twice.
    client_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @model_validator(mode="after")
    def _something(self) -> ChatInput:
        if not self.text.strip() and not self.button:
            raise ValueError("пустое сообщение")
        return self


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def client_address(request: Request) -> str:
    """The client's address as the server sees it (see docs/webchat.md#limits)."""
    return request.client.host if request.client else "unknown"


@router.get("/chat", response_class=HTMLResponse)
def chat_page(request: Request) -> HTMLResponse:
    response = HTMLResponse((STATIC / "chat.html").read_text(encoding="utf-8"))
    session.remember(request, response, session.current(request) or session.new_id())
    return response


@router.get("/chat/static/{name}")
def chat_static(name: str) -> FileResponse:
    if name not in ("chat.js", "chat.css"):
        raise HTTPException(404)
    return FileResponse(STATIC / name)


@router.post("/api/chat/messages")
async def post_message(
    request: Request, body: ChatInput, response: Response
) -> dict[str, bool | str]:
    session_id = session.current(request)
    fresh = session_id is None
    if session_id is None:  # no cookie, an expired one or one the server did not sign
        session_id = session.new_id()
        session.remember(request, response, session_id)
    rt = _runtime(request)
    rating = body.button is not None and body.button.startswith(RATE_PREFIX)
    if not rating:  # a rating press opens no conversation
        await _count_new_conversation(request, rt, session_id, fresh)
    event = store.inbound_event(
        session_id, rt.clock.now(), text=body.text.strip(), button=body.button,
        label=body.label, client_id=body.client_id,
    )  # fmt: skip
    try:
        received = await receive(
            request.app, event, label="web chat message", answer_unprocessed=True
        )
    except sa.exc.SQLAlchemyError as exc:
        raise HTTPException(503, detail=UNAVAILABLE) from exc
    # Worker mode: otklik worker processes it and the bot answers there; the executor was
    # full: process_pending answers it (docs/citizen-bot.md). The page's polling shows both.
    job = received.job
    if job is None:
        return {"ok": True}
    try:
        replies = await settled(job)
    except sa.exc.SQLAlchemyError as exc:
        raise HTTPException(503, detail=UNAVAILABLE) from exc
    if body.button and not replies:
        return {"ok": True, "note": RATE_REFUSED if rating else BUTTON_WHILE_OPERATOR}
    return {"ok": True}


async def _count_new_conversation(
    request: Request, rt: Runtime, session_id: str, fresh: bool
) -> None:
    """A message that will open a new conversation uses the address's (per hour and per
    minute) and the session's quota of new conversations; over one: 429 with
    ``Retry-After`` and a Russian text the page shows. Messages in an open conversation are
    never refused here."""
    settings = rt.settings
    address = quota.address_key(client_address(request))
    limits = [
        (BY_ADDRESS, settings.webchat_new_conversations_per_address_per_hour, quota.HOUR, address),
        (BY_ADDRESS_MINUTE, settings.webchat_new_conversations_per_address_per_minute,
         quota.MINUTE, address),
        (BY_SESSION, settings.webchat_new_conversations_per_session_per_hour, quota.HOUR,
         session_id),
    ]  # fmt: skip
    charges = [(quota.Quota(scope, n, window), key) for scope, n, window, key in limits if n > 0]
    if not charges:
        return
    recent = _recent_refusals(request)

    def check() -> quota.Refused | None:
        if not fresh and store.has_open_dialogue(rt.factory, session_id):
            return None
        now = rt.clock.now()
        refused = recent.check(charges, now)  # a flood's next tries: no database work
        if refused is not None:
            return refused
        try:
            refused = quota.take(rt.factory, charges, now)
        finally:
            recent.done(charges, refused, now)
        return refused

    try:
        refused = await asyncio.to_thread(check)
    except sa.exc.SQLAlchemyError as exc:
        raise HTTPException(503, detail=UNAVAILABLE) from exc
    if refused is not None:
        minutes = max(1, math.ceil(refused.retry_after / 60))
        raise HTTPException(
            429,
            detail=TOO_MANY_NEW[refused.quota.scope].format(minutes=minutes),
            headers={"Retry-After": str(refused.retry_after)},
        )


def _recent_refusals(request: Request) -> quota.RecentRefusals:
    found: quota.RecentRefusals | None = getattr(request.app.state, "webchat_refusals", None)
    if found is None:  # one per app; a race here only makes a second, short-lived one
        found = quota.RecentRefusals()
        request.app.state.webchat_refusals = found
    return found


@router.get("/api/chat/messages", response_model=list[store.ChatMessage])
def get_messages(
    request: Request, after: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0
) -> list[store.ChatMessage]:
    session_id = session.current(request)
    if session_id is None:
        return []
    rt = _runtime(request)
    return store.fetch(rt.factory, session_id, after, rt.clock.now())


@router.get("/api/chat/qr/{message_id}.png")
def payment_qr(request: Request, message_id: DbId) -> Response:
    session_id = session.current(request)
    link = (
        store.payment_link(_runtime(request).factory, session_id, message_id)
        if session_id
        else None
    )
    if link is None:
        raise HTTPException(404)
    return Response(qr_png(link), media_type="image/png", headers={"Cache-Control": "private"})
