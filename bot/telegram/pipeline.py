"""One update's way through Otklik, shared by the webhook and long polling.

1. ``accept``: parse and store it in the inbound journal (commit). Only then is Telegram
   acknowledged (HTTP 200 for the webhook, the next ``offset`` for polling).
2. ``finish``: process it (conversation, SLA clock...), run the citizen bot for private
   chats, and stop the spinner of a pressed button (``answerCallbackQuery``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.citizen.engine import CitizenBot
from bot.citizen.texts import BUTTON_WHILE_OPERATOR, RATE_PREFIX, RATE_REFUSED
from bot.intake import process_and_reply
from bot.telegram.parse import parse_update
from core.events import InboundEvent
from inbox.ingest import Accepted
from inbox.runtime import Runtime
from inbox.web.processing import settled

log = logging.getLogger(__name__)


class TelegramPipeline:
    def __init__(self, runtime: Runtime, citizen_bot: CitizenBot, bot: Bot | None) -> None:
        self.runtime = runtime
        self.citizen_bot = citizen_bot
        self.bot = bot

    def parse(self, data: dict[str, Any]) -> InboundEvent:
        """Raises ``PayloadError`` for something that is not an Update."""
        return parse_update(data, self.runtime.profile, received_at=self.runtime.clock.now())

    async def accept(self, event: InboundEvent) -> Accepted:
        """Journal the update; raises when the database is unavailable (do not acknowledge)."""
        return await asyncio.to_thread(self.runtime.inbox.accept, event)

    async def finish(self, accepted: Accepted, event: InboundEvent) -> None:
        """Process a newly accepted update and let the bot answer; errors are logged, the
        journal keeps the update for ``process_pending``."""
        if accepted.duplicate:
            return
        replies = await asyncio.to_thread(self.process_and_reply, accepted, event)
        await self._answer_button(event, silent=not replies)

    def process_and_reply(self, accepted: Accepted, event: InboundEvent) -> list[int]:
        """Process the update and run the citizen bot (blocking: on a worker thread); the ids
        of the bot's replies, none when processing failed (logged, left in the journal)."""
        return process_and_reply(
            self.runtime,
            lambda: self.citizen_bot,
            accepted.record_id,
            event,
            label="telegram update",
        )

    async def answer_button_after(
        self, job: concurrent.futures.Future[list[int]] | None, event: InboundEvent
    ) -> None:
        """Once ``job`` (``process_and_reply`` on the app's executor) is done, stop the pressed
        button's spinner. Without a job (the executor was full, the update waits for
        ``process_pending``) the spinner is stopped at once, without a pop-up."""
        replies: list[int] | None = None
        if job is not None:
            replies = await settled(job)
        await self._answer_button(event, silent=replies == [])

    async def _answer_button(self, event: InboundEvent, silent: bool) -> None:
        """Stop the pressed button's spinner; when the bot has nothing to say (an operator has
        the conversation, or a refused rating had nowhere to be answered), a short pop-up says
        so instead of leaving the press unanswered."""
        query_id = event.facts.extra.get("callback_query_id")
        if query_id is None or self.bot is None:
            return
        pressed = str(event.facts.extra.get("button") or "")
        note = RATE_REFUSED if pressed.startswith(RATE_PREFIX) else BUTTON_WHILE_OPERATOR
        try:
            await self.bot.answer_callback_query(
                callback_query_id=str(query_id), text=note if silent else None
            )
        except TelegramAPIError as exc:  # the spinner stops by itself after a while
            log.warning("answerCallbackQuery failed: %s", exc)

    async def handle(self, data: dict[str, Any]) -> Accepted:
        event = self.parse(data)
        accepted = await self.accept(event)
        await self.finish(accepted, event)
        return accepted
