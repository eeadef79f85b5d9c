"""A MAX update's way through Otklik (``bot.chat_pipeline``): the MAX parser, and a pressed
button answered (``POST /answers``) with a short note only when the bot has nothing to say."""

from __future__ import annotations

import logging
from typing import Any

from maxapi import Bot
from maxapi.exceptions.max import MaxError

from bot.chat_pipeline import ChatPipeline, button_note
from bot.max.parse import parse_max
from bot.max.sender import shared_limiter
from core.events import InboundEvent

log = logging.getLogger(__name__)


class MaxPipeline(ChatPipeline[Bot]):
    label = "MAX update"

    def parse(self, data: dict[str, Any]) -> InboundEvent:
        """Raises ``PayloadError`` for something that is not a MAX update."""
        return parse_max(data, self.runtime.profile, received_at=self.runtime.clock.now())

    async def answer_button(self, event: InboundEvent, silent: bool) -> None:
        callback_id = event.facts.extra.get("callback_id")
        if callback_id is None or self.bot is None or not silent:
            return
        try:
            await shared_limiter(self.runtime.settings.max_rate_per_second).wait()
            await self.bot.send_callback(
                callback_id=str(callback_id), notification=button_note(event)
            )
        except (MaxError, ValueError) as exc:  # the press simply stays unanswered
            log.warning("MAX POST /answers failed: %s", exc)
