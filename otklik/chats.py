"""Wiring of the chat channels (Telegram, web chat) into the web app: their routers, and the
outbox worker for Telegram (an asyncio task in the app's loop, where aiogram's HTTP session
lives). The citizen bot itself is ``bot.citizen.app``; Telegram's bot ``bot.telegram.app``.
The web chat is always on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from aiogram import Bot
from fastapi import FastAPI

from bot.citizen.app import app_runtime, citizen_bot, outbox_loop
from bot.telegram.app import telegram_bot
from bot.telegram.sender import TelegramSender
from inbox.outbox import SendFunc


def install(app: FastAPI) -> None:
    from bot.telegram.webhook import router as telegram_router
    from bot.webchat.routes import router as webchat_router

    app.include_router(telegram_router)
    app.include_router(webchat_router)


def senders(app: FastAPI) -> dict[str, SendFunc]:
    """Outbox senders of the enabled channels. The web chat has none: its page collects its
    messages itself (see ``bot.webchat.store``)."""
    found: dict[str, SendFunc] = {}
    bot = telegram_bot(app)
    if bot is not None:
        found["telegram"] = TelegramSender(bot)
    return found


@asynccontextmanager
async def running(app: FastAPI, start_worker: bool) -> AsyncIterator[None]:
    """The outbox worker for the app's lifetime; the Telegram session is closed at the end."""
    task = None
    if start_worker:
        task = asyncio.create_task(outbox_loop(app_runtime(app), senders(app), citizen_bot(app)))
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        bot: Bot | None = getattr(app.state, "telegram_bot", None)
        if bot is not None:
            await bot.session.close()
