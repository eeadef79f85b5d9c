"""One citizen, four chat channels: adapters that let a scenario be written once.

Each adapter feeds the real app (``otklik.web.create_app``) with the platform's own update
format and reads what the citizen really receives:

* Telegram: Update JSON into ``/webhooks/telegram`` (aiogram parses it); replies are the Bot
  API requests aiogram makes, captured by the fake session (``tests/helpers/telegram_fake``).
* VK: Callback API ``message_new`` events into ``/webhooks/vk``; replies are the
  ``messages.send`` calls vk-api makes to the loopback stand-in (``tests/helpers/vk_api_server``).
* MAX: documented Updates (``message_created``, ``message_callback``) into ``/webhooks/max``;
  replies are the requests ``maxapi`` makes to the loopback stand-in
  (``tests/helpers/max_api_server``).
* Web chat: the page's HTTP API (``POST``/``GET /api/chat/messages``) with its session cookie.

Replies of the three messengers leave through the outbox (``Outbox.deliver_once``), as in
production; the web chat's are delivered when the page fetches them.

An adapter presses only a button the bot has offered (it looks the label up as the platform
would show it); pressing anything else is a test error, not a forged press.
"""

from __future__ import annotations

import abc
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlmodel import col, select

from bot.citizen import texts
from bot.max.app import max_bot
from bot.vk.api import VkClient
from bot.vk.sender import VkSender
from core.clock import FrozenClock
from inbox import workflow
from inbox.models import Conversation, Message, Operator
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.citizen_harness import TelegramChat, citizen_bot
from tests.helpers.max import MaxChat, keyboard_of
from tests.helpers.max_api_server import FakeMaxApi
from tests.helpers.payloads import payload
from tests.helpers.vk import vk_settings
from tests.helpers.vk_api_server import FakeVkApi

VK_GROUP = 200000001
VK_PEER = 512345678  # the citizen of tests/payloads/vk/message_new.json


@dataclass
class Reply:
    """One message as the citizen's app shows it."""

    text: str
    #: Rows of ``(button id, label)``: the callback buttons under the message.
    buttons: list[list[tuple[str, str]]] = field(default_factory=list)
    #: Links the message carries besides its text (a MAX link button, the web chat's QR link).
    links: list[str] = field(default_factory=list)
    #: The message came with a picture (Telegram's QR code of a payment link).
    picture: bool = False

    def button_ids(self) -> list[str]:
        return [b for row in self.buttons for b, _ in row]


class ChatAdapter(abc.ABC):
    """What every channel offers a scenario. Subclasses fill in the transport."""

    #: ``Conversation.channel`` of this channel.
    channel = ""
    #: What the citizen sends to start, as the platform's own client sends it.
    start_text = "Начать"

    def __init__(self, runtime: Runtime, clock: FrozenClock) -> None:
        self.runtime = runtime
        self.clock = clock
        self.received: list[Reply] = []

    # -- the transport (per channel) -------------------------------------------------------
    @abc.abstractmethod
    async def say(self, text: str) -> None:
        """Each channel's adapter implements it."""

    @abc.abstractmethod
    async def _press(self, button_id: str, label: str) -> None:
        """Each channel's adapter implements it."""

    @abc.abstractmethod
    async def _fetch(self) -> list[Reply]:
        """Each channel's adapter implements it."""

    async def close(self) -> None:  # noqa: B027 (an optional hook: most adapters hold nothing)
        """Release what the adapter opened (sessions, clients)."""

    async def start(self) -> None:
        """What the platform's client sends when the citizen opens the bot and presses its
        start button (Telegram «/start», VK «Начать», MAX ``bot_started``, the chat page's own
        «/start»)."""
        await self.say(self.start_text)

    # -- shared ----------------------------------------------------------------------------
    async def press(self, button_id: str) -> None:
        """Press a button the bot offered (the newest message that has it)."""
        for reply in reversed(self.received):
            for row in reply.buttons:
                for pressed, label in row:
                    if pressed == button_id:
                        await self._press(button_id, label)
                        return
        offered = [b for r in self.received for b in r.button_ids()]
        raise AssertionError(f"the bot never offered {button_id!r}; offered: {offered}")

    async def replies(self) -> list[Reply]:
        """The messages that reached the citizen since the last call (delivering them)."""
        new = await self._fetch()
        self.received.extend(new)
        return new

    async def texts(self) -> list[str]:
        return [r.text for r in await self.replies()]

    def conversation(self) -> Conversation:
        """The citizen's newest conversation in this channel (one citizen per test)."""
        with self.runtime.factory() as session:
            found = session.exec(
                select(Conversation)
                .where(Conversation.channel == self.channel)
                .order_by(col(Conversation.id).desc())
            ).first()
            assert found is not None, f"no {self.channel} conversation"
            return found

    def operator_replies(self, text: str) -> Message:
        """Operator «anna» answers the citizen's conversation, as the inbox UI does."""
        conversation_id = self.conversation().id
        with self.runtime.factory() as session:
            anna = session.exec(select(Operator).where(Operator.login == "anna")).first()
            if anna is None:
                anna = Operator(login="anna", display_name="Анна")
                session.add(anna)
                session.flush()
            conversation = session.get(Conversation, conversation_id)
            assert conversation is not None
            message = workflow.reply(session, conversation, text, self.clock.now(), operator=anna)
            session.commit()
            return message

    def close_conversation(self) -> None:
        conversation_id = self.conversation().id
        with self.runtime.factory() as session:
            conversation = session.get(Conversation, conversation_id)
            assert conversation is not None
            workflow.close(session, conversation, self.clock.now())
            session.commit()


def _rows(buttons: list[list[dict[str, Any]]], key: str) -> list[list[tuple[str, str]]]:
    return [[(str(b[key]), str(b["text"])) for b in row if key in b] for row in buttons]


class TelegramAdapter(ChatAdapter):
    channel = "telegram"
    start_text = "/start"  # what Telegram sends when the citizen presses «Начать»/«Start»

    def __init__(self, runtime: Runtime, clock: FrozenClock) -> None:
        super().__init__(runtime, clock)
        self.chat = TelegramChat(runtime, clock)
        self.app = self.chat.app
        self._seen = 0

    async def say(self, text: str) -> None:
        response = await self.chat.say(text)
        assert response.status_code == 200, response.text

    async def _press(self, button_id: str, label: str) -> None:
        # The keyboard on the pressed message, as Telegram echoes it in the callback query.
        for reply in reversed(self.received):
            if button_id in reply.button_ids():
                self.chat.last_keyboard = [
                    [{"id": b, "text": t} for b, t in row] for row in reply.buttons
                ]
                break
        response = await self.chat.press(button_id)
        assert response.status_code == 200, response.text

    async def _fetch(self) -> list[Reply]:
        await self.chat.outbox.deliver_once()
        new = self.chat.api.requests[self._seen :]
        self._seen = len(self.chat.api.requests)
        out = []
        for request in new:
            if request.method not in ("sendMessage", "sendPhoto"):
                continue
            markup = (
                request.json("reply_markup")["inline_keyboard"]
                if "reply_markup" in request.data
                else []
            )
            out.append(
                Reply(
                    text=request.data.get("text") or request.data.get("caption", ""),
                    buttons=_rows(markup, "callback_data"),
                    links=[b["url"] for row in markup for b in row if "url" in b],
                    picture=request.method == "sendPhoto",
                )
            )
        return out

    async def close(self) -> None:
        await self.chat.bot.session.close()


class VkAdapter(ChatAdapter):
    channel = "vk"

    def __init__(self, runtime: Runtime, clock: FrozenClock, api: FakeVkApi) -> None:
        runtime = vk_settings(runtime)
        super().__init__(runtime, clock)
        self.api = api
        self.app = create_app(runtime, start_scheduler=False)
        self.app.state.citizen_bot = citizen_bot(runtime, clock)
        client = VkClient("vk1.a.group-token", api_version="5.199", base_url=api.url)
        client.api.RPS_DELAY = 0
        self.outbox = Outbox(runtime.factory, clock, {"vk": VkSender(client, VK_GROUP)})
        self._ids = itertools.count(3001)
        self._seen = 0

    def _event(self, name: str, **message: Any) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(payload("vk", name))
        number = next(self._ids)
        data["event_id"] = f"{number:040x}"
        data["object"]["message"].update(
            id=number,
            conversation_message_id=number,
            date=int(self.clock.now().timestamp()),
            **message,
        )
        return data

    async def _post(self, event: dict[str, Any]) -> None:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://otklik") as client:
            response = await client.post("/webhooks/vk", json=event)
        assert response.status_code == 200 and response.text == "ok", response.text

    async def say(self, text: str) -> None:
        event = self._event("message_new.json", text=text)
        event["object"]["message"].pop("payload", None)
        await self._post(event)

    async def start(self) -> None:
        # VK's «Начать» button under a new dialogue: its label and the start command's payload.
        await self._post(
            self._event("message_new.json", text="Начать", payload='{"command":"start"}')
        )

    async def _press(self, button_id: str, label: str) -> None:
        # A text button of an inline keyboard: VK sends its label and payload as a message.
        event = self._event(
            "message_new_button.json", text=label, payload=json.dumps({"id": button_id})
        )
        await self._post(event)

    async def _fetch(self) -> list[Reply]:
        for _ in range(self._queued()):  # VK answers each messages.send with the message id
            self.api.respond("messages.send", 4000 + len(self.api.requests))
        await self.outbox.deliver_once()
        sends = self.api.calls("messages.send")
        new, self._seen = sends[self._seen :], len(sends)
        out = []
        for params in new:
            board = json.loads(params["keyboard"]) if "keyboard" in params else {"buttons": []}
            rows = [
                [
                    (json.loads(b["action"]["payload"])["id"], b["action"]["label"])
                    for b in row
                    if b["action"].get("payload")
                ]
                for row in board["buttons"]
            ]
            assert params["peer_id"] == str(VK_PEER)
            out.append(Reply(text=params["message"], buttons=rows))
        return out

    def _queued(self) -> int:
        with self.runtime.factory() as session:
            return len(
                session.exec(
                    select(Message.id)
                    .where(Message.channel == "vk")
                    .where(Message.delivery_status == "queued")
                ).all()
            )


class MaxAdapter(ChatAdapter):
    channel = "max"

    def __init__(self, runtime: Runtime, clock: FrozenClock, api: FakeMaxApi) -> None:
        super().__init__(runtime, clock)
        self.chat = MaxChat(runtime, clock, api)
        self.app = self.chat.app
        self._seen = 0

    async def say(self, text: str) -> None:
        await self.chat.say(text)

    async def start(self) -> None:
        # MAX sends ``bot_started`` when the citizen presses «Начать» in a new dialog.
        update = json.loads(payload("max", "bot_started.json"))
        update["timestamp"] = self.chat.now_ms()
        response = await self.chat.post(update)
        assert response.status_code == 200, response.text

    async def _press(self, button_id: str, label: str) -> None:
        await self.chat.press(button_id)

    async def _fetch(self) -> list[Reply]:
        await self.chat.deliver()
        sent = self.chat.api.sent()
        new, self._seen = sent[self._seen :], len(sent)
        out = []
        for request in new:
            board = keyboard_of(request.body)
            out.append(
                Reply(
                    text=request.body.get("text") or "",
                    buttons=[
                        [(b["payload"], b["text"]) for b in row if b.get("type") == "callback"]
                        for row in board
                    ],
                    links=[b["url"] for row in board for b in row if b.get("type") == "link"],
                )
            )
        return out

    async def close(self) -> None:
        bot = max_bot(self.app)
        if bot is not None:
            await bot.close_session()


class WebChatAdapter(ChatAdapter):
    channel = "webchat"
    start_text = "/start"  # the page sends it when it opens (bot/webchat/static/chat.js)

    def __init__(self, runtime: Runtime, clock: FrozenClock) -> None:
        super().__init__(runtime, clock)
        self.app = create_app(runtime, start_scheduler=False)
        self.app.state.citizen_bot = citizen_bot(runtime, clock)
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://otklik")
        self._after = 0
        self._opened = False
        self.notes: list[str] = []

    async def _open(self) -> None:
        if not self._opened:  # the page gives the visitor a signed session cookie
            page = await self.client.get("/chat")
            assert page.status_code == 200
            self._opened = True

    async def _post(self, body: dict[str, Any]) -> None:
        await self._open()
        response = await self.client.post("/api/chat/messages", json=body)
        assert response.status_code == 200, response.text
        if note := response.json().get("note"):
            self.notes.append(note)

    async def say(self, text: str) -> None:
        await self._post({"text": text})

    async def _press(self, button_id: str, label: str) -> None:
        await self._post({"button": button_id, "label": label})

    async def _fetch(self) -> list[Reply]:
        await self._open()
        response = await self.client.get("/api/chat/messages", params={"after": self._after})
        assert response.status_code == 200
        out = []
        for item in response.json():
            self._after = max(self._after, item["id"])
            if item["direction"] != "out":
                continue
            links = [item["payment_url"]] if item.get("payment_url") else []
            out.append(
                Reply(
                    text=item["text"],
                    buttons=_rows(item["buttons"], "id"),
                    links=links,
                    picture=bool(item.get("qr_url")),
                )
            )
        return out

    async def close(self) -> None:
        await self.client.aclose()


CHANNELS = ("telegram", "vk", "max", "webchat")


def make_adapter(
    name: str, runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi, max_api: FakeMaxApi
) -> ChatAdapter:
    if name == "telegram":
        return TelegramAdapter(runtime, clock)
    if name == "vk":
        return VkAdapter(runtime, clock, vk_api)
    if name == "max":
        return MaxAdapter(runtime, clock, max_api)
    if name == "webchat":
        return WebChatAdapter(runtime, clock)
    raise ValueError(name)


__all__ = ["CHANNELS", "ChatAdapter", "Reply", "make_adapter", "texts"]
