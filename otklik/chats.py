"""Wiring of the chat channels (Telegram, MAX, web chat) into the web app: their routers, and
the outbox worker for Telegram and MAX (an asyncio task in the app's loop, where aiogram's and
maxapi's HTTP sessions live). The citizen bot itself is ``bot.citizen.app``; Telegram's bot
``bot.telegram.app``, MAX's ``bot.max.app`` (on only with ``OTKLIK_MAX_TOKEN``). The web chat
is always on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from aiogram import Bot
from fastapi import FastAPI
from maxapi import Bot as MaxBot

from bot.citizen.app import app_runtime, citizen_bot, outbox_loop
from bot.max.app import max_bot
from bot.max.sender import MaxSender
from bot.telegram.app import telegram_bot
from bot.telegram.sender import TelegramSender
from inbox.outbox import SendFunc


def install(app: FastAPI) -> None:
    from bot.max.webhook import router as max_router
    from bot.telegram.webhook import router as telegram_router
    from bot.webchat.routes import router as webchat_router

    app.include_router(telegram_router)
    app.include_router(max_router)
    app.include_router(webchat_router)


def senders(app: FastAPI) -> dict[str, SendFunc]:
    """Outbox senders of the enabled channels. The web chat has none: its page collects its
    messages itself (see ``bot.webchat.store``)."""
    found: dict[str, SendFunc] = {}
    bot = telegram_bot(app)
    if bot is not None:
        found["telegram"] = TelegramSender(bot)
    max_client = max_bot(app)
    if max_client is not None:
        found["max"] = MaxSender(max_client, app_runtime(app).settings.max_rate_per_second)
    return found


@asynccontextmanager
async def running(app: FastAPI, start_worker: bool) -> AsyncIterator[None]:
    """The outbox worker for the app's lifetime; the Telegram and MAX sessions are closed at
    the end."""
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
        max_client: MaxBot | None = getattr(app.state, "max_bot", None)
        if max_client is not None:
            await max_client.close_session()
