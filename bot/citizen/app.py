"""The citizen bot of a web app: built on first use and kept on ``app.state`` (tests put their
own there first), registered as the after-processing hook of the chat channels, and the
outbox loop that also asks closed dialogues for a rating.

The bot reads the runtime's reloadable rules and knowledge base, so an edit in the admin UI is
used from the next message.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from fastapi import FastAPI

from bot.citizen.engine import BOT_CHANNELS, CitizenBot
from inbox import mailings
from inbox.ingest import Finished
from inbox.outbox import PLATFORM_RATES, Outbox, SendFunc
from inbox.runtime import Runtime

log = logging.getLogger(__name__)


def app_runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


def citizen_bot(app: FastAPI) -> CitizenBot:
    found: CitizenBot | None = getattr(app.state, "citizen_bot", None)
    if found is None:
        rt = app_runtime(app)
        found = CitizenBot.from_settings(
            rt.factory, rt.clock, rt.rules_source, rt.settings, kb=rt.kb
        )
        app.state.citizen_bot = found
    return found


def answer_pending(app: FastAPI, runtime: Runtime) -> None:
    """Register the citizen bot as ``process_pending``'s after-processing hook for the chat
    channels (Telegram, VK, MAX, web chat): a dialogue message their webhook left in the journal
    (the executor was full, processing failed, the server stopped) still gets the bot's turn,
    once. The hook is a no-op for anything but a private dialogue (``is_dialogue``). The bot
    is looked up on each call, so one a test puts on ``app.state`` later is the one used.
    The phone robot is not here: it answers during the call, which is over by then."""

    def hook(finished: Finished) -> None:
        citizen_bot(app).handle_pending(finished)

    for channel in BOT_CHANNELS:
        runtime.inbox.after_processing(channel, hook)


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
