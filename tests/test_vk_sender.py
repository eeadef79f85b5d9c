"""Replies to VK go through vk-api's own request building to a local stand-in for api.vk.ru:
the exact method and parameters, VK error codes mapped to retry or give up, sent once."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.vk.api import VkClient
from bot.vk.sender import PRIVATE_OFFER, VkSender, public_reply_text, random_id
from core.clock import FrozenClock
from inbox.models import AuditEvent, Message
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from tests.helpers.vk_api_server import FakeVkApi
from tests.helpers.vk_sender import GROUP_ID, queue_reply, sender_for


async def test_private_reply_is_messages_send_with_random_id_from_the_key_and_buttons(
    runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi
) -> None:
    buttons = [
        [{"id": "menu:status", "text": "Статус заявления"}],
        [{"id": "menu:operator", "text": "Оператор"}],
    ]
    message = queue_reply(runtime, clock, "message_new.json", "Здравствуйте!", buttons)
    vk_api.respond("messages.send", 2743)
    outbox = Outbox(runtime.factory, clock, {"vk": sender_for(vk_api.url)})
    assert (await outbox.deliver_once()).sent == [message.id]
    [params] = vk_api.calls("messages.send")
    assert message.idempotency_key
    keyboard = json.loads(params.pop("keyboard"))
    assert params == {
        "peer_id": "512345678",
        "random_id": str(random_id(message.idempotency_key)),
        "message": "Здравствуйте!",
        "v": "5.199",
        "access_token": "vk1.a.group-token",
    }
    assert keyboard["inline"] is True
    rows = [
        [(b["action"]["label"], json.loads(b["action"]["payload"])) for b in row]
        for row in keyboard["buttons"]
    ]
    assert rows == [
        [("Статус заявления", {"id": "menu:status"})],
        [("Оператор", {"id": "menu:operator"})],
    ]
    with runtime.factory() as session:
        stored = session.get(Message, message.id)
        assert stored and stored.delivery_status == "sent" and stored.external_id == "2743"


async def test_comment_is_answered_publicly_under_it_short_with_the_offer_of_private_messages(
    runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi
) -> None:
    long_text = "Дорогу перекрыли из-за ремонта трубы. " * 20
    message = queue_reply(runtime, clock, "wall_reply_new.json", long_text)
    vk_api.respond("wall.createComment", {"comment_id": 9900, "parents_stack": [9876]})
    outbox = Outbox(runtime.factory, clock, {"vk": sender_for(vk_api.url)})
    assert (await outbox.deliver_once()).sent == [message.id]
    [params] = vk_api.calls("wall.createComment")
    text = params.pop("message")
    assert params == {
        "owner_id": "-200000001",
        "post_id": "1555",
        "reply_to_comment": "9876",
        "from_group": str(GROUP_ID),
        "guid": message.idempotency_key,
        "v": "5.199",
        "access_token": "vk1.a.group-token",
    }
    assert len(text) <= 400 and text.endswith(PRIVATE_OFFER)
    assert text.startswith("Дорогу перекрыли из-за ремонта трубы.")
    assert vk_api.calls("messages.send") == []
    with runtime.factory() as session:
        stored = session.get(Message, message.id)
        assert stored and stored.external_id == "comment:9900"


def test_public_reply_that_already_offers_private_messages_is_kept() -> None:
    text = "Ответили вам в личных сообщениях."
    assert public_reply_text(text) == text


@pytest.mark.parametrize("code", [6, 9, 29])
async def test_rate_limit_errors_retry_later_and_the_reply_is_sent_exactly_once(
    runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi, code: int
) -> None:
    message = queue_reply(runtime, clock, "message_new.json", "Ответ")
    vk_api.fail("messages.send", code, "Too many requests per second")
    vk_api.respond("messages.send", 2744)
    outbox = Outbox(runtime.factory, clock, {"vk": sender_for(vk_api.url)})
    assert (await outbox.deliver_once()).retried == [message.id]
    assert (await outbox.deliver_once()).sent == []  # not before the delay
    clock.advance(timedelta(hours=1))
    assert (await outbox.deliver_once()).sent == [message.id]
    assert (await outbox.deliver_once()).sent == []
    calls = vk_api.calls("messages.send")
    assert len(calls) == 2 and calls[0]["random_id"] == calls[1]["random_id"]
    with runtime.factory() as session:
        stored = session.get(Message, message.id)
        assert stored and stored.delivery_status == "sent" and stored.attempts == 2


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (901, "Can't send messages for users without permission"),
        (902, "Can't send messages to this user due to their privacy settings"),
        (7, "Permission to perform this action is denied"),
    ],
)
async def test_cannot_send_errors_fail_for_good_with_an_alert(
    runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi, code: int, text: str
) -> None:
    message = queue_reply(runtime, clock, "message_new.json", "Ответ")
    vk_api.fail("messages.send", code, text)
    outbox = Outbox(runtime.factory, clock, {"vk": sender_for(vk_api.url)})
    assert (await outbox.deliver_once()).failed == [message.id]
    clock.advance(timedelta(days=1))
    assert (await outbox.deliver_once()).sent == []
    assert len(vk_api.calls("messages.send")) == 1
    with runtime.factory() as session:
        stored = session.get(Message, message.id)
        assert stored and stored.delivery_status == "failed"
        assert stored.last_error and f"[{code}]" in stored.last_error
        alert = session.exec(select(AuditEvent).where(AuditEvent.kind == "alert")).one()
        assert alert.data["alert"] == "delivery_failed"


async def test_network_failure_is_retried_then_sent_once(
    runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi
) -> None:
    message = queue_reply(runtime, clock, "message_new.json", "Ответ")
    with socket.socket() as closed:  # a port nobody listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}/method/"
    down = Outbox(runtime.factory, clock, {"vk": sender_for(dead_url)})
    assert (await down.deliver_once()).retried == [message.id]
    clock.advance(timedelta(minutes=1))
    vk_api.respond("messages.send", 2745)
    up = Outbox(runtime.factory, clock, {"vk": sender_for(vk_api.url)})
    assert (await up.deliver_once()).sent == [message.id]
    assert len(vk_api.calls("messages.send")) == 1
    with runtime.factory() as session:
        stored = session.get(Message, message.id)
        assert stored and stored.last_error is None and stored.external_id == "2745"


async def test_a_hung_api_call_times_out_and_is_retried(
    runtime: Runtime, clock: FrozenClock
) -> None:
    message = queue_reply(runtime, clock, "message_new.json", "Ответ")
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/method/"
        client = VkClient("vk1.a.group-token", base_url=url, timeout=0.5)
        outbox = Outbox(runtime.factory, clock, {"vk": VkSender(client, GROUP_ID)})
        assert (await outbox.deliver_once()).retried == [message.id]
    with runtime.factory() as session:
        stored = session.get(Message, message.id)
        assert stored and stored.last_error and "Timeout" in stored.last_error
