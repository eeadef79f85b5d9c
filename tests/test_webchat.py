"""The web chat: a browser session talks to the citizen bot; operators' replies appear."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from bot.citizen import texts
from bot.webchat.routes import COOKIE
from core.clock import FrozenClock
from inbox import workflow
from inbox.models import Conversation, DeliveryStatus, Message
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.citizen_harness import GARBAGE_ANSWER, citizen_bot, operator_replies


@pytest.fixture
def app(runtime: Runtime, clock: FrozenClock):  # type: ignore[no-untyped-def]
    app = create_app(runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    return app


def _visit(app) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(app)
    page = client.get("/chat")
    assert page.status_code == 200
    return client


def test_chat_page_gives_each_visitor_a_random_session_cookie(app) -> None:  # type: ignore[no-untyped-def]
    first, second = _visit(app), _visit(app)
    page = first.get("/chat")
    assert "Чат с Департаментом городского хозяйства" in page.text
    assert len(first.cookies[COOKIE]) >= 20
    assert first.cookies[COOKIE] != second.cookies[COOKIE]
    assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=lax" in page.headers["set-cookie"]
    assert first.get("/chat/static/chat.js").status_code == 200
    assert first.get("/chat/static/../routes.py").status_code == 404


def test_question_is_answered_and_delivered_when_the_page_fetches_it(app, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
    client = _visit(app)
    sent = client.post(
        "/api/chat/messages", json={"text": "Во дворе не вывозят мусор", "client_id": "a1"}
    )
    assert sent.status_code == 200
    with runtime.factory() as session:
        answer = session.exec(select(Message).where(Message.direction == "out")).one()
        assert answer.delivery_status == DeliveryStatus.queued.value
    mine, bots = client.get("/api/chat/messages").json()
    assert (mine["direction"], mine["author"], mine["text"]) == (
        "in",
        "Вы",
        "Во дворе не вывозят мусор",
    )
    assert bots["author"] == "Бот" and bots["text"].startswith(GARBAGE_ANSWER)
    assert bots["buttons"] == [[{"id": "menu:main", "text": "Главное меню"},
                                {"id": "menu:operator", "text": "Позвать оператора"}]]  # fmt: skip
    with runtime.factory() as session:
        delivered = session.get(Message, answer.id)
        assert delivered is not None
        assert delivered.delivery_status == DeliveryStatus.sent.value
        assert delivered.external_id == "webchat"
    assert client.get("/api/chat/messages", params={"after": bots["id"]}).json() == []


def test_resent_message_is_stored_once(app, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
    client = _visit(app)
    for _ in range(2):
        client.post("/api/chat/messages", json={"text": "оператор", "client_id": "same"})
    with runtime.factory() as session:
        assert len(session.exec(select(Message).where(Message.direction == "in")).all()) == 1


def test_citizen_text_comes_back_as_data_not_markup(app) -> None:  # type: ignore[no-untyped-def]
    client = _visit(app)
    evil = '<img src=x onerror="alert(1)">оператор'
    client.post("/api/chat/messages", json={"text": evil})
    messages = client.get("/api/chat/messages").json()
    assert messages[0]["text"] == evil
    script = client.get("/chat/static/chat.js").text
    assert "innerHTML" not in script and "textContent = message.text" in script


def test_operator_reply_appears_in_the_page_and_only_in_that_session(
    app, runtime: Runtime, clock: FrozenClock
) -> None:  # type: ignore[no-untyped-def]
    citizen, stranger = _visit(app), _visit(app)
    citizen.post("/api/chat/messages", json={"button": texts.OPERATOR})
    with runtime.factory() as session:
        assert session.exec(select(Conversation)).one().status == "waiting_operator"
    operator_replies(runtime, clock, "Добрый день! Чем помочь?")
    pressed = citizen.post("/api/chat/messages", json={"button": texts.APPLY})
    assert pressed.json() == {"ok": True, "note": texts.BUTTON_WHILE_OPERATOR}
    messages = citizen.get("/api/chat/messages").json()
    assert [m["author"] for m in messages] == ["Вы", "Бот", "Оператор", "Вы"]
    assert messages[0]["text"] == "Позвать оператора"
    assert messages[2]["text"] == "Добрый день! Чем помочь?"
    assert stranger.get("/api/chat/messages").json() == []


def test_application_and_payment_through_the_web_chat(app) -> None:  # type: ignore[no-untyped-def]
    client = _visit(app)
    for step in (
        {"button": texts.APPLY},
        {"button": "service:heating"},
        {"text": "ул. Мира, д. 7, кв. 3"},
        {"text": "Холодные батареи в квартире вторую неделю"},
        {"text": "+7 (912) 000-11-22"},
        {"button": texts.APPLY_CONFIRM},
    ):
        assert client.post("/api/chat/messages", json=step).status_code == 200
    last = client.get("/api/chat/messages").json()[-1]
    assert last["text"].startswith("Заявление принято. Его номер: З-2026-")
    client.post("/api/chat/messages", json={"button": texts.PAY})
    client.post("/api/chat/messages", json={"button": "fee:parking"})
    payment = client.get("/api/chat/messages").json()[-1]
    assert payment["payment_url"].startswith("https://pay.example/?purpose=")
    assert "amount=500" in payment["payment_url"]
    qr = client.get(payment["qr_url"])
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/png"
    assert qr.content.startswith(b"\x89PNG")
    assert _visit(app).get(payment["qr_url"]).status_code == 404  # not another visitor's


def test_empty_or_oversized_messages_are_refused(app) -> None:  # type: ignore[no-untyped-def]
    client = _visit(app)
    assert client.post("/api/chat/messages", json={"text": "   "}).status_code == 422
    assert client.post("/api/chat/messages", json={"text": "я" * 4001}).status_code == 422


def test_rating_after_close_in_the_web_chat(app, runtime: Runtime, clock: FrozenClock) -> None:  # type: ignore[no-untyped-def]
    client = _visit(app)
    client.post("/api/chat/messages", json={"text": "Во дворе не вывозят мусор"})
    with runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
        workflow.close(session, conversation, clock.now())
        session.commit()
    app.state.citizen_bot.ask_for_ratings()
    request = client.get("/api/chat/messages").json()[-1]
    assert [b["text"] for b in request["buttons"][0]] == ["1", "2", "3", "4", "5"]
    press = request["buttons"][0][3]
    client.post("/api/chat/messages", json={"button": press["id"], "label": press["text"]})
    assert client.get("/api/chat/messages").json()[-1]["text"] == texts.RATE_THANKS
    from inbox.models import Rating

    with runtime.factory() as session:
        rating = session.exec(select(Rating)).one()
    assert (rating.score, rating.kb_entry_id) == (4, "garbage-not-collected")
