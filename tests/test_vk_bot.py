"""The citizen bot over VK private messages: Callback API events in, ``messages.send`` out."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlmodel import select

from bot.citizen import texts
from bot.vk.api import VkClient
from bot.vk.sender import VkSender
from core.clock import FrozenClock
from inbox import workflow
from inbox.models import Conversation, ConversationStatus, Message, Rating
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from tests.helpers.citizen_harness import GARBAGE_ANSWER
from tests.helpers.vk_api_server import FakeVkApi
from tests.helpers.vk_bot import PEER, bot_answers, client, press, say, vk_event, vk_runtime  # noqa: F401


def the_conversation(runtime: Runtime) -> Conversation:
    with runtime.factory() as session:
        return session.exec(select(Conversation).where(Conversation.channel == "vk")).one()


def button_ids(message: Message) -> list[str]:
    return [b["id"] for row in message.meta["buttons"] for b in row]


def test_private_question_gets_a_kb_answer_queued_for_vk_with_peer_id_and_keyboard(
    client: TestClient,
    vk_runtime: Runtime,
) -> None:
    say(client, "Здравствуйте! Во дворе дома 5 мусор не вывозят уже три дня")
    [answer] = bot_answers(vk_runtime)
    assert answer.channel == "vk"
    assert answer.reply_target == {"peer_id": PEER}
    assert answer.text.startswith(GARBAGE_ANSWER)
    assert answer.meta["kb_entry_id"] == "garbage-not-collected"
    assert button_ids(answer) == [texts.MENU, texts.OPERATOR]
    assert answer.delivery_status == "queued"
    conversation = the_conversation(vk_runtime)
    assert conversation.thread_key == f"vk:peer:{PEER}"
    assert conversation.status == ConversationStatus.bot.value


def test_typed_request_for_an_operator_hands_the_dialogue_off(
    client: TestClient,
    vk_runtime: Runtime,
) -> None:
    say(client, "оператор")
    assert the_conversation(vk_runtime).status == ConversationStatus.waiting_operator.value
    [answer] = bot_answers(vk_runtime)
    assert answer.reply_target == {"peer_id": PEER}


def test_keyboard_button_payload_is_the_pressed_button(
    client: TestClient,
    vk_runtime: Runtime,
) -> None:
    press(client, texts.STATUS, "Статус заявления")
    [answer] = bot_answers(vk_runtime)
    assert answer.text.startswith(texts.STATUS_PROMPT)
    press(client, texts.OPERATOR, "Позвать оператора")
    assert the_conversation(vk_runtime).status == ConversationStatus.waiting_operator.value


def test_a_comment_does_not_run_the_bot(client: TestClient, vk_runtime: Runtime) -> None:
    answer = client.post("/webhooks/vk", json=vk_event("wall_reply_new.json"))
    assert answer.status_code == 200 and answer.text == "ok"
    conversation = the_conversation(vk_runtime)  # processed for the operators...
    assert conversation.is_public
    assert bot_answers(vk_runtime) == []  # ...but the bot stays silent


def test_a_group_chat_message_does_not_run_the_bot(client: TestClient, vk_runtime: Runtime) -> None:
    say(client, "[club200000001|ДГХ], мусор не вывозят", peer_id=2_000_000_007)
    assert the_conversation(vk_runtime).thread_key == f"vk:peer:2000000007:from:{PEER}"
    assert bot_answers(vk_runtime) == []


def test_a_retried_event_is_answered_by_the_bot_once(
    client: TestClient,
    vk_runtime: Runtime,
) -> None:
    data = vk_event("message_new.json", text="мусор не вывозят")
    for _ in range(2):
        answer = client.post("/webhooks/vk", json=data)
        assert answer.status_code == 200 and answer.text == "ok"
    assert len(bot_answers(vk_runtime)) == 1


def test_rating_press_after_close_is_stored_without_a_new_conversation(
    client: TestClient,
    vk_runtime: Runtime,
    clock: FrozenClock,
) -> None:
    say(client, "оператор")
    with vk_runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
        workflow.reply(session, conversation, "Свет починят завтра.", clock.now())
        workflow.close(session, conversation, clock.now())
        session.commit()
        assert conversation.id is not None
        conversation_id = conversation.id
    [request] = client.app.state.citizen_bot.ask_for_ratings()  # type: ignore[attr-defined]
    asked = next(m for m in bot_answers(vk_runtime) if m.id == request)
    assert asked.reply_target == {"peer_id": PEER}
    assert button_ids(asked)[-1] == f"{texts.RATE_PREFIX}{conversation_id}:5"
    with vk_runtime.factory() as session:  # sent, as the VK outbox records it
        sent = session.get(Message, request)
        assert sent is not None
        sent.delivery_status = "sent"
        session.commit()
    press(client, f"{texts.RATE_PREFIX}{conversation_id}:5", "5")
    with vk_runtime.factory() as session:
        [rating] = session.exec(select(Rating)).all()
        assert rating.conversation_id == conversation_id and rating.score == 5
        assert len(session.exec(select(Conversation)).all()) == 1
    assert bot_answers(vk_runtime)[-1].text == texts.RATE_THANKS


async def test_bot_answer_is_delivered_by_messages_send_with_its_keyboard(
    client: TestClient,
    vk_runtime: Runtime,
    clock: FrozenClock,
    vk_api: FakeVkApi,
) -> None:
    say(client, "мусор не вывозят")
    vk = VkClient("vk1.a.group-token", api_version="5.199", base_url=vk_api.url)
    vk.api.RPS_DELAY = 0
    vk_api.respond("messages.send", 2801)
    outbox = Outbox(vk_runtime.factory, clock, {"vk": VkSender(vk, 200000001)})
    report = await outbox.deliver_once()
    assert len(report.sent) == 1
    [params] = vk_api.calls("messages.send")
    assert params["peer_id"] == str(PEER)
    assert params["message"].startswith(GARBAGE_ANSWER)
    assert int(params["random_id"]) > 0
    keyboard = json.loads(params["keyboard"])
    pressed = [json.loads(b["action"]["payload"])["id"] for row in keyboard["buttons"] for b in row]
    assert pressed == [texts.MENU, texts.OPERATOR]
    [answer] = bot_answers(vk_runtime)
    assert answer.delivery_status == "sent" and answer.external_id == "2801"
