"""The database goes away under load and comes back: webhooks answer 5xx meanwhile (so the
platform repeats), and nothing acknowledged is lost.

The real server talks to PostgreSQL through a loopback TCP proxy; a third of the way through
a retrying webhook load the proxy is cut (listening socket and every open connection closed,
like a crashed database server), and restored a few seconds later. The connection pool must
then recover by itself (``pool_pre_ping``), with no restart.
(vkphone's ``test_database_down_is_not_ok_so_vk_sends_the_event_again`` proves the same
answer in-process, for SQLite too.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col, func, select

from core.config import Settings
from inbox.models import InboundRecord, Message
from inbox.runtime import build_runtime
from tests.helpers.crash import GROUP_ID, SECRET, vk_events
from tests.helpers.loadgen import (
    Delivery,
    Server,
    TcpProxy,
    deliver_all,
    free_port,
    wait_until_settled,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.parametrize("db_url", ["postgresql"], indirect=True),
]

EVENTS = 90
OUTAGE_SECONDS = 3.0


def test_database_outage_answers_5xx_and_loses_nothing(
    db_url: str,
    tmp_path: Path,
) -> None:
    real = sa.engine.make_url(db_url)
    proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432))
    proxy.restore()
    via_proxy = real.set(port=proxy.port, query={"connect_timeout": "2"})
    server = Server(
        env={
            "OTKLIK_DATABASE_URL": via_proxy.render_as_string(hide_password=False),
            "OTKLIK_DATA_DIR": str(tmp_path),
            "OTKLIK_VK_TOKEN": "token",
            "OTKLIK_VK_GROUP_ID": str(GROUP_ID),
            "OTKLIK_VK_CONFIRMATION": "confirm",
            "OTKLIK_VK_SECRET": SECRET,
            "OTKLIK_VK_API_URL": f"http://127.0.0.1:{free_port()}/method/",
            "OTKLIK_SLA_SCAN_INTERVAL": "1",  # also finishes events whose processing failed
        },
        log_path=tmp_path / "server.log",
    )
    server.start()
    health_during_outage: list[int] = []
    outage: list[asyncio.Task[None]] = []

    async def outage_for_a_while() -> None:
        proxy.cut()
        await asyncio.sleep(OUTAGE_SECONDS)
        async with httpx.AsyncClient(timeout=10) as client:
            health_during_outage.append((await client.get(f"{server.url}/healthz")).status_code)
        proxy.restore()

    def on_ack(acked: int) -> None:
        if acked == EVENTS // 3:
            outage.append(asyncio.get_running_loop().create_task(outage_for_a_while()))

    items = vk_events(EVENTS, start=2_000_000)

    async def run() -> Delivery:
        delivery = await deliver_all(
            items, lambda: f"{server.url}/webhooks/vk", concurrency=4, on_ack=on_ack
        )
        await asyncio.gather(*outage)
        return delivery

    try:
        delivery = asyncio.run(run())
        wait_until_settled(db_url)
    finally:
        server.stop()
        proxy.cut()

    assert health_during_outage == [503]
    assert delivery.retries_by_reason.get("503", 0) > 0, "the outage was answered with 503"
    assert not delivery.rejected
    acknowledged = delivery.acknowledged
    assert sorted(acknowledged) == sorted(e for e, _ in items)
    runtime = build_runtime(Settings(database_url=db_url))
    with runtime.factory() as session:
        journal = Counter(session.exec(select(InboundRecord.external_id)))
        unprocessed = session.exec(
            select(func.count()).where(col(InboundRecord.processed_at).is_(None))
        ).one()
        messages = Counter(
            session.exec(select(Message.external_id).where(Message.direction == "in"))
        )
    runtime.dispose()
    assert all(journal[e] == 1 and messages[e] == 1 for e in acknowledged)
    assert unprocessed == 0
