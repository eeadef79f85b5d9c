"""One chat update's way through Otklik, shared by the webhook and long polling (Telegram, MAX).

1. ``accept``: parse and store it in the inbound journal (commit). Only then is the platform
   acknowledged (HTTP 200 for the webhook, the next offset or marker for polling).
2. ``finish``: process it (conversation, SLA clock...), run the citizen bot for a dialogue,
   and answer a pressed button. The webhook goes through ``bot.intake.receive`` instead and
   calls ``answer_button_after`` once its job is done.

A channel gives its parser, its label and how it answers a pressed button; the rest is here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from bot.citizen.engine import CitizenBot
from bot.citizen.texts import BUTTON_WHILE_OPERATOR, RATE_PREFIX, RATE_REFUSED
from bot.intake import process_and_reply
from core.events import InboundEvent
from inbox.ingest import Accepted
from inbox.runtime import Runtime
from inbox.web.processing import settled

PlatformBot = TypeVar("PlatformBot")


def button_note(event: InboundEvent) -> str:
    """What a pressed button is told when the bot has nothing to say: a refused rating, or
    an operator has the conversation."""
    pressed = str(event.facts.extra.get("button") or "")
    return RATE_REFUSED if pressed.startswith(RATE_PREFIX) else BUTTON_WHILE_OPERATOR


class ChatPipeline(ABC, Generic[PlatformBot]):
    #: Names the update in logs ("telegram update").
    label: ClassVar[str]
    #: Whether a press whose update waits for ``process_pending`` (the executor was full) is
    #: answered at once, without a note (Telegram: its spinner would spin until then).
    answers_press_without_job: ClassVar[bool] = False

    def __init__(self, runtime: Runtime, citizen_bot: CitizenBot, bot: PlatformBot | None) -> None:
        self.runtime = runtime
        self.citizen_bot = citizen_bot
        self.bot = bot

    @abstractmethod
    def parse(self, data: dict[str, Any]) -> InboundEvent:
        """The update as a normalized event; raises ``PayloadError`` for something else."""

    @abstractmethod
    async def answer_button(self, event: InboundEvent, silent: bool) -> None:
        """Answer the pressed button of ``event``, if any; ``silent``: the bot said nothing
        (then the note of ``button_note`` is due). Platform errors are logged, not raised."""

    async def accept(self, event: InboundEvent) -> Accepted:
        """Journal the update; raises when the database is unavailable (do not acknowledge)."""
        return await asyncio.to_thread(self.runtime.inbox.accept, event)

    async def finish(self, accepted: Accepted, event: InboundEvent) -> None:
        """Process a newly accepted update and let the bot answer; errors are logged, the
        journal keeps the update for ``process_pending``."""
        if accepted.duplicate:
            return
        replies = await asyncio.to_thread(self.process_and_reply, accepted, event)
        await self.answer_button(event, silent=not replies)

    def process_and_reply(self, accepted: Accepted, event: InboundEvent) -> list[int]:
        """Process the update and run the citizen bot (blocking: on a worker thread); the ids
        of the bot's replies, none when processing failed (logged, left in the journal)."""
        return process_and_reply(
            self.runtime, lambda: self.citizen_bot, accepted.record_id, event, label=self.label
        )

    async def answer_button_after(
        self, job: concurrent.futures.Future[list[int]] | None, event: InboundEvent
    ) -> None:
        """Once ``job`` (``process_and_reply`` on the app's executor) is done, answer the
        pressed button. Without a job the update waits for ``process_pending``: see
        ``answers_press_without_job``."""
        if job is None:
            if self.answers_press_without_job:
                await self.answer_button(event, silent=False)
            return
        replies = await settled(job)
        await self.answer_button(event, silent=replies == [])

    async def handle(self, data: dict[str, Any]) -> Accepted:
        event = self.parse(data)
        accepted = await self.accept(event)
        await self.finish(accepted, event)
        return accepted
