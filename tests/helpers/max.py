"""A citizen talking to the bot over MAX (fake Bot API)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from sqlmodel import col, select

from bot.max.app import max_bot
from bot.max.sender import MaxSender
from core.clock import FrozenClock
from core.config import Settings
from inbox.models import Conversation
from inbox.outbox import DeliveryReport, Outbox
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.citizen_harness import citizen_bot
from tests.helpers.max_api_server import TOKEN, FakeMaxApi

SECRET = "max-webhook-secret-41b7"


CHAT = 182739461  # the citizen's dialog with the bot (tests/payloads/max)


CITIZEN = {
    "user_id": 71234567,
    "first_name": "Ольга",
    "last_name": "Смирнова",
    "is_bot": False,
    "name": "Ольга Смирнова",
}


def configure(settings: Settings, api: FakeMaxApi) -> None:
    settings.max_token = TOKEN
    settings.max_webhook_secret = SECRET
    settings.max_api_url = api.url
    settings.max_rate_per_second = 1000.0


class MaxChat:
    """A citizen in a dialog with the bot, as MAX would deliver it."""

    def __init__(self, runtime: Runtime, clock: FrozenClock, api: FakeMaxApi) -> None:
        configure(runtime.settings, api)
        self.runtime = runtime
        self.clock = clock
        self.api = api
        self.app = create_app(runtime, start_scheduler=False)
        self.app.state.citizen_bot = citizen_bot(runtime, clock)
        bot = max_bot(self.app)
        assert bot is not None
        self.bot = bot
        self.outbox = Outbox(runtime.factory, clock, {"max": MaxSender(bot, 1000.0)})
        self._mids = itertools.count(1)

    async def post(
        self, update: Any, secret: str | None = SECRET, raw: bytes | None = None
    ) -> httpx.Response:
        headers = {"X-Max-Bot-Api-Secret": secret} if secret is not None else {}
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://otklik") as client:
            if raw is not None:
                headers["Content-Type"] = "application/json"
                return await client.post("/webhooks/max", content=raw, headers=headers)
            return await client.post("/webhooks/max", json=update, headers=headers)

    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def message_update(self, text: str) -> dict[str, Any]:
        return {
            "message": {
                "recipient": {"chat_id": CHAT, "chat_type": "dialog", "user_id": 590000001},
                "timestamp": self.now_ms(),
                "body": {"mid": f"mid.citizen{next(self._mids):021x}", "seq": 1, "text": text},
                "sender": CITIZEN,
            },
            "timestamp": self.now_ms(),
            "user_locale": "ru",
            "update_type": "message_created",
        }

    async def say(self, text: str) -> httpx.Response:
        response = await self.post(self.message_update(text))
        assert response.status_code == 200, response.text
        return response

    async def press(self, payload: str) -> httpx.Response:
        """Press a button of the last keyboard the bot sent (as the MAX app does)."""
        last = next(
            (r for r in reversed(self.api.sent()) if keyboard_of(r.body)), None
        )  # the message whose keyboard is pressed
        message = {
            "recipient": {"chat_id": CHAT, "chat_type": "dialog", "user_id": CITIZEN["user_id"]},
            "timestamp": self.now_ms(),
            "body": {
                "mid": "mid.bot-message",
                "seq": 2,
                "text": last.body.get("text") if last else "…",
                "attachments": last.body.get("attachments") if last else [],
            },
            "sender": {"user_id": 590000001, "first_name": "ДГХ", "is_bot": True},
        }
        update = {
            "callback": {
                "timestamp": self.now_ms(),
                "callback_id": f"cb.{next(self._mids):030d}",
                "user": CITIZEN,
                "payload": payload,
            },
            "message": message,
            "timestamp": self.now_ms(),
            "user_locale": "ru",
            "update_type": "message_callback",
        }
        response = await self.post(update)
        assert response.status_code == 200, response.text
        return response

    async def deliver(self) -> DeliveryReport:
        return await self.outbox.deliver_once()

    def sent_texts(self) -> list[str]:
        return [r.body["text"] for r in self.api.sent()]

    def conversation(self) -> Conversation:
        with self.runtime.factory() as session:
            found = session.exec(
                select(Conversation)
                .where(Conversation.thread_key == f"max:{CHAT}")
                .order_by(col(Conversation.id).desc())
            ).first()
            assert found is not None
            return found


def keyboard_of(body: Any) -> list[list[dict[str, Any]]]:
    for attachment in (body or {}).get("attachments") or []:
        if attachment.get("type") == "inline_keyboard":
            rows: list[list[dict[str, Any]]] = attachment["payload"]["buttons"]
            return rows
    return []
