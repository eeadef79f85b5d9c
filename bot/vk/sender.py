"""The outbox sender for VK: a public reply under a comment, or a private message.

* A conversation that started from a comment (``reply_target`` has ``post_id``) is answered
  with ``wall.createComment`` from the community, under the citizen's comment. A public reply
  is kept short and offers to continue in private messages, where personal details belong.
* Everything else is answered with ``messages.send`` to the ``peer_id``.

Retries are safe: ``messages.send`` gets a ``random_id`` and ``wall.createComment`` a ``guid``,
both derived from the message's idempotency key, so VK drops a repeat of a send it already did.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from vk_api.keyboard import VkKeyboard

from bot.vk.api import VkClient, delivery_error
from inbox.models import Message
from inbox.outbox import DeliveryError

#: A public comment longer than this is cut at a sentence end.
PUBLIC_REPLY_LIMIT = 400
PRIVATE_OFFER = "Напишите нам в личные сообщения сообщества, там ответим подробнее."
#: VK button labels are limited to 40 characters.
BUTTON_LABEL_LIMIT = 40
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def random_id(idempotency_key: str) -> int:
    """A stable positive int32 from the key: the same message always gets the same random_id."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1


def public_reply_text(text: str) -> str:
    """Short enough for a comment thread, with the offer to continue privately."""
    text = " ".join(text.split())
    if len(text) > PUBLIC_REPLY_LIMIT:
        kept = ""
        for sentence in _SENTENCE_END.split(text):
            if len(kept) + len(sentence) + 1 > PUBLIC_REPLY_LIMIT - len(PRIVATE_OFFER) - 1:
                break
            kept = f"{kept} {sentence}".strip()
        text = kept or text[: PUBLIC_REPLY_LIMIT - len(PRIVATE_OFFER) - 2].rstrip() + "…"
    if "личн" not in text.lower():
        text = f"{text} {PRIVATE_OFFER}"
    return text


def keyboard(buttons: Any) -> str | None:
    """VK keyboard JSON from ``meta["buttons"]``: rows of ``{"id", "text"}`` (or plain labels)."""
    if not buttons:
        return None
    board = VkKeyboard(inline=True)
    for number, row in enumerate(buttons):
        if number:
            board.add_line()
        for button in row if isinstance(row, list) else [row]:
            if isinstance(button, dict):
                label, payload = str(button.get("text", "")), {"id": button.get("id")}
            else:
                label, payload = str(button), None
            board.add_button(label[:BUTTON_LABEL_LIMIT], payload=payload)
    return str(board.get_keyboard())


class VkSender:
    """``async (Message) -> platform id`` for the outbox, channel ``vk``."""

    def __init__(self, client: VkClient, group_id: int) -> None:
        self.client = client
        self.group_id = group_id

    async def __call__(self, message: Message) -> str:
        method, params = self.request(message)
        try:
            result = await self.client.acall(method, params)
        except Exception as exc:
            raise delivery_error(exc) from exc
        if isinstance(result, dict):  # wall.createComment: {"comment_id": …}
            return f"comment:{result.get('comment_id')}"
        return str(result)  # messages.send with peer_id: the message id

    def request(self, message: Message) -> tuple[str, dict[str, Any]]:
        """The API method and its parameters for ``message``."""
        target = message.reply_target or {}
        key = message.idempotency_key or f"otklik-message-{message.id}"
        if "post_id" in target:
            params: dict[str, Any] = {
                "owner_id": target["owner_id"],
                "post_id": target["post_id"],
                "from_group": self.group_id,
                "message": public_reply_text(message.text),
                "guid": key,
            }
            if target.get("reply_to_comment"):
                params["reply_to_comment"] = target["reply_to_comment"]
            return "wall.createComment", params
        if "peer_id" not in target:
            raise DeliveryError(
                f"VK reply target has no peer_id nor post_id: {target}", permanent=True
            )
        params = {
            "peer_id": target["peer_id"],
            "random_id": random_id(key),
            "message": message.text,
        }
        board = keyboard((message.meta or {}).get("buttons"))
        if board:
            params["keyboard"] = board
        return "messages.send", params
