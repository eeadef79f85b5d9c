"""The intake sequence the webhook channels share: journal → acknowledge → process → bot.

1. ``receive`` journals the event (``Inbox.accept``, committed); a database error propagates
   so that the webhook answers with its platform's "retry" (503) and acknowledges nothing.
2. Then, in one of three modes: a duplicate or, with ``OTKLIK_PROCESSING=worker``, any event
   is done here (``otklik worker`` processes it); otherwise ``process_and_reply`` goes to the
   app's bounded processing executor (``inbox/web/processing.py``). When the executor is full
   the event stays in the journal and ``process_pending`` finishes it later; its one
   after-processing hook (``bot.citizen.app.answer_with``) gives the citizen bot its turn then.
3. The adapter acknowledges the platform at once and does its own follow-up with the job
   (Telegram's and MAX's button answers, the web chat's note), which is all that differs.

The channels that answer inside the request (the phone robot) or read a mailbox (email) use
the inline mode instead, ``accept_and_process``, on their own thread: journal, the channel's
step after the commit (email flags the letter ``\\Seen``), process at once. Worker mode does not
apply to them: the robot's answer needs the processed conversation within the call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI

from bot.citizen.app import app_runtime, citizen_bot
from bot.citizen.engine import CitizenBot, is_dialogue
from core.events import InboundEvent
from inbox.ingest import Accepted
from inbox.runtime import Runtime
from inbox.web.processing import journal_only, processing_executor

log = logging.getLogger(__name__)

Mode = Literal["duplicate", "worker", "busy", "executor"]


@dataclass(frozen=True)
class Received:
    """What ``receive`` did: ``job`` (the bot's reply ids) only in ``executor`` mode."""

    accepted: Accepted
    event: InboundEvent
    mode: Mode
    job: Future[list[int]] | None = None


def process_and_reply(
    runtime: Runtime,
    bot: Callable[[], CitizenBot],
    record_id: int,
    event: InboundEvent,
    *,
    label: str,
    answer_unprocessed: bool = False,
) -> list[int]:
    """Process a journalled event and run the citizen bot on it (blocking: on a worker
    thread); the ids of the bot's replies. ``bot`` is called (built, on first use) only for
    a dialogue message. A failure is logged and the journal keeps the event
    for ``process_pending``.

    ``answer_unprocessed`` (the web chat, whose request waits for the job and answers the
    citizen itself): the bot still gets its turn when processing failed (a rating press
    needs no conversation), and an error of the bot's turn is raised to the waiting request
    (a database error becomes its 503)."""
    try:
        processed = runtime.inbox.process(record_id)
    except Exception:
        if not answer_unprocessed:
            log.exception("%s %s: processing failed", label, event.external_id)
            return []
        processed = None  # recorded on the journal row; process_pending tries again
    if not is_dialogue(event):
        return []
    if answer_unprocessed:
        return bot().handle(processed, event)
    try:
        return bot().handle(processed, event)
    except Exception:
        log.exception("%s %s: the bot's answer failed", label, event.external_id)
        return []


async def receive(
    app: FastAPI,
    event: InboundEvent,
    *,
    label: str,
    accept: Callable[[Runtime, InboundEvent], tuple[Accepted, InboundEvent]] | None = None,
    answer_unprocessed: bool = False,
) -> Received:
    """Journal ``event`` and hand it on (see the module docstring). ``accept`` replaces
    ``Inbox.accept`` for a channel that rewrites the event while journalling it (VK marks the
    echo of its own reply); it returns the accepted row and the event as journalled. The
    citizen bot is looked up only when the event is processed here, so that building it
    (loading the knowledge base) never delays the acknowledgement."""
    runtime = app_runtime(app)
    if accept is None:
        accepted = await asyncio.to_thread(runtime.inbox.accept, event)
    else:
        accepted, event = await asyncio.to_thread(accept, runtime, event)
    if accepted.duplicate:
        return Received(accepted, event, "duplicate")
    if journal_only(app):
        return Received(accepted, event, "worker")

    def job() -> list[int]:
        return process_and_reply(
            runtime, lambda: citizen_bot(app), accepted.record_id, event,
            label=label, answer_unprocessed=answer_unprocessed,
        )  # fmt: skip

    future = processing_executor(app).submit(job)
    if future is None:
        log.warning("%s %s: processing is busy, left for process_pending",
                    label, event.external_id)  # fmt: skip
        return Received(accepted, event, "busy")
    return Received(accepted, event, "executor", future)


def accept_and_process(
    runtime: Runtime,
    event: InboundEvent,
    *,
    label: str,
    after_accept: Callable[[Accepted], None] | None = None,
    wait: bool = False,
    process_duplicate: bool = False,
) -> Accepted:
    """The inline mode (blocking): journal ``event``, then process it in this thread.

    A database error of the journal propagates, so that the caller answers with its "retry"
    and acknowledges nothing. ``after_accept`` runs only once the journal row is committed
    (email flags the letter ``\\Seen`` there: a crash before it fetches the letter again, and
    the journal spots the duplicate). A duplicate is not processed again unless
    ``process_duplicate`` (the phone robot: ``wait=True`` then waits for a worker that is
    processing the first copy, so the robot reads the conversation as it is after it). A
    processing failure is logged and recorded on the journal row: ``process_pending``
    finishes the event later, and the caller still answers."""
    accepted = runtime.inbox.accept(event)
    if after_accept is not None:
        after_accept(accepted)
    if accepted.duplicate and not process_duplicate:
        return accepted
    try:
        runtime.inbox.process(accepted.record_id, wait=wait)
    except Exception:
        log.warning("%s %s: not processed yet, left for process_pending",
                    label, event.external_id, exc_info=True)  # fmt: skip
    return accepted
