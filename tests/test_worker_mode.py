"""``OTKLIK_PROCESSING=worker`` channel by channel, with the worker's rounds run in-process.

The web chat, Telegram and VK only journal and answer; the worker's ``process_round`` then
processes the message and the citizen bot answers it, and its ``outbox_round`` delivers the
answer (the web chat's page collects it by polling). The phone robot still answers during
the call. Also: the default settings keep everything in one process, and
``process_pending`` leaves a thread whose turn another process holds to that process.
(Real ``otklik worker`` processes: ``tests/test_worker_process.py``.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import col, select

from bot.citizen import texts
from bot.normalize import normalize
from bot.phone.robot import Robot
from core.clock import FrozenClock
from core.config import Settings, get_settings
from core.events import Channel
from inbox import workflow
from inbox.ingest import Finished, thread_turn
from inbox.models import Conversation, InboundRecord, Message
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from otklik.freeze import freeze_startup
from otklik.web import create_app
from otklik.worker import Worker
from tests.helpers.citizen_harness import GARBAGE_ANSWER, TelegramChat, citizen_bot
from tests.helpers.phone import AGENCY, SECRET, call_event, post, small_kb
from tests.helpers.workload import native_events


def journal(runtime: Runtime) -> list[InboundRecord]:
    with runtime.factory() as session:
        return list(session.exec(select(InboundRecord).order_by(col(InboundRecord.id))))


def test_defaults_keep_everything_in_the_one_web_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROCESSING", "BACKGROUND", "PENDING_INTERVAL", "OUTBOX_INTERVAL"):
        monkeypatch.delenv(f"OTKLIK_{name}", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.processing, settings.background) == ("inline", "inline")
    assert (settings.pending_interval, settings.outbox_interval) == (1.0, 1.0)
    monkeypatch.setenv("OTKLIK_PROCESSING", "worker")
    monkeypatch.setenv("OTKLIK_BACKGROUND", "off")
    monkeypatch.setenv("OTKLIK_PENDING_INTERVAL", "0.5")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.processing, settings.background) == ("worker", "off")
    assert settings.pending_interval == 0.5
    monkeypatch.setenv("OTKLIK_PROCESSING", "threads")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_web_chat_in_worker_mode_gets_the_bots_answer_by_polling(
    runtime: Runtime, clock: FrozenClock
) -> None:
    runtime.settings.processing = "worker"
    bot = citizen_bot(runtime, clock)
    app = create_app(runtime, start_scheduler=False)
    with TestClient(app) as client:
        assert app.state.processing is None, "no processing executor in the web process"
        client.get("/chat")
        sent = client.post(
            "/api/chat/messages", json={"text": "Во дворе не вывозят мусор", "client_id": "w1"}
        )
        assert sent.status_code == 200 and sent.json() == {"ok": True}
        [record] = journal(runtime)
        assert record.processed_at is None
        assert client.get("/api/chat/messages").json() == []  # not processed yet
        worker = Worker(runtime, citizen_bot=bot)
        assert asyncio.run(worker.process_round()) is True
        mine, answer = client.get("/api/chat/messages").json()
    assert (mine["author"], mine["text"]) == ("Вы", "Во дворе не вывозят мусор")
    assert answer["author"] == "Бот" and answer["text"].startswith(GARBAGE_ANSWER)
    assert asyncio.run(worker.process_round()) is False, "processed once"
    with runtime.factory() as session:
        [out] = session.exec(select(Message).where(Message.direction == "out")).all()
        assert out.delivery_status == "sent" and out.external_id == "webchat"


async def test_telegram_in_worker_mode_is_answered_by_the_workers_outbox(
    runtime: Runtime, clock: FrozenClock
) -> None:
    runtime.settings.processing = "worker"
    chat = TelegramChat(runtime, clock)
    worker = Worker(runtime, telegram=chat.bot, citizen_bot=chat.app.state.citizen_bot)
    assert set(worker.outbox.senders) == {"telegram"}
    response = await chat.say("/start")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert [r.processed_at for r in journal(runtime)] == [None]
    assert chat.sent_texts() == []
    assert await worker.process_round() is True
    assert chat.sent_texts() == [], "the bot's answer waits in the outbox"
    assert await worker.outbox_round() is True
    assert chat.sent_texts() == [texts.GREETING]
    # A pressed button: its spinner is stopped by the web process at once, the answer
    # comes from the worker.
    await chat.press(texts.OPERATOR)
    [spinner] = chat.api.calls("answerCallbackQuery")
    assert "text" not in spinner.data
    await worker.process_round()
    await worker.outbox_round()
    conversation = chat.conversation()
    assert conversation.status == "waiting_operator"
    assert chat.sent_texts()[-1] == texts.HANDOFF_ASKED.format(number=conversation.number)
    assert await worker.outbox_round() is False, "nothing sent twice"


def test_phone_robot_still_answers_during_the_call_in_worker_mode(
    runtime: Runtime, clock: FrozenClock
) -> None:
    settings = runtime.settings.model_copy(update={"phone_secret": SECRET, "processing": "worker"})
    rt = dataclasses.replace(runtime, settings=settings)
    app = create_app(rt, start_scheduler=False)
    app.state.phone_robot = Robot(small_kb(), agency=AGENCY)
    with TestClient(app) as client:
        answer = post(client, clock, call_event("call_started.json")).json()
    assert answer["say"].startswith(f"Здравствуйте! Это {AGENCY}.")
    assert answer["conversation"]
    [record] = journal(rt)
    assert record.processed_at is not None, "the call's event is processed in the request"


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_thread_another_process_is_at_waits_and_then_goes_in_journal_order(
    runtime: Runtime,
) -> None:
    # VK messages from two citizens: a, b, a (tests/helpers/workload.py: odd numbers are VK).
    events = [
        normalize(Channel.vk, e.body, runtime.profile)
        for e in native_events(6, threads=4, start=0)
        if e.channel == Channel.vk
    ]
    first, other, second = events
    assert first.thread_key == second.thread_key != other.thread_key
    ids = [runtime.inbox.accept(e).record_id for e in events]
    with thread_turn(runtime.factory, "vk", first.thread_key) as mine:
        assert mine
        # Another process holds the first citizen's turn: only the other citizen's message.
        assert runtime.inbox.process_pending() == 1
        done = {r.id for r in journal(runtime) if r.processed_at is not None}
        assert done == {ids[1]}
    assert runtime.inbox.process_pending() == 2
    with runtime.factory() as session:
        inbound = session.exec(
            select(Message.external_id).where(Message.direction == "in").order_by(col(Message.id))
        ).all()
    assert inbound == [other.external_id, first.external_id, second.external_id]


def test_outbox_keeps_a_conversations_messages_in_order_across_workers(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """Worker A is sending the first of two replies of one conversation: worker B's claim
    takes the other conversation's reply but not the second one, until A recorded the first."""
    events = [
        normalize(Channel.vk, e.body, runtime.profile)
        for e in native_events(4, threads=4, start=0)
        if e.channel == Channel.vk
    ]
    conversations = []
    for event in events:
        _, processed = runtime.inbox.ingest(event)
        assert processed is not None and processed.conversation_id is not None
        conversations.append(processed.conversation_id)
    x, y = conversations
    with runtime.factory() as session:
        first, second, other = (
            workflow.queue_outbound(session, session.get_one(Conversation, cid), text, clock.now())
            for cid, text in ((x, "первый"), (x, "второй"), (y, "другой"))
        )
        session.commit()
    a = Outbox(runtime.factory, clock, {"vk": _never_called})
    b = Outbox(runtime.factory, clock, {"vk": _never_called})
    assert [m.id for m in a.claim(limit=1)] == [first.id]
    assert [m.id for m in b.claim()] == [other.id], "the second reply overtook the first"
    assert first.id is not None
    a._sent(first.id, "vk-1")
    assert [m.id for m in b.claim()] == [second.id]
    b._sent(other.id, "vk-2")  # type: ignore[arg-type]
    # One claim may hold several messages of a conversation: one worker sends them in order.
    with runtime.factory() as session:
        more = [
            workflow.queue_outbound(session, session.get_one(Conversation, y), t, clock.now())
            for t in ("ещё 1", "ещё 2")
        ]
        session.commit()
    assert [m.id for m in a.claim()] == [m.id for m in more]


async def _never_called(message: Message) -> str:
    raise AssertionError("claims only")


def test_a_hook_chosen_as_deadlock_victim_runs_again(runtime: Runtime) -> None:
    """PostgreSQL aborts one of two deadlocked transactions (the bot's turn against the SLA
    scan): the bot's turn, one transaction, is run again instead of the answer being lost."""

    class Deadlock(Exception):
        sqlstate = "40P01"

    calls: list[int] = []

    def hook(finished: Finished) -> None:
        calls.append(finished.processed.record_id)
        if len(calls) == 1:
            raise sa.exc.OperationalError("UPDATE sla_clock …", {}, Deadlock("deadlock detected"))

    runtime.inbox.after_processing("vk", hook)
    [native] = [e for e in native_events(2) if e.channel == Channel.vk]
    record_id = runtime.inbox.accept(normalize(Channel.vk, native.body, runtime.profile)).record_id
    assert runtime.inbox.process_pending() == 1
    assert calls == [record_id, record_id]


def test_worker_start_up_loads_the_kb_then_freezes_what_lives_as_long_as_the_process(
    runtime: Runtime,
) -> None:
    """``otklik worker`` loads the KB's index before ``gc.freeze`` (so the index, built once,
    is frozen too, not walked by every full collection), and a broken KB does not stop it."""
    assert runtime.kb.generation == 0
    try:
        freeze_startup(runtime)
        assert runtime.kb.generation == 1
        assert gc.get_freeze_count() > 0
        gc.unfreeze()

        def broken() -> None:
            raise RuntimeError("the KB cannot be read")

        runtime.kb.get = broken  # type: ignore[method-assign]
        freeze_startup(runtime)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_the_web_server_freezes_at_start_up_and_an_app_given_a_runtime_does_not(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The web process (``create_app()`` building its own runtime, as ``otklik serve`` does)
    freezes its start-up objects like the worker: its webhooks normalize every payload with
    aiogram's models, and full collections walking the imports tripled that cost. An app
    given a runtime (tests, many apps in one process) freezes nothing."""
    monkeypatch.setenv("OTKLIK_DATABASE_URL", runtime.engine.url.render_as_string(False))
    monkeypatch.setenv("OTKLIK_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    gc.unfreeze()
    try:
        with TestClient(create_app(runtime, start_scheduler=False)) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(start_scheduler=False)) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        get_settings.cache_clear()
