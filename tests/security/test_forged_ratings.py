"""Issue #9, item 3: public ratings cannot be forged.

A rating is accepted only from the citizen of the conversation (same channel, dialogue and
identity), once, after the conversation was closed and the bot's rating request went out to
them. Everything else gets a polite Russian reply and no rating, on every bot channel (web
chat, Telegram, VK); the public ratings page does not move.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import col, select

from bot.citizen import texts
from bot.citizen.engine import CitizenBot
from bot.webchat import store
from core.clock import FrozenClock
from inbox import workflow
from inbox.models import AuditEvent, Conversation, DeliveryStatus, Message, Rating
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.citizen_harness import TelegramChat, citizen_bot

QUESTION = "Во дворе не вывозят мусор"


@pytest.fixture
def app(runtime: Runtime, clock: FrozenClock) -> FastAPI:
    app = create_app(runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    return app


def visitor(app: FastAPI) -> TestClient:
    client = TestClient(app)
    assert client.get("/chat").status_code == 200
    return client


def ask(client: TestClient, text: str = QUESTION) -> int:
    """The visitor writes; the id of their (newest) conversation."""
    assert client.post("/api/chat/messages", json={"text": text}).status_code == 200
    return conversation_of(client)


def conversation_of(client: TestClient) -> int:
    messages = client.get("/api/chat/messages").json()
    assert messages
    app: FastAPI = client.app  # type: ignore[assignment]
    with app.state.runtime.factory() as session:
        message = session.get(Message, messages[0]["id"])
        assert message is not None
        return message.conversation_id


def close(runtime: Runtime, clock: FrozenClock, conversation_id: int) -> None:
    with runtime.factory() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        workflow.close(session, conversation, clock.now())
        session.commit()


def closed_and_asked(app: FastAPI, client: TestClient, clock: FrozenClock) -> int:
    """A visitor's conversation, closed, with the rating request shown in their page."""
    conversation_id = ask(client)
    close(app.state.runtime, clock, conversation_id)
    assert app.state.citizen_bot.ask_for_ratings()
    request = client.get("/api/chat/messages").json()[-1]  # the page fetches: delivered
    assert request["buttons"][0][0]["id"] == f"rate:{conversation_id}:1"
    return conversation_id


def press(client: TestClient, button: str) -> dict[str, Any]:
    answer = client.post("/api/chat/messages", json={"button": button, "label": "1"})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def ratings(runtime: Runtime) -> list[tuple[int, int]]:
    with runtime.factory() as session:
        rows = session.exec(select(Rating).order_by(col(Rating.id))).all()
        return [(r.conversation_id, r.score) for r in rows]


def last_text(client: TestClient) -> str:
    text: str = client.get("/api/chat/messages").json()[-1]["text"]
    return text


def public_figures(client: TestClient) -> list[str]:
    page = client.get("/public/ratings")
    assert page.status_code == 200
    return re.findall(r'<div class="big">([^<]*)</div><div>([^<]*)</div>', page.text)


def test_a_stranger_cannot_rate_someone_elses_closed_and_asked_conversation(
    app: FastAPI, runtime: Runtime, clock: FrozenClock
) -> None:
    citizen = visitor(app)
    conversation_id = closed_and_asked(app, citizen, clock)
    seen_by_citizen = len(citizen.get("/api/chat/messages").json())

    fresh = visitor(app)  # no conversation of their own: the refusal is the POST's note
    assert press(fresh, f"rate:{conversation_id}:1") == {"ok": True, "note": texts.RATE_REFUSED}
    talking = visitor(app)  # with a conversation: the refusal is a message in their chat
    ask(talking, "Когда включат отопление")
    press(talking, f"rate:{conversation_id}:1")
    assert last_text(talking) == texts.RATE_REFUSED

    assert ratings(runtime) == []
    assert len(citizen.get("/api/chat/messages").json()) == seen_by_citizen  # not told
    press(citizen, f"rate:{conversation_id}:5")  # the citizen still can
    assert ratings(runtime) == [(conversation_id, 5)]
    assert last_text(citizen) == texts.RATE_THANKS


def test_a_forged_session_cookie_does_not_make_the_conversation_yours(
    app: FastAPI, runtime: Runtime, clock: FrozenClock
) -> None:
    citizen = visitor(app)
    conversation_id = closed_and_asked(app, citizen, clock)
    with runtime.factory() as session:
        thread = session.get(Conversation, conversation_id)
        assert thread is not None
    impostor = TestClient(app)
    impostor.cookies.set("otklik_chat", thread.thread_key.removeprefix("web:"))
    assert press(impostor, f"rate:{conversation_id}:1")["note"] == texts.RATE_REFUSED
    assert ratings(runtime) == []


def test_an_open_conversation_cannot_be_rated_even_by_its_citizen(
    app: FastAPI, runtime: Runtime
) -> None:
    citizen = visitor(app)
    conversation_id = ask(citizen)
    press(citizen, f"rate:{conversation_id}:1")
    assert ratings(runtime) == []
    assert last_text(citizen) == texts.RATE_NOT_YET
    with runtime.factory() as session:
        refused = session.exec(select(AuditEvent).where(AuditEvent.kind == "rating_refused")).one()
    assert refused.data["reason"] == "open" and refused.conversation_id == conversation_id


def test_a_closed_conversation_cannot_be_rated_before_the_request_went_out(
    app: FastAPI, runtime: Runtime, clock: FrozenClock
) -> None:
    citizen = visitor(app)
    conversation_id = ask(citizen)
    close(runtime, clock, conversation_id)
    press(citizen, f"rate:{conversation_id}:2")  # not asked at all
    assert ratings(runtime) == []
    # Asked, but the request is still in the outbox (the page has not fetched it).
    bot: CitizenBot = app.state.citizen_bot
    [request_id] = bot.ask_for_ratings()
    event = store.inbound_event(
        thread_of(runtime, conversation_id), clock.now(), button=f"rate:{conversation_id}:2"
    )
    assert runtime.inbox.ingest(event)[0].duplicate is False
    bot.handle(None, event)
    assert ratings(runtime) == []
    with runtime.factory() as session:
        request = session.get(Message, request_id)
        assert request is not None and request.delivery_status == DeliveryStatus.queued.value
    texts_seen = [m["text"] for m in citizen.get("/api/chat/messages").json()]  # delivered now
    assert texts_seen.count(texts.RATE_NOT_YET) == 2
    press(citizen, f"rate:{conversation_id}:2")
    assert ratings(runtime) == [(conversation_id, 2)]


def thread_of(runtime: Runtime, conversation_id: int) -> str:
    with runtime.factory() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        return conversation.thread_key.removeprefix("web:")


def test_a_conversation_is_rated_once_even_by_presses_at_the_same_moment(
    app: FastAPI, runtime: Runtime, clock: FrozenClock
) -> None:
    citizen = visitor(app)
    conversation_id = closed_and_asked(app, citizen, clock)
    session_id = thread_of(runtime, conversation_id)
    bot: CitizenBot = app.state.citizen_bot
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def rate(score: int) -> None:
        event = store.inbound_event(
            session_id, clock.now(), button=f"rate:{conversation_id}:{score}"
        )
        start.wait()
        try:
            bot.rate(event, f"rate:{conversation_id}:{score}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=rate, args=(n % 5 + 1,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(ratings(runtime)) == 1
    press(citizen, f"rate:{conversation_id}:1")  # and a later one is refused too
    assert len(ratings(runtime)) == 1
    assert last_text(citizen) == texts.RATE_ALREADY


@pytest.mark.parametrize(
    "button",
    [
        "rate:99999999999999999999:1",  # larger than the column: no 500 on PostgreSQL
        "rate:2147483648:1",
        "rate:-1:1",
        "rate:0:1",
        "rate:{id}:-5",
        "rate:{id}:0",
        "rate:{id}:6",
        "rate:{id}:99999999999999999999",
        "rate:{id}:4.5",
        "rate:abc:1",
        "rate:{id}:x",
        "rate:{id}:١",  # an Arabic-Indic digit, which int() would take
        "rate:{id}:1:1",
        "rate:{id}",
        "rate:",
        "rate: {id}:5",
    ],
)
def test_malformed_presses_are_refused_politely_with_no_error(
    app: FastAPI, runtime: Runtime, clock: FrozenClock, button: str
) -> None:
    citizen = visitor(app)
    conversation_id = closed_and_asked(app, citizen, clock)
    press(citizen, button.format(id=conversation_id))
    assert ratings(runtime) == []
    assert last_text(citizen) == texts.RATE_REFUSED
    press(citizen, f"rate:{conversation_id}:3")
    assert ratings(runtime) == [(conversation_id, 3)]


def test_the_public_average_does_not_move_under_forged_ratings(
    app: FastAPI, runtime: Runtime, clock: FrozenClock
) -> None:
    citizen = visitor(app)
    rated = closed_and_asked(app, citizen, clock)
    press(citizen, f"rate:{rated}:5")
    before = public_figures(citizen)
    assert ("5.0", "средняя оценка из 5 (всего 1)") in before
    open_ids = [ask(visitor(app), f"Вопрос номер {n}") for n in range(3)]
    for number in range(5):  # five visitors, as the probe did
        attacker = visitor(app)
        own = ask(attacker, f"Жалоба {number}")
        for target in [rated, *open_ids, own, own + 1000]:
            press(attacker, f"rate:{target}:1")
    assert ratings(runtime) == [(rated, 5)]
    assert public_figures(visitor(app)) == before


async def test_telegram_presses_are_checked_and_answered_politely(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = TelegramChat(runtime, clock)
    await chat.press("rate:41:1")  # no conversation at all: the button's pop-up says why
    [popup] = chat.api.calls("answerCallbackQuery")
    assert popup.data["text"] == texts.RATE_REFUSED
    await chat.say("оператор")
    conversation = chat.conversation()
    assert conversation.id is not None
    await chat.press(f"rate:{conversation.id}:1")  # open: refused, told in the chat
    await chat.deliver()
    assert chat.sent_texts()[-1] == texts.RATE_NOT_YET
    close(runtime, clock, conversation.id)
    bot: CitizenBot = chat.app.state.citizen_bot
    assert bot.ask_for_ratings()
    await chat.press(f"rate:{conversation.id}:1")  # asked, not yet sent to Telegram
    assert ratings(runtime) == []
    await chat.deliver()
    await chat.press(f"rate:{conversation.id}:4")
    await chat.press(f"rate:{conversation.id}:99999999999")
    await chat.deliver()
    assert ratings(runtime) == [(conversation.id, 4)]
    assert chat.sent_texts()[-2:] == [texts.RATE_THANKS, texts.RATE_REFUSED]


def test_vk_presses_are_checked_and_answered_politely(runtime: Runtime, clock: FrozenClock) -> None:
    from tests.helpers.vk import vk_settings
    from tests.helpers.vk_bot import bot_answers, press, say

    vk_runtime = vk_settings(runtime)
    app = create_app(vk_runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(vk_runtime, clock)
    with TestClient(app) as client:
        say(client, "оператор")
        with vk_runtime.factory() as session:
            conversation = session.exec(select(Conversation)).one()
            assert conversation.id is not None
            conversation_id = conversation.id
        press(client, f"rate:{conversation_id}:1", "1")  # open
        assert bot_answers(vk_runtime)[-1].text == texts.RATE_NOT_YET
        close(vk_runtime, clock, conversation_id)
        [request_id] = app.state.citizen_bot.ask_for_ratings()
        press(client, f"rate:{conversation_id}:1", "1")  # asked, not yet sent
        assert ratings(vk_runtime) == []
        with vk_runtime.factory() as session:
            request = session.get(Message, request_id)
            assert request is not None
            request.delivery_status = DeliveryStatus.sent.value  # as the VK outbox records it
            session.commit()
        press(client, f"rate:{conversation_id + 1}:1", "1")  # someone else's / unknown
        assert bot_answers(vk_runtime)[-1].text == texts.RATE_REFUSED
        press(client, f"rate:{conversation_id}:2", "2")
        assert ratings(vk_runtime) == [(conversation_id, 2)]
        assert bot_answers(vk_runtime)[-1].text == texts.RATE_THANKS
