"""Outbound MAX messages for the outbox, through ``maxapi``'s ``Bot``.

Each outbox message becomes one Bot API call:

* a conversation that started from a comment under a channel post (``reply_target`` has
  ``post_id``) is answered with a comment under that post (``POST /messages/{mid}/comments``),
  as a reply to the citizen's comment;
* everything else with ``POST /messages?chat_id=…``, as a reply to the citizen's message,
  with the bot's buttons as an inline keyboard (callback buttons whose payload is the button
  id; a payment link as a link button). Plain text: no markdown or HTML, so citizens' and
  operators' text is never interpreted as markup.

Rate limit: MAX allows 30 requests per second to the API; every sender of the process shares
one limiter (``OTKLIK_MAX_RATE_PER_SECOND``, 20 by default) that spaces the calls.

Errors for the outbox: 429 → retry after a pause; 5xx and network errors → retry with
backoff; 400/403/404 (chat gone, bot blocked, text refused) and a wrong token → permanent.

MAX takes no idempotency key. So that a retry never sends a reply twice (the worker died after
MAX accepted the message, or MAX answered 5xx after storing it), a message on its second or
later attempt is first looked for among the bot's recent messages in the chat: if the same
text is there, sent after the message was queued, that is the delivery, and it is not sent
again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime
from typing import Any

from maxapi import Bot
from maxapi.enums.message_link_type import MessageLinkType
from maxapi.exceptions.max import InvalidToken, MaxApiError, MaxConnection, MaxError
from maxapi.types.attachments.buttons.callback_button import CallbackButton
from maxapi.types.attachments.buttons.link_button import LinkButton
from maxapi.types.message import NewMessageLink
from maxapi.utils.inline_keyboard import InlineKeyboardBuilder

from core.clock import as_utc
from inbox.models import Message
from inbox.outbox import DeliveryError

log = logging.getLogger(__name__)

#: MAX limits: message text under 4000 characters, button text 1–64, payload up to 256.
TEXT_LIMIT = 3999
BUTTON_TEXT_LIMIT = 64
PAYLOAD_LIMIT = 256
#: Seconds to wait after a 429 (MAX sends no Retry-After the library passes on).
RATE_LIMITED_DELAY = 2.0
#: How many of the bot's latest messages in the chat are checked before a retry.
RECONCILE_WINDOW = 30
PAYMENT_BUTTON = "Оплатить"


class RateLimiter:
    """At most ``rate`` calls per second, spaced evenly, across threads and event loops (the
    outbox may run in the app's loop and in ``asyncio.run`` rounds): each call reserves the
    next free slot under a thread lock, then sleeps until it.

    A reserved slot alone is not enough on a busy machine: sleepers that wake late (a loop
    held up by other work) would all leave together and bunch their requests. So a call also
    keeps at least one interval after the previous call actually left."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._lock = threading.Lock()
        self._next = 0.0
        self._left = -self.interval  # when the latest call actually left

    def reserve(self) -> float:
        """Seconds to wait before the caller may send."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now

    def _leave(self) -> float:
        """Leave now (0.0) if an interval has passed since the previous call left, else the
        seconds still to wait."""
        with self._lock:
            now = time.monotonic()
            early = self._left + self.interval - now
            if early > 0:
                return early
            self._left = now
            return 0.0

    async def wait(self) -> None:
        delay = self.reserve()
        while True:
            if delay > 0:
                await asyncio.sleep(delay)
            delay = self._leave()
            if delay <= 0:
                return


_limiters: dict[float, RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(rate: float) -> RateLimiter:
    """One limiter per rate for the whole process: the outbox of the app and a CLI poller
    in one process still share MAX's budget."""
    with _limiters_lock:
        return _limiters.setdefault(rate, RateLimiter(rate))


def inline_keyboard(buttons: Any, payment_url: str | None = None) -> list[Any]:
    """``[[{"id": "menu:ask", "text": "Задать вопрос"}], ...]`` → the ``inline_keyboard``
    attachment (none when there are no buttons)."""
    builder = InlineKeyboardBuilder()
    rows = 0
    for row in buttons or []:
        keys = []
        for button in row if isinstance(row, list) else [row]:
            if not isinstance(button, dict) or not button.get("id"):
                continue
            label = str(button.get("text") or button["id"])[:BUTTON_TEXT_LIMIT]
            keys.append(CallbackButton(text=label, payload=str(button["id"])[:PAYLOAD_LIMIT]))
        if keys:
            builder.row(*keys)
            rows += 1
    if payment_url and payment_url.startswith("https://"):
        builder.row(LinkButton(text=PAYMENT_BUTTON, url=payment_url))
        rows += 1
    return [builder.as_markup()] if rows else []


class MaxSender:
    """The outbox sender of the ``max`` channel."""

    def __init__(self, bot: Bot, rate_per_second: float = 20.0) -> None:
        self.bot = bot
        self.limiter = shared_limiter(rate_per_second)

    async def __call__(self, message: Message) -> str:
        target = message.reply_target or {}
        if "chat_id" not in target and "post_id" not in target:
            raise DeliveryError("no MAX chat to reply to (reply_target.chat_id)", permanent=True)
        if len(message.text) > TEXT_LIMIT:
            raise DeliveryError(
                f"MAX refuses texts of {TEXT_LIMIT + 1} characters or more "
                f"(this one has {len(message.text)})",
                permanent=True,
            )
        try:
            if message.attempts > 1:
                found = await self._already_sent(message, target)
                if found is not None:
                    log.info("MAX message %s was delivered before as %s", message.id, found)
                    return found
            await self.limiter.wait()
            if target.get("post_id"):
                return await self._comment(message, target)
            return await self._message(message, target)
        except MaxApiError as exc:
            raise _delivery_error(exc) from exc
        except InvalidToken as exc:
            raise DeliveryError(f"MAX refused the token: {exc}", permanent=True) from exc
        except MaxConnection as exc:
            raise DeliveryError(f"MAX unreachable: {exc}") from exc
        except MaxError as exc:
            raise DeliveryError(f"MAX error: {exc}") from exc

    async def _message(self, message: Message, target: dict[str, Any]) -> str:
        reply_to = target.get("reply_to_message_id")
        payment = (message.meta or {}).get("payment") or {}
        sent = await self.bot.send_message(
            chat_id=int(target["chat_id"]),
            text=message.text,
            attachments=inline_keyboard(
                (message.meta or {}).get("buttons"), str(payment.get("url") or "") or None
            ),
            link=NewMessageLink(type=MessageLinkType.REPLY, mid=str(reply_to))
            if reply_to
            else None,
            disable_link_preview=True,
        )
        if sent is None or sent.message.body is None:
            raise DeliveryError("MAX answered without the sent message")
        return sent.message.body.mid

    async def _comment(self, message: Message, target: dict[str, Any]) -> str:
        reply_to = target.get("reply_to_message_id")
        sent = await self.bot.send_comment(
            message_id=str(target["post_id"]),
            text=message.text,
            link=NewMessageLink(type=MessageLinkType.REPLY, mid=str(reply_to))
            if reply_to
            else None,
        )
        return f"comment:{sent.message.body.mid}"

    async def _already_sent(self, message: Message, target: dict[str, Any]) -> str | None:
        """The mid of this message if MAX already has it (see the module's docstring)."""
        if target.get("post_id") or "chat_id" not in target:
            return None  # comments: no listing by author; a rare duplicate comment is possible
        await self.limiter.wait()
        found = await self.bot.get_messages(chat_id=int(target["chat_id"]), count=RECONCILE_WINDOW)
        queued_ms = _ms(message.published_at)
        for sent in found.messages:
            sender = sent.sender
            if sent.body is None or sender is None or not sender.is_bot:
                continue
            if (sent.body.text or "") == message.text and sent.timestamp >= queued_ms:
                return sent.body.mid
        return None


def _ms(moment: datetime) -> int:
    return int(as_utc(moment).timestamp() * 1000)


def _delivery_error(exc: MaxApiError) -> DeliveryError:
    reason = f"MAX HTTP {exc.code}: {str(exc.raw)[:300]}"
    if exc.code == 429:
        return DeliveryError(reason, retry_after=RATE_LIMITED_DELAY)
    if exc.code >= 500:
        return DeliveryError(reason)
    if exc.code in (400, 403, 404, 413):  # chat gone, bot blocked or removed, text refused
        return DeliveryError(reason, permanent=True)
    return DeliveryError(reason)
