"""Test harness for the citizen bot: a tiny knowledge base and a Telegram client that talks
to the real app through the webhook, with the fake Bot API of ``telegram_fake``."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from sqlmodel import col, select

from bot.citizen import texts
from bot.citizen.dialogue import BotContext
from bot.citizen.engine import CitizenBot
from bot.telegram.sender import TelegramSender
from core.clock import FrozenClock
from inbox import workflow
from inbox.models import Conversation, Message, Operator
from inbox.outbox import DeliveryReport, Outbox
from inbox.runtime import Runtime
from knowledge_base.entries import KBEntry
from knowledge_base.search import KnowledgeBase
from otklik.web import create_app
from rules.catalog import load_catalog
from tests.helpers.telegram_fake import TOKEN, fake_bot

SECRET = "s3cret-webhook-token"
PAYMENT_TEMPLATE = "https://pay.example/?purpose={purpose}&amount={amount}&id={number}"
CITIZEN = {"id": 391234567, "is_bot": False, "first_name": "Анна", "username": "anna_sm"}
NOW = 1795424400  # 2026-11-23 09:00 UTC, the frozen clock's start

GARBAGE_ANSWER = (
    "Контейнерные площадки во дворах убирают каждый день до 10 утра. "
    "Если мусор не вывезли, управляющая компания должна вывезти его в течение суток."
)


def tiny_kb() -> KnowledgeBase:
    entries = [
        KBEntry(
            id="garbage-not-collected",
            topic="garbage",
            life_situation="housing",
            question="Во дворе не вывозят мусор",
            phrasings=[
                "мусор не вывозят",
                "переполнены мусорные контейнеры",
                "когда вывезут мусор",
            ],
            short_answer="Мусор вывозят каждый день. Напишите нам в личные сообщения.",
            full_answer=GARBAGE_ANSWER,
            department="Отдел благоустройства",
        ),
        KBEntry(
            id="heating-start",
            topic="heating",
            life_situation="housing",
            question="Когда включат отопление",
            phrasings=["нет отопления", "холодные батареи"],
            short_answer="Отопление включают, когда пять дней подряд холоднее 8 градусов.",
            full_answer="Отопление включают, когда пять дней подряд на улице холоднее 8 градусов.",
            department="Отдел ЖКХ",
        ),
    ]
    return KnowledgeBase(entries)


def citizen_bot(runtime: Runtime, clock: FrozenClock) -> CitizenBot:
    context = BotContext(
        kb=tiny_kb(),
        rules_source=runtime.rules_source,
        catalog=load_catalog(),
        payment_url_template=PAYMENT_TEMPLATE,
    )
    return CitizenBot(runtime.factory, clock, context)


def operator_replies(runtime: Runtime, clock: FrozenClock, text: str) -> Message:
    """Operator «anna» answers the only conversation through the workflow, as the inbox UI does."""
    with runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
        anna = Operator(login="anna", display_name="Анна")
        session.add(anna)
        session.flush()
        message = workflow.reply(session, conversation, text, clock.now(), operator=anna)
        session.commit()
        return message


class TelegramChat:
    """A citizen in a private chat with the bot, as Telegram would deliver it."""

    def __init__(self, runtime: Runtime, clock: FrozenClock) -> None:
        runtime.settings.telegram_token = TOKEN
        runtime.settings.telegram_webhook_secret = SECRET
        self.runtime = runtime
        self.clock = clock
        self.app = create_app(runtime, start_scheduler=False)
        self.bot, self.api = fake_bot()
        self.app.state.telegram_bot = self.bot
        self.app.state.citizen_bot = citizen_bot(runtime, clock)
        self.outbox = Outbox(runtime.factory, clock, {"telegram": TelegramSender(self.bot)})
        self._update_ids = itertools.count(800001)
        self._message_ids = itertools.count(100)
        self.last_keyboard: list[list[dict[str, Any]]] = []

    def continue_after(self, other: TelegramChat) -> None:
        """Go on with the update and message ids where ``other`` stopped (Telegram's are
        monotonic)."""
        self._update_ids = other._update_ids
        self._message_ids = other._message_ids

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://otklik") as client:
            return await client.post("/webhooks/telegram", json=update, headers=headers)

    def message_update(self, **content: Any) -> dict[str, Any]:
        return {
            "update_id": next(self._update_ids),
            "message": {
                "message_id": next(self._message_ids),
                "from": CITIZEN,
                "chat": {"id": CITIZEN["id"], "first_name": "Анна", "type": "private"},
                "date": int(self.clock.now().timestamp()),
                **content,
            },
        }

    async def say(self, text: str) -> httpx.Response:
        return await self.post(self.message_update(text=text))

    async def press(self, button_id: str) -> httpx.Response:
        """Press a button of the bot's last keyboard (as the citizen's Telegram app does)."""
        keyboard = [
            [{"text": b["text"], "callback_data": b["id"]} for b in row]
            for row in self.last_keyboard
        ]
        update = {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": f"cq{next(self._message_ids)}",
                "from": CITIZEN,
                "chat_instance": "-8264620347254071234",
                "data": button_id,
                "message": {
                    "message_id": next(self._message_ids),
                    "from": {
                        "id": 123456,
                        "is_bot": True,
                        "first_name": "ДГХ",
                        "username": "dgh_city_bot",
                    },
                    "chat": {"id": CITIZEN["id"], "first_name": "Анна", "type": "private"},
                    "date": int(self.clock.now().timestamp()),
                    "text": "…",
                    "reply_markup": {"inline_keyboard": keyboard},
                },
            },
        }
        return await self.post(update)

    async def fill_application(
        self, service: str, address: str, description: str, phone: str
    ) -> None:
        """Go through the application form up to the summary (not confirmed yet)."""
        await self.press(texts.APPLY)
        await self.press(f"{texts.SERVICE_PREFIX}{service}")
        for answer in (address, description, phone):
            await self.say(answer)

    async def deliver(self) -> DeliveryReport:
        """Run the outbox once; remember the keyboard of the last message sent."""
        before = len(self.api.requests)
        report = await self.outbox.deliver_once()
        for request in self.api.requests[before:]:
            if "reply_markup" in request.data:
                markup = request.json("reply_markup")["inline_keyboard"]
                self.last_keyboard = [
                    [{"id": b["callback_data"], "text": b["text"]} for b in row] for row in markup
                ]
        return report

    def sent_texts(self) -> list[str]:
        return [
            r.data.get("text") or r.data.get("caption", "")
            for r in self.api.requests
            if r.method in ("sendMessage", "sendPhoto")
        ]

    def conversation(self) -> Conversation:
        with self.runtime.factory() as session:
            found = session.exec(
                select(Conversation)
                .where(Conversation.thread_key == f"tg:{CITIZEN['id']}")
                .order_by(col(Conversation.id).desc())
            ).first()
            assert found is not None
            return found

    def messages(self, conversation_id: int) -> list[Message]:
        with self.runtime.factory() as session:
            return list(
                session.exec(
                    select(Message)
                    .where(Message.conversation_id == conversation_id)
                    .order_by(col(Message.id))
                )
            )
