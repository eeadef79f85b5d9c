"""The web chat: ``GET /chat`` (the page) and its JSON API under ``/api/chat``.

The page polls ``GET /api/chat/messages?after=<id>`` every two seconds; a message is sent with
``POST /api/chat/messages`` (JSON only: with the SameSite=Lax cookie this keeps other sites from
posting in the citizen's name). The citizen's input is stored, processed and answered by the
bot before the POST returns, so the bot's reply is there on the next poll. With
``OTKLIK_PROCESSING=worker`` the POST only stores it in the journal; ``otklik worker``
processes it and the bot answers within about a second, and the page's polling shows the
citizen's message and the answer then (a pressed button's "an operator has it" note is not
shown in that mode: the POST no longer knows whether the bot will answer).

Sessions are ids the server issued and signed (``bot.webchat.session``). A message that would
open a new conversation counts against hourly quotas per client address and per session
(``inbox.quota``); over one, the POST answers 429 with ``Retry-After`` and a Russian
``detail`` the page shows. Messages in an open conversation and rating presses do not count.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field, model_validator

from bot.chats import citizen_bot
from bot.citizen.payment import qr_png
from bot.citizen.texts import BUTTON_WHILE_OPERATOR, RATE_PREFIX, RATE_REFUSED
from bot.webchat import session, store
from bot.webchat.session import COOKIE
from inbox import quota
from inbox.runtime import Runtime
from inbox.web.processing import journal_only

__all__ = ["COOKIE", "router"]

router = APIRouter()
STATIC = Path(__file__).resolve().parent / "static"
UNAVAILABLE = "Сервис временно недоступен, попробуйте ещё раз"
#: The quotas of new conversations (``OTKLIK_WEBCHAT_NEW_CONVERSATIONS_PER_…``).
BY_ADDRESS = "webchat-address"
BY_SESSION = "webchat-session"
#: What the page shows on 429 (``{minutes}``: when to try again).
TOO_MANY_NEW = {
    BY_ADDRESS: (
        "С вашего адреса за последний час открыто слишком много новых обращений. "
        "Попробуйте снова через {minutes} мин."
    ),
    BY_SESSION: (
        "В этом чате за последний час открыто слишком много новых обращений. "
        "Попробуйте снова через {minutes} мин."
    ),
}


class ChatInput(BaseModel):
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
    if journal_only(request.app):
        # otklik worker processes it and the bot answers there; the page's polling shows both
        try:
            await asyncio.to_thread(rt.inbox.accept, event)
        except sa.exc.SQLAlchemyError as exc:
            raise HTTPException(503, detail=UNAVAILABLE) from exc
        return {"ok": True}
    bot = citizen_bot(request.app)

    def ingest_and_answer() -> list[int]:
        accepted, processed = rt.inbox.ingest(event)
        return [] if accepted.duplicate else bot.handle(processed, event)

    try:
        replies = await asyncio.to_thread(ingest_and_answer)
    except sa.exc.SQLAlchemyError as exc:
        raise HTTPException(503, detail=UNAVAILABLE) from exc
    if body.button and not replies:
        return {"ok": True, "note": RATE_REFUSED if rating else BUTTON_WHILE_OPERATOR}
    return {"ok": True}


async def _count_new_conversation(
    request: Request, rt: Runtime, session_id: str, fresh: bool
) -> None:
    """A message that will open a new conversation uses the address's and the session's
    quota of new conversations; over either: 429 with ``Retry-After`` and a Russian text the
    page shows. Messages in an open conversation are never refused here."""
    settings = rt.settings
    charges = [
        (
            quota.Quota(BY_ADDRESS, settings.webchat_new_conversations_per_address_per_hour),
            quota.address_key(client_address(request)),
        ),
        (
            quota.Quota(BY_SESSION, settings.webchat_new_conversations_per_session_per_hour),
            session_id,
        ),
    ]
    if all(q.per_hour <= 0 for q, _ in charges):
        return

    def check() -> quota.Refused | None:
        if not fresh and store.has_open_dialogue(rt.factory, session_id):
            return None
        return quota.take(rt.factory, charges, rt.clock.now())

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


@router.get("/api/chat/messages", response_model=list[store.ChatMessage])
def get_messages(
    request: Request, after: Annotated[int, Query(ge=0)] = 0
) -> list[store.ChatMessage]:
    session_id = session.current(request)
    if session_id is None:
        return []
    rt = _runtime(request)
    return store.fetch(rt.factory, session_id, after, rt.clock.now())


@router.get("/api/chat/qr/{message_id}.png")
def payment_qr(request: Request, message_id: int) -> Response:
    session_id = session.current(request)
    link = (
        store.payment_link(_runtime(request).factory, session_id, message_id)
        if session_id
        else None
    )
    if link is None:
        raise HTTPException(404)
    return Response(qr_png(link), media_type="image/png", headers={"Cache-Control": "private"})
