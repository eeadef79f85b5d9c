"""The citizen bot of a web app: built on first use and kept on ``app.state`` (tests put their
own there first), and registered as the after-processing hook of the chat channels (the
outbox loop that asks closed dialogues for a rating is ``bot.delivery``).

The bot reads the runtime's reloadable rules and knowledge base, so an edit in the admin UI is
used from the next message.
"""

from __future__ import annotations

from fastapi import FastAPI

from bot.citizen.engine import BOT_CHANNELS, CitizenBot
from inbox.ingest import AfterProcessing, Finished
from inbox.runtime import Runtime


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


def answer_with(runtime: Runtime, hook: AfterProcessing) -> None:
    """The one after-processing hook of the chat channels (Telegram, VK, MAX, web chat), the
    same for the immediate path (the webhook's ``process_and_reply``, which calls the bot
    itself and marks the event answered) and the pending one (``process_pending`` in the web
    app, the worker or a polling command): a dialogue message gets the bot's turn once. The
    phone robot is not here: it answers during the call, which is over by then."""
    for channel in BOT_CHANNELS:
        runtime.inbox.after_processing(channel, hook)


def answer_pending(app: FastAPI, runtime: Runtime) -> None:
    """Register the web app's citizen bot (``answer_with``): a dialogue message a webhook
    left in the journal (the executor was full, processing failed, the server stopped) still
    gets the bot's turn, once. The hook is a no-op for anything but a private dialogue
    (``is_dialogue``). The bot is looked up on each call, so one a test puts on
    ``app.state`` later is the one used."""

    def hook(finished: Finished) -> None:
        citizen_bot(app).handle_pending(finished)

    answer_with(runtime, hook)
