"""+1 from the citizen bot through the real entry points: a citizen filling in an application
about a place and a topic that an open shared complaint has is offered to support it; the
press joins them (Telegram, VK, web chat); each status change then reaches them once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from bot.citizen import texts
from bot.citizen.handlers.complaint import JOIN, SEPARATE
from bot.vk.api import VkClient
from bot.vk.sender import VkSender
from core.clock import FrozenClock
from inbox import complaints
from inbox.applications import Actor
from inbox.complaints import ComplaintChange
from inbox.models import Application, ComplaintSupporter, SharedComplaint
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.applications_bot import vk_post
from tests.helpers.citizen_harness import TelegramChat, citizen_bot
from tests.helpers.complaints_harness import ZONE, make_appeal, make_complaint
from tests.helpers.vk import vk_settings
from tests.helpers.vk_api_server import FakeVkApi

PEER = 512345678


@pytest.fixture
def chat(runtime: Runtime, clock: FrozenClock) -> TelegramChat:
    return TelegramChat(runtime, clock)


def the_complaint(runtime: Runtime, complaint_id: int) -> SharedComplaint:
    with runtime.factory() as session:
        found = session.get(SharedComplaint, complaint_id)
        assert found is not None
        return found


def supporters(runtime: Runtime, complaint_id: int) -> list[ComplaintSupporter]:
    with runtime.factory() as session:
        return complaints.supporters(session, complaint_id)


def set_status(runtime: Runtime, complaint_id: int, status: str, answer: str | None) -> None:
    with runtime.factory() as session:
        complaints.change_status(
            session, complaint_id, ComplaintChange(status, answer=answer), Actor.cli("test"),
            runtime.clock.now(), ZONE,
        )  # fmt: skip
        session.commit()


def sent_to(chat: TelegramChat, chat_id: int) -> list[str]:
    return [
        r.data["text"]
        for r in chat.api.requests
        if r.method == "sendMessage" and r.data["chat_id"] == str(chat_id)
    ]


def mine(chat: TelegramChat) -> list[str]:
    """What the bot sent to the citizen of ``citizen_harness`` (not to other supporters)."""
    return sent_to(chat, 391234567)


async def start_lighting_application(chat: TelegramChat, address: str) -> None:
    await chat.press(texts.APPLY)
    await chat.press(f"{texts.SERVICE_PREFIX}lighting")
    await chat.say(address)
    await chat.deliver()


async def test_telegram_citizen_joins_with_plus_one_and_is_told_of_each_change_once(
    chat: TelegramChat, runtime: Runtime, clock: FrozenClock
) -> None:
    complaint_id = make_complaint(runtime, [make_appeal(runtime, 1)])
    slug = the_complaint(runtime, complaint_id).slug
    await start_lighting_application(chat, "Ленина 5, подъезд 2")
    assert chat.sent_texts()[-1].startswith(
        "О такой проблеме уже сообщили соседи: «Не горят фонари во дворе» (ул. Ленина, д. 5). "
        "Её поддерживают жителей: 1. Статус: принято, ждёт рассмотрения."
    )
    assert [b["id"] for row in chat.last_keyboard for b in row] == [
        f"{JOIN}{complaint_id}", SEPARATE, texts.MENU,
    ]  # fmt: skip
    await chat.press(f"{JOIN}{complaint_id}")
    await chat.deliver()
    assert chat.sent_texts()[-1] == (
        "Спасибо! Вы поддержали жалобу «Не горят фонари во дворе». Теперь её поддерживают "
        "жителей: 2. Мы напишем вам, когда статус жалобы изменится.\n"
        f"Следить за жалобой: /public/complaints/{slug}"
    )
    joined = supporters(runtime, complaint_id)
    assert [s.via for s in joined] == ["cli", "bot"]
    assert joined[1].conversation_id == chat.conversation().id
    with runtime.factory() as session:
        assert session.exec(select(Application)).all() == []  # +1 instead of an application
    before = len(mine(chat))
    set_status(runtime, complaint_id, "in_progress", "Бригада заменит лампы в среду.")
    await chat.deliver()
    assert mine(chat)[before:] == [
        "Общую жалобу «Не горят фонари во дворе» взяли в работу.\n"
        "Ответ ведомства: Бригада заменит лампы в среду.\n"
        f"Следить за жалобой: /public/complaints/{slug}"
    ]
    # The first supporter (another chat) got the same news, once.
    assert len([t for t in sent_to(chat, 900001) if t.startswith("Общую жалобу")]) == 1
    # A restart: a new outbox over the same database sends nothing again.
    again = await Outbox(chat.outbox.factory, clock, chat.outbox.senders).deliver_once()
    assert again.sent == [] and len(mine(chat)) == before + 1
    # Pressing +1 again (an old keyboard) neither joins twice nor breaks the dialogue.
    await chat.press(f"{JOIN}{complaint_id}")
    await chat.deliver()
    assert chat.sent_texts()[-1] == texts.MENU_PROMPT
    assert len(supporters(runtime, complaint_id)) == 2


async def test_declining_goes_on_with_the_application(chat: TelegramChat, runtime: Runtime) -> None:
    complaint_id = make_complaint(runtime, [make_appeal(runtime, 1)])
    await start_lighting_application(chat, "ул. Ленина, д. 5")
    await chat.press(SEPARATE)
    await chat.deliver()
    assert chat.sent_texts()[-1] == texts.APPLY_DESCRIPTION
    await chat.say("Не горит фонарь у моего подъезда")
    await chat.say("+7 900 123 45 67")
    await chat.press(texts.APPLY_CONFIRM)
    with runtime.factory() as session:
        application = session.exec(select(Application)).one()
    assert application.fields["address"] == "ул. Ленина, д. 5"
    assert "complaint" not in application.fields
    assert len(supporters(runtime, complaint_id)) == 1


async def test_no_offer_for_another_place_another_topic_or_a_closed_complaint(
    chat: TelegramChat, runtime: Runtime
) -> None:
    closed = make_complaint(runtime, [make_appeal(runtime, 1)], place="ул. Мира, 3")
    set_status(runtime, closed, "done", None)
    make_complaint(runtime, [make_appeal(runtime, 2)], topic="roads")
    for address in ("ул. Ленина, д. 7", "ул. Мира, д. 3", "ул. Ленина, д. 5"):
        await chat.press(texts.MENU)
        await start_lighting_application(chat, address)
        assert chat.sent_texts()[-1] == texts.APPLY_DESCRIPTION, address


async def test_a_forged_or_stale_complaint_id_joins_nothing(
    chat: TelegramChat, runtime: Runtime
) -> None:
    offered = make_complaint(runtime, [make_appeal(runtime, 1)])
    other = make_complaint(runtime, [make_appeal(runtime, 2)], place="ул. Мира, 3")
    await start_lighting_application(chat, "Ленина 5")
    for forged in (f"{JOIN}{other}", f"{JOIN}{'9' * 50}", f"{JOIN}-1", f"{JOIN}１"):
        await chat.press(forged)
        await chat.deliver()
        assert chat.sent_texts()[-1].startswith("О такой проблеме уже сообщили соседи"), forged
    await chat.say("да")  # typed text: the offer again
    await chat.deliver()
    assert chat.sent_texts()[-1].startswith("О такой проблеме уже сообщили соседи")
    assert len(supporters(runtime, offered)) == 1 and len(supporters(runtime, other)) == 1
    # The complaint closes while the offer waits: the press goes on with the form.
    set_status(runtime, offered, "done", None)
    await chat.press(f"{JOIN}{offered}")
    await chat.deliver()
    assert chat.sent_texts()[-1].endswith(texts.APPLY_DESCRIPTION)
    assert "уже закрыта" in chat.sent_texts()[-1]
    assert len(supporters(runtime, offered)) == 1


# -- VK ---------------------------------------------------------------------------------------


@pytest.fixture
def vk_client(runtime: Runtime, clock: FrozenClock) -> Iterator[TestClient]:
    app = create_app(vk_settings(runtime), start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    with TestClient(app) as client:
        yield client


async def test_vk_citizen_joins_by_button_and_gets_the_news_by_messages_send(
    vk_client: TestClient, runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi
) -> None:
    complaint_id = make_complaint(runtime, [make_appeal(runtime, 1)], topic="garbage",
                                  place="ул. Садовая, д. 3", title="Не вывозят мусор")  # fmt: skip
    counter = [0]

    def press(button_id: str) -> None:
        vk_post(vk_client, "message_new_button.json", counter,
                payload=json.dumps({"id": button_id}), text="…")  # fmt: skip

    press(texts.APPLY)
    press("service:garbage")
    vk_post(vk_client, "message_new.json", counter, text="Садовая 3")
    press(f"{JOIN}{complaint_id}")
    assert len(supporters(runtime, complaint_id)) == 2
    set_status(runtime, complaint_id, "done", "Мусор вывезли.")
    vk = VkClient("vk1.a.group-token", api_version="5.199", base_url=vk_api.url)
    vk.api.RPS_DELAY = 0
    vk_api.respond("messages.send", 3001)
    await Outbox(runtime.factory, clock, {"vk": VkSender(vk, 200000001)}).deliver_once()
    sent = [p for p in vk_api.calls("messages.send") if p["peer_id"] == str(PEER)]
    texts_sent = [p["message"] for p in sent]
    assert texts_sent[1] == texts.APPLY_ADDRESS
    assert texts_sent[2].startswith("О такой проблеме уже сообщили соседи")
    offer_keyboard = json.loads(sent[2]["keyboard"])
    ids: list[Any] = [
        json.loads(b["action"]["payload"])["id"] for row in offer_keyboard["buttons"] for b in row
    ]
    assert ids[:2] == [f"{JOIN}{complaint_id}", SEPARATE]
    assert texts_sent[3].startswith("Спасибо! Вы поддержали жалобу «Не вывозят мусор»")
    assert texts_sent[4].startswith("Общая жалоба «Не вывозят мусор»: работа выполнена.")
    assert "Ответ ведомства: Мусор вывезли." in texts_sent[4]
    assert len(texts_sent) == 5


# -- the web chat -----------------------------------------------------------------------------


def test_web_chat_visitor_joins_and_sees_the_news(runtime: Runtime, clock: FrozenClock) -> None:
    complaint_id = make_complaint(runtime, [make_appeal(runtime, 1)], topic="roads",
                                  place="пр. Мира, д. 12", title="Яма на тротуаре")  # fmt: skip
    app = create_app(runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    visitor = TestClient(app)
    visitor.get("/chat")
    for step in ({"button": texts.APPLY}, {"button": "service:roads"},
                 {"text": "проспект Мира 12"}):  # fmt: skip
        assert visitor.post("/api/chat/messages", json=step).status_code == 200
    offer = visitor.get("/api/chat/messages").json()[-1]
    assert offer["text"].startswith("О такой проблеме уже сообщили соседи: «Яма на тротуаре»")
    assert offer["buttons"][0] == [{"id": f"{JOIN}{complaint_id}", "text": "Поддержать (+1)"}]
    visitor.post("/api/chat/messages", json={"button": f"{JOIN}{complaint_id}"})
    seen = visitor.get("/api/chat/messages").json()
    assert seen[-1]["text"].startswith("Спасибо! Вы поддержали жалобу «Яма на тротуаре»")
    set_status(runtime, complaint_id, "refused", "Тротуар отремонтируют летом.")
    news = visitor.get(f"/api/chat/messages?after={seen[-1]['id']}").json()
    assert [m["text"].splitlines()[:2] for m in news] == [
        ["Общая жалоба «Яма на тротуаре»: сделать это сейчас нельзя.",
         "Ответ ведомства: Тротуар отремонтируют летом."]
    ]  # fmt: skip
    assert TestClient(app).get("/api/chat/messages").json() == []  # not another visitor's
    with runtime.factory() as session:
        rows = session.exec(select(ComplaintSupporter).order_by(col(ComplaintSupporter.id))).all()
    assert [r.via for r in rows] == ["cli", "bot"]


async def test_a_free_text_message_naming_the_place_and_topic_is_offered_plus_one(
    chat: TelegramChat, runtime: Runtime
) -> None:
    complaint_id = make_complaint(runtime, [make_appeal(runtime, 1)])
    await chat.say("Здравствуйте, у нас на улице Ленина 5 третий день не горят фонари!")
    await chat.deliver()
    assert mine(chat)[-1].startswith("О такой проблеме уже сообщили соседи")
    await chat.press(f"{JOIN}{complaint_id}")
    await chat.deliver()
    assert mine(chat)[-1].startswith("Спасибо! Вы поддержали жалобу")
    assert len(supporters(runtime, complaint_id)) == 2
    assert chat.conversation().status == "bot"  # no operator needed


async def test_declining_the_offer_on_free_text_goes_on_with_the_message(
    chat: TelegramChat, runtime: Runtime
) -> None:
    complaint_id = make_complaint(runtime, [make_appeal(runtime, 1)])
    await chat.say("На Ленина 5 не горят фонари")
    await chat.press(SEPARATE)
    await chat.deliver()
    # The tiny knowledge base knows nothing of lamps: the message goes to an operator.
    assert mine(chat)[-1] == texts.HANDOFF_NOT_FOUND.format(number=chat.conversation().number)
    assert chat.conversation().status == "waiting_operator"
    assert len(supporters(runtime, complaint_id)) == 1


async def test_no_offer_on_free_text_about_another_house(
    chat: TelegramChat, runtime: Runtime
) -> None:
    make_complaint(runtime, [make_appeal(runtime, 1)])
    await chat.say("На Ленина 15 не горят фонари")
    await chat.deliver()
    assert mine(chat)[-1] == texts.HANDOFF_NOT_FOUND.format(number=chat.conversation().number)
