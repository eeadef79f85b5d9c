"""The MAX channel end to end: Updates in MAX's format into ``/webhooks/max``, the citizen bot,
and its answers out through the outbox and the real ``maxapi`` client to a loopback stand-in of
the Bot API (tests/helpers/max_api_server.py). Runs on SQLite and PostgreSQL (``runtime``)."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from bot.citizen import texts
from bot.max.cli import poll
from bot.max.pipeline import MaxPipeline
from bot.max.sender import MaxSender, RateLimiter, shared_limiter
from core.clock import FrozenClock
from core.config import Settings
from inbox import workflow
from inbox.models import Conversation, InboundRecord, Message, Operator, Rating
from inbox.outbox import Outbox
from inbox.runtime import Runtime, build_runtime
from otklik.web import create_app
from tests.helpers.citizen_harness import GARBAGE_ANSWER, citizen_bot
from tests.helpers.max import CHAT, SECRET, MaxChat, configure, keyboard_of
from tests.helpers.max_api_server import TOKEN, FakeMaxApi
from tests.helpers.payloads import payload


def payloads_of(body: Any) -> list[str]:
    return [b.get("payload") or b.get("url") for row in keyboard_of(body) for b in row]


def journal_size(runtime: Runtime) -> int:
    with runtime.factory() as session:
        return len(session.exec(select(InboundRecord)).all())


@pytest.fixture
async def chat(runtime: Runtime, clock: FrozenClock, max_api: FakeMaxApi) -> AsyncIterator[MaxChat]:
    chat = MaxChat(runtime, clock, max_api)
    yield chat
    await chat.bot.close_session()


# -- the webhook -------------------------------------------------------------------------------
async def test_wrong_or_missing_secret_is_refused_and_nothing_is_stored(
    chat: MaxChat, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    update = json.loads(payload("max", "dialog_message.json"))
    for secret in ("guess", None, "", SECRET + "x", SECRET.upper()):
        assert (await chat.post(update, secret=secret)).status_code == 403
    assert "wrong or missing secret" in caplog.text
    assert journal_size(runtime) == 0 and chat.api.requests == []
    assert (await chat.post(update)).status_code == 200
    assert journal_size(runtime) == 1


async def test_without_a_configured_secret_every_update_is_refused(
    chat: MaxChat, runtime: Runtime
) -> None:
    runtime.settings.max_webhook_secret = ""
    update = json.loads(payload("max", "dialog_message.json"))
    assert (await chat.post(update, secret="")).status_code == 403
    assert (await chat.post(update, secret=None)).status_code == 403
    assert journal_size(runtime) == 0


def test_webhook_is_off_without_a_token(runtime: Runtime) -> None:
    app = create_app(runtime, start_scheduler=False)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        response = client.post("/webhooks/max", json={}, headers={"X-Max-Bot-Api-Secret": "x"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b"\xff\xfe{}",
        b'{"update_type": "message_created", "timestamp": 1}',
        b'{"update_type": "message_created", "timestamp": 1' + b"9" * 5000 + b"}",
        b'{"a":' * 200 + b"1" + b"}" * 200,
        json.dumps({"update_type": "comment_created", "timestamp": 1, "message": []}).encode(),
    ],
)
async def test_bad_bodies_get_a_4xx_and_are_not_stored(
    chat: MaxChat, runtime: Runtime, raw: bytes
) -> None:
    response = await chat.post(None, raw=raw)
    assert 400 <= response.status_code < 500
    assert journal_size(runtime) == 0


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("message", "recipient", "chat_id"), 10**30),
        (("message", "sender", "user_id"), -(10**30)),
        (("message", "timestamp"), 10**25),
        (("message", "body", "seq"), 2**64),
        (("timestamp",), 10**400),
    ],
)
async def test_huge_numbers_are_a_4xx_not_a_500(
    chat: MaxChat, runtime: Runtime, path: tuple[str, ...], value: int
) -> None:
    update = json.loads(payload("max", "dialog_message.json"))
    node = update
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    response = await chat.post(None, raw=json.dumps(update).encode())
    assert response.status_code == 400 and response.json()["detail"]
    assert journal_size(runtime) == 0


async def test_a_redelivered_update_is_stored_and_answered_once(
    chat: MaxChat, runtime: Runtime
) -> None:
    update = json.loads(payload("max", "dialog_message.json"))
    for _ in range(3):
        assert (await chat.post(update)).status_code == 200
    await chat.deliver()
    assert journal_size(runtime) == 1
    assert len(chat.api.sent()) == 1


async def test_odd_unicode_is_stored_and_answered(chat: MaxChat, runtime: Runtime) -> None:
    update = chat.message_update("x")
    raw = json.dumps(update).replace('"x"', '"\\u202e\\ud800 \\u0000 мусор не вывозят 👩\\u200d👧"')
    assert (await chat.post(None, raw=raw.encode())).status_code == 200
    await chat.deliver()
    with runtime.factory() as session:
        [inbound] = session.exec(select(Message).where(Message.direction == "in")).all()
    assert "мусор не вывозят" in inbound.text
    assert "\x00" not in inbound.text and "\ud800" not in inbound.text
    assert chat.sent_texts()[0].startswith(GARBAGE_ANSWER)


async def test_database_down_is_503_so_that_max_delivers_again(
    clock: FrozenClock, tmp_path: Any, max_api: FakeMaxApi
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/none", data_dir=tmp_path
    )
    configure(settings, max_api)
    runtime = build_runtime(settings, clock=clock)
    app = create_app(runtime, start_scheduler=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://otklik") as client:
        response = await client.post(
            "/webhooks/max",
            content=payload("max", "dialog_message.json"),
            headers={"X-Max-Bot-Api-Secret": SECRET, "Content-Type": "application/json"},
        )
    runtime.dispose()
    assert response.status_code == 503


# -- the citizen bot ---------------------------------------------------------------------------
async def test_question_is_answered_from_the_kb_as_a_reply_with_an_inline_keyboard(
    chat: MaxChat,
) -> None:
    await chat.post(json.loads(payload("max", "dialog_message.json")))
    report = await chat.deliver()
    assert len(report.sent) == 1
    [request] = chat.api.sent()
    assert request.query["chat_id"] == str(CHAT)
    assert request.body["text"].startswith(GARBAGE_ANSWER)
    assert request.body["link"] == {
        "type": "reply",
        "mid": "mid.000000000ae4a9f5019ae9d1c3b20f11",
    }
    assert payloads_of(request.body) == [texts.MENU, texts.OPERATOR]
    assert [b["type"] for row in keyboard_of(request.body) for b in row] == ["callback"] * 2
    conversation = chat.conversation()
    assert conversation.channel == "max" and conversation.status == "bot"
    with chat.runtime.factory() as session:
        answer = session.exec(select(Message).where(Message.direction == "out")).one()
    assert answer.delivery_status == "sent"
    assert answer.external_id == chat.api.chats[CHAT][0]["body"]["mid"]
    assert answer.meta["kb_entry_id"] == "garbage-not-collected"


async def test_menu_then_operator_hand_off_then_quiet_with_a_callback_note(
    chat: MaxChat,
) -> None:
    await chat.say("Начать")
    await chat.deliver()
    assert chat.sent_texts() == [texts.GREETING]
    assert payloads_of(chat.api.sent()[0].body) == [b["id"] for row in texts.MAIN_MENU for b in row]
    await chat.press(texts.OPERATOR)
    await chat.deliver()
    conversation = chat.conversation()
    assert conversation.status == "waiting_operator"
    assert chat.sent_texts()[-1] == texts.HANDOFF_ASKED.format(number=conversation.number)
    with chat.runtime.factory() as session:  # the history shows the label the citizen saw
        inbound = session.exec(
            select(Message).where(Message.direction == "in").order_by(col(Message.id))
        ).all()
    assert inbound[-1].text == "Позвать оператора"
    assert chat.api.calls("POST /answers") == []  # the bot answered with a message
    await chat.say("Алло, вы тут?")
    await chat.press(texts.APPLY)
    assert (await chat.deliver()).sent == []  # an operator has it: the bot keeps quiet...
    [note] = chat.api.calls("POST /answers")  # ...and the press gets a short note
    assert note.query["callback_id"].startswith("cb.")
    assert note.body == {"notification": texts.BUTTON_WHILE_OPERATOR}


async def test_rating_buttons_after_the_operator_closes(
    chat: MaxChat, runtime: Runtime, clock: FrozenClock
) -> None:
    await chat.say("мусор не вывозят")
    await chat.deliver()
    conversation = chat.conversation()
    with runtime.factory() as session:
        anna = Operator(login="anna", display_name="Анна")
        session.add(anna)
        fresh = session.get(Conversation, conversation.id)
        assert fresh is not None
        workflow.reply(
            session, fresh, "Мусор вывезут сегодня до 18:00.", clock.now(), operator=anna
        )
        workflow.close(session, fresh, clock.now(), by=anna)
        session.commit()
    bot = chat.app.state.citizen_bot
    assert len(bot.ask_for_ratings()) == 1
    await chat.deliver()
    prompt = chat.api.sent()[-1]
    assert prompt.body["text"] == texts.RATE_PROMPT.format(number=conversation.number)
    assert "link" not in prompt.body  # not a reply to an old message
    assert [b["text"] for b in keyboard_of(prompt.body)[0]] == ["1", "2", "3", "4", "5"]
    await chat.press(f"rate:{conversation.id}:5")
    await chat.press(f"rate:{conversation.id}:1")  # a second press does not change it
    await chat.deliver()
    with runtime.factory() as session:
        rating = session.exec(select(Rating)).one()
        assert len(session.exec(select(Conversation)).all()) == 1  # no new appeal
    assert (rating.conversation_id, rating.score) == (conversation.id, 5)
    assert chat.sent_texts()[-2:] == [texts.RATE_THANKS, texts.RATE_ALREADY]


async def test_forged_rating_of_another_conversation_is_refused(
    chat: MaxChat, runtime: Runtime
) -> None:
    await chat.say("мусор не вывозят")
    await chat.press("rate:999999:5")
    with runtime.factory() as session:
        assert session.exec(select(Rating)).all() == []


async def test_comment_on_the_channel_post_is_answered_by_an_operator_as_a_comment(
    chat: MaxChat, runtime: Runtime, clock: FrozenClock
) -> None:
    assert (await chat.post(json.loads(payload("max", "channel_comment.json")))).status_code == 200
    await chat.deliver()
    assert chat.api.sent() == []  # the bot does not speak in public
    with runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
        assert conversation.is_public and conversation.kind == "comment"
        workflow.reply(session, conversation, "Ремонт начнётся 15 мая.", clock.now())
        session.commit()
    await chat.deliver()
    [comment] = chat.api.calls("POST /messages/{mid}/comments".replace("{mid}", POST))
    assert comment.body["text"] == "Ремонт начнётся 15 мая."
    assert comment.body["link"]["mid"] == "mid.ffffbdb48e6c3775019ae9f0a1b20c01"


POST = "mid.ffffbdb48e6c3775019d496b34394b84"


async def test_group_mention_is_stored_for_operators_and_the_bot_keeps_quiet(
    chat: MaxChat, runtime: Runtime
) -> None:
    await chat.post(json.loads(payload("max", "group_mention_markup.json")))
    await chat.deliver()
    assert chat.api.sent() == []
    with runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
    assert conversation.kind == "mention" and conversation.is_public


async def test_bot_started_greets_like_telegrams_start(chat: MaxChat, runtime: Runtime) -> None:
    """«Начать» in a new dialog is the citizen's first turn (as /start on Telegram): the
    greeting with the menu, once even if MAX delivers the update twice."""
    update = json.loads(payload("max", "bot_started.json"))
    assert (await chat.post(update)).status_code == 200
    assert (await chat.post(update)).status_code == 200
    await chat.deliver()
    assert chat.sent_texts() == [texts.GREETING] and journal_size(runtime) == 1
    with runtime.factory() as session:
        assert session.exec(select(Conversation)).one().channel == "max"


async def test_bot_added_to_a_group_opens_nothing(chat: MaxChat, runtime: Runtime) -> None:
    assert (await chat.post(json.loads(payload("max", "bot_added.json")))).status_code == 200
    await chat.deliver()
    assert chat.api.sent() == [] and journal_size(runtime) == 1
    with runtime.factory() as session:
        assert session.exec(select(Conversation)).all() == []


# -- sending -----------------------------------------------------------------------------------
async def test_429_is_retried_later_and_sent_once(chat: MaxChat, clock: FrozenClock) -> None:
    chat.api.fail("POST /messages", 429, "too.many.requests", "Too many requests")
    await chat.say("мусор не вывозят")
    first = await chat.deliver()
    assert first.retried and not first.sent
    assert (await chat.deliver()).sent == []  # not before the pause
    clock.advance(timedelta(seconds=3))
    assert len((await chat.deliver()).sent) == 1
    assert len(chat.api.chats[CHAT]) == 1


@pytest.mark.parametrize(("status", "permanent"), [(503, False), (500, False), (403, True)])
async def test_server_errors_retry_refusals_fail_for_good(
    chat: MaxChat, status: int, permanent: bool
) -> None:
    chat.api.fail("POST /messages", status, "chat.denied" if permanent else "internal")
    await chat.say("мусор не вывозят")
    report = await chat.deliver()
    assert bool(report.failed) is permanent and bool(report.retried) is not permanent


async def test_a_retry_after_a_lost_answer_does_not_send_twice(
    chat: MaxChat, runtime: Runtime, clock: FrozenClock
) -> None:
    """The worker died after MAX stored the message, before it recorded ``sent``: after the
    lease the message is offered again, found among the bot's messages, not sent again."""
    await chat.say("мусор не вывозят")
    await chat.deliver()
    [delivered] = chat.api.chats[CHAT]
    with runtime.factory() as session:  # back to the state the dead worker left
        message = session.exec(select(Message).where(Message.direction == "out")).one()
        message.delivery_status = "sending"
        message.external_id = None
        message.next_attempt_at = clock.now()
        session.commit()
    clock.advance(timedelta(seconds=runtime.settings.outbox_lease + 1))
    report = await chat.deliver()
    assert len(report.sent) == 1
    assert len(chat.api.sent()) == 1 and len(chat.api.calls("GET /messages")) == 1
    with runtime.factory() as session:
        message = session.exec(select(Message).where(Message.direction == "out")).one()
    assert message.external_id == delivered["body"]["mid"]


async def test_senders_keep_under_the_rate_limit_together(chat: MaxChat) -> None:
    """Thirty replies sent at once (several outbox workers, or one after a backlog) leave no
    faster than the limit: MAX allows 30 requests per second, Otklik stays under it."""
    rate = 25.0
    shared_limiter(rate).reserve()  # start from a spent slot: no burst in this measurement
    senders = [MaxSender(chat.bot, rate) for _ in range(3)]  # they share one budget
    replies = [
        Message(
            id=n,
            conversation_id=1,
            direction="out",
            author_kind="bot",
            channel="max",
            text=f"Ответ {n}",
            published_at=chat.clock.now(),
            attempts=1,
            reply_target={"chat_id": 1000 + n},
        )
        for n in range(30)
    ]
    await asyncio.gather(*(senders[n % 3](m) for n, m in enumerate(replies)))
    times = sorted(r.at for r in chat.api.sent())
    assert len(times) == 30
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= rate + 3 < 30, busiest  # in any one second (and sleep jitter); MAX: 30


async def test_the_limiter_spaces_calls_evenly() -> None:
    limiter = RateLimiter(25.0)
    delays = [limiter.reserve() for _ in range(30)]
    assert delays[0] == 0.0
    assert all(0.035 <= b - a <= 0.045 for a, b in itertools.pairwise(delays))
    started = time.monotonic()
    await asyncio.gather(*(RateLimiter(50.0).wait() for _ in range(3)))  # separate budgets
    shared = RateLimiter(50.0)
    await asyncio.gather(*(shared.wait() for _ in range(11)))
    assert time.monotonic() - started >= 10 / 50.0  # a sleep is never shorter


async def test_sleepers_that_wake_late_still_leave_one_interval_apart() -> None:
    """A loop held up by other work wakes several sleepers at once; they must not bunch their
    requests (what MAX counts is when they arrive, not which slot each reserved)."""
    limiter = RateLimiter(25.0)
    left: list[float] = []

    async def send() -> None:
        await limiter.wait()
        left.append(time.monotonic())

    async def hold_the_loop() -> None:
        await asyncio.sleep(0.01)
        time.sleep(0.3)  # blocks the loop: about eight slots pass meanwhile

    await asyncio.gather(hold_the_loop(), *(send() for _ in range(12)))
    gaps = [b - a for a, b in itertools.pairwise(left)]
    assert len(left) == 12 and min(gaps) >= limiter.interval * 0.99, gaps


class CountingLimiter(RateLimiter):
    def __init__(self, api: FakeMaxApi) -> None:
        super().__init__(1000.0)
        self.api = api
        self.waits: list[int] = []  # requests the API had seen at each wait

    async def wait(self) -> None:
        self.waits.append(len(self.api.requests))
        await super().wait()


async def test_every_call_to_max_waits_for_the_limiter_first(
    chat: MaxChat, runtime: Runtime, clock: FrozenClock
) -> None:
    await chat.say("мусор не вывозят")
    await chat.say("оператор")
    sender = MaxSender(chat.bot, 1000.0)
    sender.limiter = limiter = CountingLimiter(chat.api)
    outbox = Outbox(runtime.factory, clock, {"max": sender})
    chat.api.fail("POST /messages", 502, "bad.gateway")  # the retry looks first (GET /messages)
    await outbox.deliver_once()
    clock.advance(timedelta(minutes=5))
    await outbox.deliver_once()
    calls = [r for r in chat.api.requests if r.path in ("/messages",)]
    assert len(calls) == 4  # 502, the second reply, then GET and POST for the first
    assert limiter.waits == list(range(len(calls)))  # one wait right before each call


# -- long polling and the subscription ---------------------------------------------------------
async def test_long_polling_journals_answers_and_moves_the_marker(
    chat: MaxChat, runtime: Runtime
) -> None:
    chat.api.updates = [
        json.loads(payload("max", "dialog_message.json")),
        json.loads(payload("max", "bot_started.json")),
        {"update_type": "message_created", "timestamp": "broken"},
    ]
    pipeline = MaxPipeline(runtime, chat.app.state.citizen_bot, chat.bot)
    await poll(pipeline, chat.bot, rounds=2)
    polls = chat.api.calls("GET /updates")
    assert [p.query.get("marker") for p in polls] == [None, "3"]
    assert "message_created" in polls[0].query["types"].split(",")
    assert journal_size(runtime) == 2  # the broken one is dropped, not stored
    await chat.deliver()
    assert chat.sent_texts()[0].startswith(GARBAGE_ANSWER)


def test_set_webhook_subscribes_with_the_secret(
    max_api: FakeMaxApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.config import get_settings
    from otklik.cli import app

    monkeypatch.setenv("OTKLIK_MAX_TOKEN", TOKEN)
    monkeypatch.setenv("OTKLIK_MAX_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("OTKLIK_MAX_API_URL", max_api.url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["max", "set-webhook", "https://otklik.example/webhooks/max"]
        )
        refused = CliRunner().invoke(app, ["max", "set-webhook", "http://otklik.example/x"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    [subscribe] = max_api.calls("POST /subscriptions")
    assert subscribe.body["url"] == "https://otklik.example/webhooks/max"
    assert subscribe.body["secret"] == SECRET
    assert "comment_created" in subscribe.body["update_types"]
    assert refused.exit_code == 2


def test_serve_warns_when_the_webhook_secret_is_missing() -> None:
    from inbox.startup_checks import check

    on = Settings(max_token=TOKEN, max_webhook_secret="")
    assert any("OTKLIK_MAX_WEBHOOK_SECRET" in w for w in check(on, web=True).warnings)
    ready = Settings(max_token=TOKEN, max_webhook_secret=SECRET)
    assert not any("MAX" in w for w in check(ready, web=True).warnings)
    assert not any("MAX" in w for w in check(Settings(), web=True).warnings)


def test_the_app_runs_the_outbox_worker_that_delivers_max_answers(
    runtime: Runtime, clock: FrozenClock, max_api: FakeMaxApi
) -> None:
    """``otklik serve`` as `make run` starts it, with a MAX token: the webhook, the citizen bot
    and the app's own outbox worker (its MAX bot built from the settings) reach the API."""
    from fastapi.testclient import TestClient

    configure(runtime.settings, max_api)
    app = create_app(runtime, start_scheduler=True)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    with TestClient(app) as client:
        response = client.post(
            "/webhooks/max",
            content=payload("max", "dialog_message.json"),
            headers={"X-Max-Bot-Api-Secret": SECRET, "Content-Type": "application/json"},
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 15
        while not max_api.sent() and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker runs every second in the app's own loop
    [request] = max_api.sent()
    assert request.body["text"].startswith(GARBAGE_ANSWER)
    assert request.query["chat_id"] == str(CHAT)
