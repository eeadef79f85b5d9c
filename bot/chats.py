"""Wiring of the chat channels (Telegram, web chat) into the app: routers, the citizen bot
and the outbox worker for Telegram (an asyncio task in the app's loop, where aiogram's HTTP
session lives).

The citizen bot and the Telegram bot are built on first use and kept on ``app.state``
(tests put their own there first). The citizen bot reads the runtime's knowledge-base
provider (``Runtime.kb``), so an entry edited in the admin UI is used from the next message.
Telegram is on only when ``OTKLIK_TELEGRAM_TOKEN`` is set; the web chat is always on.

``answer_pending`` lets the citizen bot answer the dialogues ``Inbox.process_pending``
finishes, which the webhooks could not process themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from aiogram import Bot
from fastapi import FastAPI

from bot.citizen.engine import BOT_CHANNELS, CitizenBot
from bot.telegram.pipeline import TelegramPipeline
from bot.telegram.sender import TelegramSender
from inbox import mailings
from inbox.ingest import Finished
from inbox.outbox import PLATFORM_RATES, Outbox, SendFunc
from inbox.runtime import Runtime

log = logging.getLogger(__name__)


def install(app: FastAPI) -> None:
    from bot.telegram.webhook import router as telegram_router
    from bot.webchat.routes import router as webchat_router

    app.include_router(telegram_router)
    app.include_router(webchat_router)


def _runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


def citizen_bot(app: FastAPI) -> CitizenBot:
    found: CitizenBot | None = getattr(app.state, "citizen_bot", None)
    if found is None:
        rt = _runtime(app)
        found = CitizenBot.from_settings(rt.factory, rt.clock, rt.rules, rt.settings, kb=rt.kb)
        app.state.citizen_bot = found
    return found


def answer_pending(app: FastAPI, runtime: Runtime) -> None:
    """Register the citizen bot as ``process_pending``'s after-processing hook for the chat
    channels (Telegram, VK, web chat): a dialogue message their webhook left in the journal
    (the executor was full, processing failed, the server stopped) still gets the bot's turn,
    once. The hook is a no-op for anything but a private dialogue (``is_dialogue``). The bot
    is looked up on each call, so one a test puts on ``app.state`` later is the one used.
    The phone robot is not here: it answers during the call, which is over by then."""

    def hook(finished: Finished) -> None:
        citizen_bot(app).handle_pending(finished)

    for channel in BOT_CHANNELS:
        runtime.inbox.after_processing(channel, hook)


def telegram_bot(app: FastAPI) -> Bot | None:
    found: Bot | None = getattr(app.state, "telegram_bot", None)
    if found is None and _runtime(app).settings.telegram_token:
        found = Bot(_runtime(app).settings.telegram_token)
        app.state.telegram_bot = found
    return found


def telegram_pipeline(app: FastAPI) -> TelegramPipeline | None:
    bot = telegram_bot(app)
    if bot is None:
        return None
    return TelegramPipeline(_runtime(app), citizen_bot(app), bot)


def senders(app: FastAPI) -> dict[str, SendFunc]:
    """Outbox senders of the enabled channels. The web chat has none: its page collects its
    messages itself (see ``bot.webchat.store``)."""
    found: dict[str, SendFunc] = {}
    bot = telegram_bot(app)
    if bot is not None:
        found["telegram"] = TelegramSender(bot)
    return found


async def outbox_loop(
    runtime: Runtime,
    senders: dict[str, SendFunc],
    citizen_bot: CitizenBot,
    interval: float = 1.0,
) -> None:
    """Ask for ratings of closed dialogues and deliver due outbox messages, every ``interval``."""
    lease = timedelta(seconds=runtime.settings.outbox_lease)
    outbox = Outbox(runtime.factory, runtime.clock, senders, lease=lease, rates=PLATFORM_RATES)
    while True:
        try:
            await asyncio.to_thread(citizen_bot.ask_for_ratings)
            await asyncio.to_thread(mailings.run_round, runtime)
            await outbox.deliver_once()
        except Exception:  # the database may be down for a moment; keep the worker alive
            log.exception("outbox worker round failed")
        await asyncio.sleep(interval)


@asynccontextmanager
async def running(app: FastAPI, start_worker: bool) -> AsyncIterator[None]:
    """The outbox worker for the app's lifetime; the Telegram session is closed at the end."""
    task = None
    if start_worker:
        task = asyncio.create_task(outbox_loop(_runtime(app), senders(app), citizen_bot(app)))
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
