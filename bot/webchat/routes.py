"""The web chat: ``GET /chat`` (the page) and its JSON API under ``/api/chat``.

The page polls ``GET /api/chat/messages?after=<id>`` every two seconds; a message is sent with
``POST /api/chat/messages`` (JSON only: with the SameSite=Lax cookie this keeps other sites from
posting in the citizen's name). The citizen's input is stored, processed and answered by the
bot before the POST returns, so the bot's reply is there on the next poll. With
``OTKLIK_PROCESSING=worker`` the POST only stores it in the journal; ``otklik worker``
processes it and the bot answers within about a second, and the page's polling shows the
citizen's message and the answer then (a pressed button's "an operator has it" note is not
shown in that mode: the POST no longer knows whether the bot will answer).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import Field, model_validator

from bot.chats import citizen_bot
from bot.citizen.payment import qr_png
from bot.citizen.texts import BUTTON_WHILE_OPERATOR
from bot.webchat import store
from inbox.bounded import INT64_MAX, DbId
from inbox.codepoints import StorableModel
from inbox.runtime import Runtime
from inbox.web.processing import journal_only

router = APIRouter()
STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "otklik_chat"
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_COOKIE_AGE = 30 * 24 * 3600
UNAVAILABLE = "Сервис временно недоступен, попробуйте ещё раз"


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


def _session_id(request: Request) -> str | None:
    value = request.cookies.get(COOKIE, "")
    return value if _SESSION_ID.match(value) else None


def _remember(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(
        COOKIE, session_id, max_age=_COOKIE_AGE, httponly=True, samesite="lax",
        secure=request.url.scheme == "https", path="/",
    )  # fmt: skip


@router.get("/chat", response_class=HTMLResponse)
def chat_page(request: Request) -> HTMLResponse:
    response = HTMLResponse((STATIC / "chat.html").read_text(encoding="utf-8"))
    _remember(request, response, _session_id(request) or secrets.token_urlsafe(24))
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
    session_id = _session_id(request)
    if session_id is None:
        session_id = secrets.token_urlsafe(24)
        _remember(request, response, session_id)
    rt = _runtime(request)
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
        return {"ok": True, "note": BUTTON_WHILE_OPERATOR}
    return {"ok": True}


@router.get("/api/chat/messages", response_model=list[store.ChatMessage])
def get_messages(
    request: Request, after: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0
) -> list[store.ChatMessage]:
    session_id = _session_id(request)
    if session_id is None:
        return []
    rt = _runtime(request)
    return store.fetch(rt.factory, session_id, after, rt.clock.now())


@router.get("/api/chat/qr/{message_id}.png")
def payment_qr(request: Request, message_id: DbId) -> Response:
    session_id = _session_id(request)
    link = (
        store.payment_link(_runtime(request).factory, session_id, message_id)
        if session_id
        else None
    )
    if link is None:
        raise HTTPException(404)
    return Response(qr_png(link), media_type="image/png", headers={"Cache-Control": "private"})
