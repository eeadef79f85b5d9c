"""kill -9 the real ``otklik worker`` while it sends a MAX reply: nothing lost, nothing twice.

The bot's answers to eight citizens are queued in the outbox. The worker sends them to the
loopback MAX stand-in, which stores the third and never answers it; the worker is killed with
SIGKILL right then (MAX has the message, Otklik does not know). A new worker finishes the job:
after the outbox lease the third reply is offered again, found among the bot's messages in the
chat (``GET /messages``) and recorded as sent, not sent again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlmodel import select

from bot.normalize import normalize
from core.clock import SystemClock
from core.config import Settings
from core.events import Channel
from inbox.models import Message
from inbox.runtime import build_runtime
from tests.helpers.citizen_harness import citizen_bot
from tests.helpers.loadgen import WorkerProcess
from tests.helpers.max_api_server import TOKEN, FakeMaxApi
from tests.helpers.payloads import payload

CITIZENS = 8


def queue_answers(db_url: str, tmp_path: Path) -> None:
    """Eight dialogs processed, and the citizen bot's answers queued (not sent)."""
    runtime = build_runtime(Settings(database_url=db_url, data_dir=tmp_path))
    bot = citizen_bot(runtime, SystemClock())  # type: ignore[arg-type]
    try:
        for n in range(CITIZENS):
            update = json.loads(payload("max", "dialog_message.json"))
            update["message"]["recipient"]["chat_id"] = 3000 + n
            update["message"]["sender"]["user_id"] = 7000 + n
            update["message"]["body"]["mid"] = f"mid.crash{n:027d}"
            event = normalize(Channel.max, json.dumps(update).encode(), runtime.profile)
            _, processed = runtime.inbox.ingest(event)
            assert bot.handle(processed, event)
    finally:
        runtime.dispose()


def outbound(db_url: str) -> list[Message]:
    runtime = build_runtime(Settings(database_url=db_url))
    try:
        with runtime.factory() as session:
            return list(session.exec(select(Message).where(Message.direction == "out")).all())
    finally:
        runtime.dispose()


@pytest.mark.slow
def test_kill_9_mid_send_loses_and_duplicates_nothing(db_url: str, tmp_path: Path) -> None:
    queue_answers(db_url, tmp_path)
    api = FakeMaxApi().start()
    api.hang_at = 3
    worker = WorkerProcess(
        env={
            "OTKLIK_DATABASE_URL": db_url,
            "OTKLIK_DATA_DIR": str(tmp_path),
            "OTKLIK_MAX_TOKEN": TOKEN,
            "OTKLIK_MAX_WEBHOOK_SECRET": "max-webhook-secret-41b7",
            "OTKLIK_MAX_API_URL": api.url,
            "OTKLIK_OUTBOX_LEASE": "2",
            "OTKLIK_OUTBOX_INTERVAL": "0.2",
        },
        log_path=tmp_path / "worker.log",
    )
    try:
        worker.start()
        assert api.hanging.wait(60), "the worker never sent the third reply"
        worker.kill()  # MAX stored the third reply; the worker never recorded it
        api.released.set()
        assert len(api.sent()) == 3
        worker.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if all(m.delivery_status == "sent" for m in outbound(db_url)):
                break
            time.sleep(0.5)
        worker.stop()
    finally:
        worker.kill()
        api.stop()
    replies = outbound(db_url)
    assert len(replies) == CITIZENS
    assert all(m.delivery_status == "sent" for m in replies), (tmp_path / "worker.log").read_text()
    stored = [m for chat in api.chats.values() for m in chat]
    assert len(stored) == CITIZENS, "each reply reached MAX exactly once"
    assert sorted(len(chat) for chat in api.chats.values()) == [1] * CITIZENS
    assert {m.external_id for m in replies} == {m["body"]["mid"] for m in stored}
    assert api.calls("GET /messages"), "the re-offered reply was looked for before sending"
    assert len(api.sent()) == CITIZENS
