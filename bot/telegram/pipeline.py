"""A Telegram update's way through Otklik (``bot.chat_pipeline``): the Update parser, and a
pressed button's spinner stopped with ``answerCallbackQuery``."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.chat_pipeline import ChatPipeline, button_note
from bot.telegram.parse import parse_update
from core.events import InboundEvent

log = logging.getLogger(__name__)


class TelegramPipeline(ChatPipeline[Bot]):
    label = "telegram update"
    answers_press_without_job = True

    def parse(self, data: dict[str, Any]) -> InboundEvent:
        """Raises ``PayloadError`` for something that is not an Update."""
        return parse_update(data, self.runtime.profile, received_at=self.runtime.clock.now())

    async def answer_button(self, event: InboundEvent, silent: bool) -> None:
        """Stop the pressed button's spinner; when the bot has nothing to say, a short pop-up
        says so instead of leaving the press unanswered."""
        query_id = event.facts.extra.get("callback_query_id")
        if query_id is None or self.bot is None:
            return
        try:
            await self.bot.answer_callback_query(
                callback_query_id=str(query_id), text=button_note(event) if silent else None
            )
        except TelegramAPIError as exc:  # the spinner stops by itself after a while
            log.warning("answerCallbackQuery failed: %s", exc)
