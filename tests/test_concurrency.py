"""Concurrent ingest: one citizen per identity, one conversation per thread, nothing lost."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlmodel import func, select

from bot.normalize import normalize
from core.events import Channel
from inbox.models import Citizen, Conversation, InboundRecord, Message
from inbox.runtime import Runtime
from tests.helpers.payloads import payload


def test_parallel_events_of_one_new_citizen(runtime: Runtime) -> None:
    base = normalize(Channel.vk, payload("vk", "wall_reply_new.json"), runtime.profile)
    events = []
    for n in range(16):
        # 8 threads (posts) x 2 messages each, all from the same new author
        events.append(
            base.model_copy(
                update={
                    "external_id": f"evt-{n}",
                    "thread_key": f"vk:wall-200000001_{n % 8}:from:1",
                }
            )
        )
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(runtime.inbox.ingest, events))
    assert all(processed is not None for _, processed in results)
    with runtime.factory() as session:
        assert session.exec(select(func.count()).select_from(InboundRecord)).one() == 16
        assert session.exec(select(func.count()).select_from(Message)).one() == 16
        assert session.exec(select(func.count()).select_from(Conversation)).one() == 8
        assert session.exec(select(func.count()).select_from(Citizen)).one() == 1


def test_the_same_event_from_parallel_retries_is_stored_once(runtime: Runtime) -> None:
    event = normalize(Channel.vk, payload("vk", "message_new.json"), runtime.profile)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(runtime.inbox.ingest, [event] * 8))
    assert sum(1 for accepted, _ in results if not accepted.duplicate) == 1
    assert len({accepted.record_id for accepted, _ in results}) == 1
    with runtime.factory() as session:
        assert session.exec(select(func.count()).select_from(Message)).one() == 1
