"""The citizen's side of the lifecycle through the real bot entry points: an application
submitted in Telegram, VK or the web chat; the agency changes its status (API, UI, CLI all
call the same action); the citizen gets one message in that channel, sees the history in
«Статус заявления», and «Отправить сведения» brings an operator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from bot.citizen import texts
from bot.vk.api import VkClient
from bot.vk.sender import VkSender
from core.clock import FrozenClock
from inbox import workflow
from inbox.models import Application, Conversation, Message
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.applications_bot import vk_post
from tests.helpers.applications_harness import make_token
from tests.helpers.citizen_harness import TelegramChat, citizen_bot
from tests.helpers.vk import vk_settings
from tests.helpers.vk_api_server import FakeVkApi

PEER = 512345678  # the citizen of tests/payloads/vk/message_new.json


@pytest.fixture
def chat(runtime: Runtime, clock: FrozenClock) -> TelegramChat:
    return TelegramChat(runtime, clock)


async def api_status(app: Any, token: str, number: str, **body: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://otklik") as client:
        return await client.post(
            f"/api/v1/applications/{number}/status",
            json=body, headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip


def the_application(runtime: Runtime) -> Application:
    with runtime.factory() as session:
        return session.exec(select(Application)).one()


async def submit_in_telegram(chat: TelegramChat) -> str:
    await chat.fill_application(
        "lighting", "ул. Ленина, д. 5", "Не горит фонарь у второго подъезда", "+7 900 123 45 67"
    )
    await chat.press(texts.APPLY_CONFIRM)
    await chat.deliver()
    number = the_application(chat.runtime).number
    assert number is not None
    return number


async def test_telegram_citizen_is_told_of_each_change_once_and_sees_the_history(
    chat: TelegramChat, runtime: Runtime, clock: FrozenClock
) -> None:
    number = await submit_in_telegram(chat)
    token = make_token(runtime, "backoffice", "applications:write")
    work = await api_status(
        chat.app, token, number, status="in_progress", expected_date="2026-12-01",
        comment="Бригада приедет в среду.",
    )  # fmt: skip
    assert work.status_code == 201
    refused = await api_status(
        chat.app, token, number, status="refused", reason="Этот столб меняют весной.",
        expected_date="2027-04-30", internal_note="в плане ремонта на апрель",
    )  # fmt: skip
    assert refused.status_code == 201
    before = len(chat.sent_texts())
    await chat.deliver()
    news = chat.sent_texts()[before:]
    assert news == [
        f"Ваше заявление {number} взяли в работу. Мы напишем, когда всё будет готово.\n"
        "Срок: до 01.12.2026.\nКомментарий: Бригада приедет в среду.",
        f"Заявление {number}: сделать это сейчас нельзя.\nПочему: Этот столб меняют весной.\n"
        "Когда будет можно: 30.04.2027.",
    ]
    sends = [r for r in chat.api.requests if r.method == "sendMessage"]
    assert all(r.data["chat_id"] == str(391234567) for r in sends[-2:])
    assert chat.last_keyboard == [[{"id": f"status:{number}", "text": "История заявления"}]]
    # A restart: a new outbox over the same database sends nothing again.
    again = await Outbox(chat.outbox.factory, clock, chat.outbox.senders).deliver_once()
    assert again.sent == [] and len(chat.sent_texts()) == before + 2
    await chat.press(f"status:{number}")
    await chat.deliver()
    answer = chat.sent_texts()[-1]
    assert answer == (
        f"Заявление {number} (Уличное освещение), подано 23.11.2026. Статус: отказано.\n"
        "История:\n"
        "23.11.2026 — подано.\n"
        "23.11.2026 — в работе. Срок: до 01.12.2026. Комментарий: Бригада приедет в среду.\n"
        "23.11.2026 — отказано. Почему: Этот столб меняют весной. Когда будет можно: 30.04.2027."
    )
    assert "плане ремонта" not in answer


async def test_more_information_needed_brings_an_operator_who_gets_the_answer(
    chat: TelegramChat, runtime: Runtime
) -> None:
    number = await submit_in_telegram(chat)
    token = make_token(runtime, "backoffice", "applications:write")
    asked = await api_status(chat.app, token, number, status="info_needed",
                             comment="Пришлите фото столба с номером.")  # fmt: skip
    assert asked.status_code == 201
    await chat.deliver()
    assert chat.sent_texts()[-1].startswith(f"По заявлению {number} нам нужны сведения от вас.")
    assert chat.last_keyboard == [[{"id": f"appinfo:{number}", "text": "Отправить сведения"}]]
    await chat.press(f"appinfo:{number}")
    await chat.deliver()
    assert chat.sent_texts()[-1] == texts.STATUS_SEND_INFO.format(number=number)
    conversation = chat.conversation()
    assert conversation.status == "waiting_operator"
    sent_before = len(chat.sent_texts())
    await chat.say("Номер столба 17-42, фото пришлю вечером")
    await chat.deliver()
    assert len(chat.sent_texts()) == sent_before  # the bot keeps quiet: an operator has it
    with runtime.factory() as session:
        texts_in = [
            m.text for m in session.exec(
                select(Message).where(Message.conversation_id == conversation.id)
                .where(Message.direction == "in").order_by(col(Message.id))
            )
        ]  # fmt: skip
    assert texts_in[-1] == "Номер столба 17-42, фото пришлю вечером"


async def test_forged_status_buttons_show_nothing_of_others(
    chat: TelegramChat, runtime: Runtime
) -> None:
    number = await submit_in_telegram(chat)
    for forged in ("appinfo:З-2026-999999", "status:{0}{number}", "appinfo:" + "9" * 60):
        await chat.press(forged)
    await chat.press(f"appinfo:{number}")  # not waiting for information: the status instead
    await chat.deliver()
    answers = chat.sent_texts()[-4:]
    assert all(a.startswith("Не нашёл среди ваших заявлений") for a in answers[:3])
    assert answers[3].startswith(f"Заявление {number} (Уличное освещение)")
    assert chat.conversation().status == "bot"


async def test_news_reaches_a_closed_dialogue_without_opening_anything(
    chat: TelegramChat, runtime: Runtime, clock: FrozenClock
) -> None:
    number = await submit_in_telegram(chat)
    with runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
        workflow.close(session, conversation, clock.now(), reason="заявление принято")
        session.commit()
    token = make_token(runtime, "backoffice", "applications:write")
    assert (await api_status(chat.app, token, number, status="done")).status_code == 201
    await chat.deliver()
    assert chat.sent_texts()[-1].startswith(f"Ваше заявление {number} выполнено.")
    with runtime.factory() as session:
        assert len(session.exec(select(Conversation)).all()) == 1
        assert session.exec(select(Conversation)).one().status == "closed"


# -- VK ---------------------------------------------------------------------------------------


@pytest.fixture
def vk_client(runtime: Runtime, clock: FrozenClock) -> Iterator[TestClient]:
    app = create_app(vk_settings(runtime), start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    with TestClient(app) as client:
        yield client


async def test_vk_dialogue_gets_the_news_by_messages_send(
    vk_client: TestClient, runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi
) -> None:
    counter = [0]

    def press(button_id: str) -> None:
        vk_post(vk_client, "message_new_button.json", counter,
                payload=json.dumps({"id": button_id}), text="…")  # fmt: skip

    press(texts.APPLY)
    press("service:garbage")
    for text in ("ул. Садовая, д. 3", "Третий день не вывозят мусор", "89001234567"):
        vk_post(vk_client, "message_new.json", counter, text=text)
    press(texts.APPLY_CONFIRM)
    number = the_application(runtime).number
    assert number is not None
    token = make_token(runtime, "backoffice", "applications:write")
    changed = vk_client.post(
        f"/api/v1/applications/{number}/status",
        headers={"Authorization": f"Bearer {token}"}, json={"status": "done"},
    )  # fmt: skip
    assert changed.status_code == 201
    vk = VkClient("vk1.a.group-token", api_version="5.199", base_url=vk_api.url)
    vk.api.RPS_DELAY = 0
    vk_api.respond("messages.send", 3001)
    await Outbox(runtime.factory, clock, {"vk": VkSender(vk, 200000001)}).deliver_once()
    news = [p for p in vk_api.calls("messages.send") if number in p["message"]]
    assert len(news) == 2  # «Заявление принято…» and the news
    params = news[-1]
    assert params["peer_id"] == str(PEER)
    assert params["message"] == (f"Ваше заявление {number} выполнено. Спасибо, что написали нам!")
    keyboard = json.loads(params["keyboard"])
    pressed = [json.loads(b["action"]["payload"])["id"] for row in keyboard["buttons"] for b in row]
    assert pressed == [f"status:{number}"]
    press(f"status:{number}")
    with runtime.factory() as session:
        last = session.exec(
            select(Message).where(Message.direction == "out").order_by(col(Message.id).desc())
        ).first()
    assert last is not None and "Статус: выполнено." in last.text and "— выполнено." in last.text


# -- the web chat -----------------------------------------------------------------------------


def test_web_chat_page_gets_the_news_and_the_history(runtime: Runtime, clock: FrozenClock) -> None:
    app = create_app(runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    visitor = TestClient(app)
    visitor.get("/chat")
    for step in (
        {"button": texts.APPLY}, {"button": "service:roads"}, {"text": "пр. Мира, д. 12"},
        {"text": "Яма на тротуаре у остановки"}, {"text": "+7 912 000-11-22"},
        {"button": texts.APPLY_CONFIRM},
    ):  # fmt: skip
        assert visitor.post("/api/chat/messages", json=step).status_code == 200
    seen = visitor.get("/api/chat/messages").json()
    number = the_application(runtime).number
    assert number is not None
    backoffice = TestClient(app)
    token = make_token(runtime, "backoffice", "applications:write")
    changed = backoffice.post(
        f"/api/v1/applications/{number}/status", headers={"Authorization": f"Bearer {token}"},
        json={"status": "refused", "reason": "Тротуар отремонтируют летом.",
              "expected_date": "2027-07-01"},
    )  # fmt: skip
    assert changed.status_code == 201
    news = visitor.get(f"/api/chat/messages?after={seen[-1]['id']}").json()
    assert [m["text"] for m in news] == [
        f"Заявление {number}: сделать это сейчас нельзя.\n"
        "Почему: Тротуар отремонтируют летом.\nКогда будет можно: 01.07.2027."
    ]
    assert news[0]["buttons"] == [[{"id": f"status:{number}", "text": "История заявления"}]]
    with runtime.factory() as session:
        message = session.exec(select(Message).where(Message.id == news[0]["id"])).one()
    assert message.delivery_status == "sent"  # the page fetched it
    assert TestClient(app).get("/api/chat/messages").json() == []  # not another visitor's
    visitor.post(
        "/api/chat/messages", json={"button": f"status:{number}", "label": "История заявления"}
    )
    history = visitor.get("/api/chat/messages").json()[-1]["text"]
    assert "Почему: Тротуар отремонтируют летом. Когда будет можно: 01.07.2027." in history
