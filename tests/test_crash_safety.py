"""kill -9 the real server under load: no acknowledged appeal is lost, none is stored twice,
no reply is sent twice.

The real ``otklik serve`` runs in a subprocess (file SQLite, then PostgreSQL) with the VK
channel on; its outbox sends to a loopback stand-in of VK's API that records every call. A
load generator posts VK Callback events and, like VK, repeats each until it gets a 2xx.
Meanwhile the server is killed with SIGKILL twice and started again. Afterwards:
every acknowledged event is in the journal exactly once and became exactly one message;
every queued reply reached VK, none twice (``random_id`` is VK's own duplicate guard, and
the outbox never re-sends a message it recorded as sent).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from bot.normalize import normalize
from bot.vk.sender import random_id
from core.config import Settings
from core.events import Channel
from inbox import workflow
from inbox.models import Conversation, InboundRecord, Message
from inbox.runtime import build_runtime
from tests.helpers.crash import GROUP_ID, SECRET, vk_events
from tests.helpers.loadgen import Server, deliver_all, wait_until_settled
from tests.helpers.vk_api_server import FakeVkApi

pytestmark = pytest.mark.slow

EVENTS = 150
REPLIES = 30


def queue_replies(db_url: str) -> list[int]:
    """REPLIES conversations, each with one reply waiting in the outbox."""
    runtime = build_runtime(Settings(database_url=db_url))
    ids = []
    for external_id, body in vk_events(REPLIES, start=5_000_000):
        event = normalize(Channel.vk, body, runtime.profile)
        _, processed = runtime.inbox.ingest(event)
        assert processed and processed.conversation_id, external_id
        with runtime.factory() as session:
            conversation = session.get(Conversation, processed.conversation_id)
            assert conversation
            message = workflow.reply(
                session, conversation, f"Ответ {external_id}", event.published_at
            )
            session.commit()
            assert message.id
            ids.append(message.id)
    runtime.dispose()
    return ids


def test_kill_9_under_load_loses_nothing_and_duplicates_nothing(
    db_url: str, tmp_path: Path
) -> None:
    replies = queue_replies(db_url)
    vk = FakeVkApi()
    vk.defaults["messages.send"] = 1
    vk.thread.start()
    server = Server(
        env={
            "OTKLIK_DATABASE_URL": db_url,
            "OTKLIK_DATA_DIR": str(tmp_path),
            "OTKLIK_VK_TOKEN": "token",
            "OTKLIK_VK_GROUP_ID": str(GROUP_ID),
            "OTKLIK_VK_CONFIRMATION": "confirm",
            "OTKLIK_VK_SECRET": SECRET,
            "OTKLIK_VK_API_URL": vk.url,
            "OTKLIK_OUTBOX_INTERVAL": "1",
            "OTKLIK_SLA_SCAN_INTERVAL": "1",
        },
        log_path=tmp_path / "server.log",
    )
    server.start()
    kill_at = {EVENTS // 3, 2 * EVENTS // 3}
    kills: list[asyncio.Task[None]] = []

    def crash_and_restart(acked: int) -> None:
        if acked in kill_at:
            kill_at.discard(acked)
            server.kill()
            kills.append(asyncio.get_running_loop().create_task(asyncio.to_thread(server.start)))

    items = vk_events(EVENTS, start=0)

    async def run() -> None:
        delivery = await deliver_all(
            items, lambda: f"{server.url}/webhooks/vk", concurrency=6, on_ack=crash_and_restart
        )
        await asyncio.gather(*kills)
        run.delivery = delivery  # type: ignore[attr-defined]

    try:
        asyncio.run(run())
        delivery = run.delivery  # type: ignore[attr-defined]
        wait_until_settled(db_url)
    finally:
        server.stop()
        vk.server.shutdown()
        vk.server.server_close()

    assert server.starts == 3, "the server was killed twice and restarted"
    assert not delivery.rejected
    assert sorted(delivery.acknowledged) == sorted(e for e, _ in items)
    assert sum(delivery.retries_by_reason.values()) > 0, "the kills were felt by the sender"

    runtime = build_runtime(Settings(database_url=db_url))
    with runtime.factory() as session:
        journal = Counter(
            session.exec(select(InboundRecord.external_id).where(InboundRecord.channel == "vk"))
        )
        unprocessed = session.exec(
            select(func.count()).where(col(InboundRecord.processed_at).is_(None))
        ).one()
        inbound = Counter(
            session.exec(select(Message.external_id).where(Message.direction == "in"))
        )
        outbound = {
            m.id: m for m in session.exec(select(Message).where(Message.direction == "out"))
        }
    runtime.dispose()
    for external_id in delivery.acknowledged:
        assert journal[external_id] == 1, (
            f"acknowledged {external_id} stored {journal[external_id]}x"
        )
        assert inbound[external_id] == 1, f"{external_id} became {inbound[external_id]} messages"
    assert unprocessed == 0

    # The citizen bot also answers some of the incoming VK messages, so VK sees more than the
    # queued replies. Every call must belong to a message stored before it was sent.
    by_random_id = {
        str(random_id(m.idempotency_key or f"otklik-message-{m.id}")): m.id
        for m in outbound.values()
    }
    sends = Counter(params["random_id"] for params in vk.calls("messages.send"))
    assert sends and max(sends.values()) == 1, "a reply reached VK twice"
    unknown = [r for r in sends if r not in by_random_id]
    assert not unknown, f"VK got messages that were never stored: {unknown}"
    sent_replies = {by_random_id[r] for r in sends} & set(replies)
    statuses = Counter(outbound[i].delivery_status for i in replies)
    # A kill between VK's answer and recording "sent" leaves the reply "sending" until its
    # lease (5 min) runs out; then it is offered again with the same random_id.
    assert set(statuses) <= {"sent", "sending"}, f"a reply was lost or failed: {statuses}"
    assert statuses["sent"] <= len(sent_replies) <= REPLIES
    for message_id in replies:
        if outbound[message_id].delivery_status == "sent":
            assert message_id in sent_replies, f"reply {message_id} is 'sent' but VK never got it"
    print(json.dumps({"retries": delivery.retries_by_reason, "attempts": delivery.attempts}))
