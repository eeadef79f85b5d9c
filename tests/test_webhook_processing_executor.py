"""Webhook processing runs on the app's own bounded executor, after the answer, exactly once."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import anyio.to_thread
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from inbox.models import InboundRecord, Message
from inbox.runtime import Runtime
from inbox.web.processing import processing_executor
from otklik.web import create_app
from tests.helpers.vk import event, journal, vk_settings


class GatedProcessing:
    """``Inbox.process`` as it is, but each call first waits until ``gate`` is set."""

    def __init__(self, runtime: Runtime) -> None:
        self.process = runtime.inbox.process
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.done: list[int] = []

    def __call__(self, record_id: int) -> Any:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        result = self.process(record_id)
        if result is not None:
            self.done.append(record_id)
        return result


def _messages(runtime: Runtime) -> list[Message]:
    """The citizens' messages (the citizen bot may have queued answers beside them)."""
    with runtime.factory() as session:
        return list(session.exec(select(Message).where(Message.direction == "in")))


def _record(runtime: Runtime) -> InboundRecord:
    [record] = journal(runtime)
    return record


def _peek_journal(runtime: Runtime) -> list[tuple[str, object]]:
    """The journal's (external id, processed_at) through a plain connection: the app's own
    SQLite sessions begin with BEGIN IMMEDIATE and would wait for the blocked processing."""
    engine = sa.create_engine(runtime.engine.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT external_id, processed_at FROM inbound_event"))
            return [(row[0], row[1]) for row in rows]
    finally:
        engine.dispose()


async def _post(app: Any, data: dict[str, Any]) -> tuple[asyncio.Task[None], asyncio.Event, list]:
    """Start one raw ASGI request; the event is set once the answer is complete (the call
    itself goes on until the processing it waits for after the answer has ended)."""
    body = json.dumps(data).encode()
    sent: list[dict[str, Any]] = []
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/webhooks/vk", "raw_path": b"/webhooks/vk",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "headers": [(b"content-type", b"application/json"), (b"host", b"otklik")],
    }  # fmt: skip
    return asyncio.create_task(app(scope, receive, send)), answered, sent


async def test_blocked_processing_holds_up_neither_the_answer_nor_the_next_journal_commit(
    runtime: Runtime,
) -> None:
    rt = vk_settings(runtime)
    gated = GatedProcessing(rt)
    rt.inbox.process = gated  # type: ignore[method-assign]
    app = create_app(rt, start_scheduler=False)
    # One thread for the request path (journal commits): processing that ran there, as it once
    # did, would take it and the second webhook could not be journalled until it ended.
    limiter = anyio.to_thread.current_default_thread_limiter()
    tokens, limiter.total_tokens = limiter.total_tokens, 1
    try:
        async with app.router.lifespan_context(app):
            first, first_answered, first_sent = await _post(app, event("message_new.json"))
            try:
                await asyncio.wait_for(first_answered.wait(), 30)
                assert await asyncio.to_thread(gated.entered.wait, 30)  # processing blocked
                second, second_answered, second_sent = await _post(
                    app, event("message_new.json", event_id="second-event")
                )
                await asyncio.wait_for(second_answered.wait(), 30)
                for sent in (first_sent, second_sent):
                    assert sent[0]["status"] == 200 and sent[-1]["body"] == b"ok"
                peek = await asyncio.to_thread(_peek_journal, rt)
                assert sorted(e for e, _ in peek) == sorted(
                    ["0c5c3bbd5d7e1bb8a5e6f6c1b6e2f8d1c3a4b5c6", "second-event"]
                )  # both journalled...
                assert [p for _, p in peek] == [None, None]  # ...neither processed yet
                assert not first.done()
            finally:
                gated.gate.set()
            await asyncio.wait_for(asyncio.gather(first, second), 30)
    finally:
        limiter.total_tokens = tokens
    assert all(record.processed_at is not None for record in journal(rt))
    assert sorted(gated.done) == [1, 2]  # each processed once
    assert len(_messages(rt)) == 2
    assert rt.inbox.process_pending() == 0
    assert len(_messages(rt)) == 2


def test_full_executor_leaves_the_event_journalled_for_process_pending(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    rt = vk_settings(runtime)
    gate = threading.Event()
    with TestClient(create_app(rt, start_scheduler=False)) as client:
        executor = processing_executor(client.app)  # type: ignore[arg-type]
        blockers = []
        while (job := executor.submit(gate.wait, 30)) is not None:
            blockers.append(job)
        assert blockers  # the worker and every queue slot are taken
        try:
            with caplog.at_level(logging.WARNING):
                answer = client.post("/webhooks/vk", json=event("message_new.json"))
            assert answer.status_code == 200 and answer.text == "ok"
            assert "left for process_pending" in caplog.text
            assert _record(rt).processed_at is None
            assert _messages(rt) == []
        finally:
            gate.set()
        for job in blockers:
            job.result(30)
        assert executor.submit(gate.wait, 0) is not None  # slots come back when jobs end
    assert rt.inbox.process_pending() == 1  # the scheduler's job finishes it
    assert _record(rt).processed_at is not None
    assert len(_messages(rt)) == 1
    assert rt.inbox.process_pending() == 0
