"""Outbound Telegram messages for the outbox, through aiogram's ``Bot``.

Each outbox message becomes exactly one Bot API call: ``sendMessage`` (``sendPhoto`` with the
QR code when the message carries a payment link), to ``reply_target.chat_id``, replying to
the citizen's message, inside the post's comment thread for discussion-group comments, with
an inline keyboard built from ``meta["buttons"]``. Errors are mapped for the outbox:
429 → retry after the time Telegram gave; blocked, deleted or unknown chat → permanent;
network and server errors → retry with backoff.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyParameters,
)

from bot.citizen.payment import qr_png
from inbox.models import Message
from inbox.outbox import DeliveryError

#: A photo caption is limited to 1024 characters; a longer text goes without the QR code.
CAPTION_LIMIT = 1024


def inline_keyboard(buttons: list[list[dict[str, Any]]] | None) -> InlineKeyboardMarkup | None:
    """``[[{"id": "menu:ask", "text": "Задать вопрос"}], ...]`` → an inline keyboard."""
    rows = [
        [InlineKeyboardButton(text=str(b["text"]), callback_data=str(b["id"])) for b in row]
        for row in buttons or []
        if row
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


class TelegramSender:
    """The outbox sender of the ``telegram`` channel."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def __call__(self, message: Message) -> str:
        target = message.reply_target
        if "chat_id" not in target:
            raise DeliveryError("no chat to reply to (reply_target.chat_id)", permanent=True)
        common: dict[str, Any] = {
            "chat_id": target["chat_id"],
            "reply_markup": inline_keyboard(message.meta.get("buttons")),
        }
        if target.get("reply_to_message_id"):
            common["reply_parameters"] = ReplyParameters(
                message_id=int(target["reply_to_message_id"]), allow_sending_without_reply=True
            )
        if target.get("message_thread_id"):
            common["message_thread_id"] = int(target["message_thread_id"])
        payment = message.meta.get("payment")
        try:
            if payment and len(message.text) <= CAPTION_LIMIT:
                photo = BufferedInputFile(qr_png(str(payment["url"])), filename="qr.png")
                sent = await self.bot.send_photo(photo=photo, caption=message.text, **common)
            else:
                sent = await self.bot.send_message(text=message.text, **common)
        except TelegramRetryAfter as exc:
            raise DeliveryError(
                f"Telegram 429: {exc.message}", retry_after=exc.retry_after
            ) from exc
        except (TelegramForbiddenError, TelegramNotFound, TelegramUnauthorizedError) as exc:
            raise DeliveryError(f"Telegram refused: {exc.message}", permanent=True) from exc
        except TelegramBadRequest as exc:
            # "chat not found", "message is too long"...: the same request will fail again.
            raise DeliveryError(f"Telegram bad request: {exc.message}", permanent=True) from exc
        except (TelegramNetworkError, TelegramServerError) as exc:
            raise DeliveryError(f"Telegram unreachable: {exc.message}") from exc
        except TelegramAPIError as exc:
            raise DeliveryError(f"Telegram error: {exc.message}") from exc
        return str(sent.message_id)
