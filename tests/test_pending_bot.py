"""The citizen bot answers dialogues that ``Inbox.process_pending`` finished instead of the
webhook's processing executor (it was full, processing failed, the server stopped), once."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import col, select

from bot.citizen import texts
from bot.citizen.engine import LATE_AFTER
from bot.telegram.parse import parse_update
from bot.webchat import store
from bot.webchat.session import COOKIE, signed
from core.clock import FrozenClock
from inbox import workflow
from inbox.ingest import Finished
from inbox.models import Conversation, ConversationStatus, InboundRecord, Message, Operator
from inbox.runtime import Runtime
from inbox.web.processing import processing_executor
from otklik.web import create_app
from tests.helpers.citizen_harness import GARBAGE_ANSWER, TelegramChat, citizen_bot
from tests.helpers.payloads import payload
from tests.helpers.vk import vk_settings
from tests.helpers.vk_bot import PEER, bot_answers, say, vk_event


@contextmanager
def executor_full(app: FastAPI) -> Iterator[None]:
    """Take the worker and every queue slot of the app's processing executor, so webhooks
    leave their events in the journal (``left for process_pending``) until the block ends."""
    gate = threading.Event()
    executor = processing_executor(app)
    blockers: list[Future[bool]] = []
    while (job := executor.submit(gate.wait, 30)) is not None:
        blockers.append(job)
    assert blockers
    try:
        yield
    finally:
        gate.set()
        for job in blockers:
            job.result(30)


def pending(runtime: Runtime) -> list[InboundRecord]:
    with runtime.factory() as session:
        return list(
            session.exec(select(InboundRecord).where(col(InboundRecord.processed_at).is_(None)))
        )


def conversation_of(runtime: Runtime, thread_key: str) -> Conversation:
    with runtime.factory() as session:
        return session.exec(select(Conversation).where(Conversation.thread_key == thread_key)).one()


def answers_in(runtime: Runtime, conversation_id: int | None) -> list[Message]:
    return [m for m in bot_answers(runtime) if m.conversation_id == conversation_id]


@pytest.fixture
def vk_app(runtime: Runtime, clock: FrozenClock) -> FastAPI:
    rt = vk_settings(runtime)
    app = create_app(rt, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(rt, clock)
    return app


def test_vk_message_left_by_a_full_executor_is_answered_by_process_pending_once(
    vk_app: FastAPI, clock: FrozenClock
) -> None:
    rt: Runtime = vk_app.state.runtime
    with TestClient(vk_app) as client:
        with executor_full(vk_app):
            say(client, "Здравствуйте! Во дворе дома 5 мусор не вывозят уже три дня")
        assert len(pending(rt)) == 1
        assert bot_answers(rt) == []  # the webhook could not run the bot
        clock.advance(timedelta(minutes=1))  # the scheduler's next run
        assert rt.inbox.process_pending() == 1
        [answer] = bot_answers(rt)
        assert answer.text.startswith(GARBAGE_ANSWER)  # the webhook's own turn
        assert answer.reply_target == {"peer_id": PEER}
        assert answer.delivery_status == "queued"
        conversation = conversation_of(rt, f"vk:peer:{PEER}")
        assert conversation.status == ConversationStatus.bot.value
        assert rt.inbox.process_pending() == 0  # the next run: nothing left, no second answer
        assert len(bot_answers(rt)) == 1
        # the dialogue goes on through the webhook as usual
        say(client, "оператор")
    assert len(bot_answers(rt)) == 2
    assert rt.inbox.process_pending() == 0
    assert len(bot_answers(rt)) == 2


def test_comments_and_mentions_finished_by_process_pending_get_no_bot_answer(
    vk_app: FastAPI,
) -> None:
    rt: Runtime = vk_app.state.runtime
    with TestClient(vk_app) as client:
        with executor_full(vk_app):
            for name in ("wall_reply_new.json", "message_new.json"):
                answer = client.post("/webhooks/vk", json=vk_event(name))
                assert answer.status_code == 200 and answer.text == "ok"
        assert len(pending(rt)) == 2
        assert rt.inbox.process_pending() == 2
    with rt.factory() as session:
        comment = session.exec(
            select(Conversation).where(Conversation.is_public == True)  # noqa: E712
        ).one()  # the comment is an appeal, in the inbox with its clock...
    assert answers_in(rt, comment.id) == []  # ...that the bot does not answer
    [dm_answer] = bot_answers(rt)  # the private message in the same run was answered
    assert dm_answer.reply_target == {"peer_id": PEER}


async def test_telegram_private_message_is_answered_after_process_pending_a_mention_not(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = TelegramChat(runtime, clock)
    with executor_full(chat.app):
        for name in ("group_mention_entity.json", "private_message.json"):
            response = await chat.post(json.loads(payload("telegram", name)))
            assert response.status_code == 200
    assert len(pending(runtime)) == 2
    clock.advance(LATE_AFTER - timedelta(minutes=1))  # late, but not too late for the bot
    assert runtime.inbox.process_pending() == 2
    assert runtime.inbox.process_pending() == 0
    await chat.deliver()
    [sent] = chat.api.calls("sendMessage")
    assert sent.data["chat_id"] == "391234567"  # the private chat, not the group
    assert sent.data["text"].startswith(GARBAGE_ANSWER)
    mention = conversation_of(runtime, "tg:-1001777000000:user:404567890")
    assert answers_in(runtime, mention.id) == []


async def test_a_stale_message_is_handed_to_an_operator_not_answered(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = TelegramChat(runtime, clock)
    with executor_full(chat.app):
        await chat.say("когда вывезут мусор")
    clock.advance(timedelta(hours=3))  # the server was down
    assert runtime.inbox.process_pending() == 1
    await chat.deliver()
    [sent] = chat.api.calls("sendMessage")
    conversation = chat.conversation()
    assert sent.data["text"] == texts.HANDOFF_LATE.format(number=conversation.number)
    assert conversation.status == ConversationStatus.waiting_operator.value
    # the operator has it now: the citizen's next message waits for them, the bot is quiet
    await chat.say("когда вывезут мусор?")
    await chat.deliver()
    assert len(chat.api.calls("sendMessage")) == 1
    assert runtime.inbox.process_pending() == 0


def test_a_stale_message_to_an_operators_conversation_gets_nothing_from_the_bot(
    vk_app: FastAPI, clock: FrozenClock
) -> None:
    rt: Runtime = vk_app.state.runtime
    with TestClient(vk_app) as client:
        say(client, "Здравствуйте! Во дворе дома 5 мусор не вывозят уже три дня")
        assert len(bot_answers(rt)) == 1  # the bot answered through the webhook
        with rt.factory() as session:
            conversation = session.exec(select(Conversation)).one()
            anna = Operator(login="anna", display_name="Анна")
            session.add(anna)
            session.flush()
            workflow.assign(session, conversation, anna, clock.now())
            session.commit()
        with executor_full(vk_app):
            say(client, "И ещё: когда включат отопление?")
        clock.advance(timedelta(hours=3))
        assert rt.inbox.process_pending() == 1
    assert len(bot_answers(rt)) == 1  # nothing new: the operator answers
    conversation = conversation_of(rt, f"vk:peer:{PEER}")
    assert conversation.assignee_id is not None
    assert conversation.status == ConversationStatus.waiting_operator.value


def test_web_chat_message_journalled_before_a_crash_is_answered_at_start_up(
    runtime: Runtime, clock: FrozenClock
) -> None:
    session_id = "s" * 24
    event = store.inbound_event(session_id, clock.now(), text="мусор не вывозят", client_id="m1")
    assert not runtime.inbox.accept(event).duplicate  # then the server stopped
    app = create_app(runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    with TestClient(app) as client:  # the start-up runs process_pending
        assert pending(runtime) == []
        client.cookies.set(COOKIE, signed(runtime.settings.secret_key, session_id))
        messages = client.get("/api/chat/messages").json()
    assert [m["direction"] for m in messages] == ["in", "out"]
    assert messages[1]["text"].startswith(GARBAGE_ANSWER)
    assert runtime.inbox.process_pending() == 0
    assert len(bot_answers(runtime)) == 1


def test_a_failing_hook_does_not_stop_the_other_events(
    runtime: Runtime, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(runtime, start_scheduler=False)  # registers the bot for chat channels
    app.state.citizen_bot = citizen_bot(runtime, clock)
    failed: list[str] = []

    def broken(finished: Finished) -> None:
        failed.append(finished.event.external_id)
        raise RuntimeError("the hook broke")

    runtime.inbox.after_processing("telegram", broken)
    update = json.loads(payload("telegram", "private_message.json"))
    events = [
        store.inbound_event("a" * 24, clock.now(), text="мусор не вывозят", client_id="m1"),
        parse_update(update, runtime.profile, received_at=clock.now()),
        store.inbound_event("b" * 24, clock.now(), text="мусор не вывозят", client_id="m2"),
    ]
    for event in events:
        runtime.inbox.accept(event)
    with caplog.at_level(logging.ERROR):
        assert runtime.inbox.process_pending() == 3
    assert "the hook failed" in caplog.text
    assert failed == [events[1].external_id]
    assert pending(runtime) == []  # the event whose hook failed is processed all the same
    for session_id in ("a" * 24, "b" * 24):  # the events after it got their answer
        conversation = conversation_of(runtime, store.thread_key(session_id))
        [answer] = answers_in(runtime, conversation.id)
        assert answer.text.startswith(GARBAGE_ANSWER)
    assert runtime.inbox.process_pending() == 0
    assert failed == [events[1].external_id]  # a hook is not retried
