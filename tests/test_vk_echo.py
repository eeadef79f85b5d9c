"""The agency answering in VK itself stops the clock; VK's echo of what Otklik sent is not
recorded a second time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from bot.vk.sender import random_id
from core.clock import FrozenClock
from inbox import workflow
from inbox.models import Conversation, InboundRecord, Message, SlaClock
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.vk import event, vk_settings
from tests.helpers.vk_api_server import FakeVkApi
from tests.helpers.vk_sender import sender_for


@pytest.fixture
def vk(runtime: Runtime) -> Iterator[tuple[TestClient, Runtime]]:
    rt = vk_settings(runtime)
    with TestClient(create_app(rt, start_scheduler=False)) as client:
        yield client, rt


def messages(rt: Runtime) -> list[Message]:
    with rt.factory() as session:
        return list(session.exec(select(Message).order_by(Message.id)))  # type: ignore[arg-type]


def reply_from_otklik(rt: Runtime, clock: FrozenClock, text: str = "Ответ") -> Message:
    with rt.factory() as session:
        conversation = session.exec(select(Conversation)).one()
        message = workflow.reply(session, conversation, text, clock.now())
        session.commit()
        return message


def test_agency_answering_a_comment_in_vk_itself_stops_the_clock(
    vk: tuple[TestClient, Runtime],
) -> None:
    client, rt = vk
    assert client.post("/webhooks/vk", json=event("wall_reply_new.json")).text == "ok"
    assert client.post("/webhooks/vk", json=event("wall_reply_own.json")).text == "ok"
    with rt.factory() as session:
        conversation = session.exec(select(Conversation)).one()
        clock_row = session.exec(select(SlaClock)).one()
    assert conversation.status == "answered" and clock_row.status == "met"
    assert [(m.direction, m.author_kind) for m in messages(rt)] == [
        ("in", "citizen"), ("out", "agency"),
    ]  # fmt: skip


def test_agency_answering_a_message_in_vk_itself_stops_the_clock(
    vk: tuple[TestClient, Runtime],
) -> None:
    client, rt = vk
    client.post("/webhooks/vk", json=event("message_new.json"))
    client.post("/webhooks/vk", json=event("message_reply.json"))
    with rt.factory() as session:
        assert session.exec(select(Conversation)).one().status == "answered"
    # The citizen bot answers a private message first (tests/test_vk_bot.py).
    assert [m.author_kind for m in messages(rt)] == ["citizen", "bot", "agency"]


async def test_echo_of_a_sent_message_is_journalled_but_not_recorded_again(
    vk: tuple[TestClient, Runtime], clock: FrozenClock, vk_api: FakeVkApi
) -> None:
    client, rt = vk
    client.post("/webhooks/vk", json=event("message_new.json"))
    sent = reply_from_otklik(rt, clock)
    vk_api.respond("messages.send", 2750)  # the citizen bot's answer, queued first
    vk_api.respond("messages.send", 2742)  # the id of the message in message_reply.json
    await Outbox(rt.factory, clock, {"vk": sender_for(vk_api.url)}).deliver_once()
    assert client.post("/webhooks/vk", json=event("message_reply.json")).text == "ok"
    assert [m.author_kind for m in messages(rt)][:2] == ["citizen", "bot"]
    assert [m.id for m in messages(rt)][2:] == [sent.id]
    with rt.factory() as session:
        records = session.exec(select(InboundRecord)).all()
    assert len(records) == 2 and records[1].event["facts"]["extra"]["echo_of"] == sent.id


def test_echo_arriving_before_the_send_is_recorded_is_known_by_its_random_id(
    vk: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = vk
    client.post("/webhooks/vk", json=event("message_new.json"))
    sent = reply_from_otklik(rt, clock)
    Outbox(rt.factory, clock, {"vk": sender_for("http://127.0.0.1:9/")}).claim()  # "sending"
    assert sent.idempotency_key
    echo = event("message_reply.json")
    echo["object"]["random_id"] = random_id(sent.idempotency_key)
    client.post("/webhooks/vk", json=echo)
    assert [m.id for m in messages(rt)][2:] == [sent.id]  # after the citizen and the bot


async def test_echo_of_a_sent_comment_is_not_recorded_again(
    vk: tuple[TestClient, Runtime], clock: FrozenClock, vk_api: FakeVkApi
) -> None:
    client, rt = vk
    client.post("/webhooks/vk", json=event("wall_reply_new.json"))
    sent = reply_from_otklik(rt, clock, "Ответили вам в личных сообщениях.")
    vk_api.respond("wall.createComment", {"comment_id": 9877, "parents_stack": [9876]})
    await Outbox(rt.factory, clock, {"vk": sender_for(vk_api.url)}).deliver_once()
    client.post("/webhooks/vk", json=event("wall_reply_own.json"))  # comment 9877 from us
    assert [m.id for m in messages(rt)][1:] == [sent.id]
