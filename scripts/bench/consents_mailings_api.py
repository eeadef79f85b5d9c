"""The back-office API for consents and mailings with many subscribers: a citizen's registry
with its history, recording and withdrawing a consent, subscribers per topic, the mailing
list, creating a draft (with the readability check) and one mailing's progress after it
was written to every subscriber.

    .venv/bin/python scripts/bench/consents_mailings_api.py [--subscribers 5000]
        [--requests 100] [--db sqlite|postgresql|both]

In-process over ASGI (httpx), so the figures are the app's and the database's, not a
network's. Prints a table and writes bench-results/consents_mailings_api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from common import percentile, private_pg, table, write_result  # type: ignore[import-not-found]

from core.clock import FrozenClock
from core.config import Settings
from inbox import api_tokens, mailings
from inbox.db import upgrade
from inbox.models import Citizen, Conversation
from inbox.runtime import Runtime, build_runtime
from otklik.web import create_app
from rules.proactive import proactive_rules

AREAS = ["central", "north", "south"]
TEXT = "Завтра с 9 до 17 часов на улице Ленина не будет воды."


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "postgresql":
        with private_pg() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        upgrade(url)
        yield url


def fill(rt: Runtime, count: int) -> list[int]:
    """``count`` citizens subscribed to planned outages (as the bot subscribes them)."""
    rules = proactive_rules(rt.settings.rules_dir)
    now = rt.clock.now()
    citizens: list[int] = []
    with rt.factory() as session:
        for i in range(count):
            citizen = Citizen(display_name=f"Житель {i}", created_at=now)
            session.add(citizen)
            session.flush()
            assert citizen.id is not None
            conversation = Conversation(
                channel="telegram", thread_key=f"tg:{i}", citizen_id=citizen.id, kind="appeal",
                rule_id="appeal", opened_at=now, status="closed", reply_target={"chat_id": i},
            )  # fmt: skip
            session.add(conversation)
            session.flush()
            mailings.subscribe(
                session, rules, conversation, "outages", AREAS[i % 3], "now", now,
                via="bot", by="citizen",
            )  # fmt: skip
            citizens.append(citizen.id)
            if i % 500 == 499:
                session.commit()
        session.commit()
    return citizens


async def measure(rt: Runtime, citizens: list[int], requests: int) -> dict[str, Any]:
    with rt.factory() as session:
        _, token = api_tokens.create(
            session, "bench", ["consents:write", "mailings:write"], rt.clock.now(), "bench"
        )
        session.commit()
    rt.settings.api_rate_burst = 10**9
    app = create_app(rt, start_scheduler=False)
    headers = {"Authorization": f"Bearer {token}"}
    names = ["registry", "record", "withdraw", "topics", "list", "create draft", "progress"]
    timings: dict[str, list[float]] = {name: [] for name in names}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def timed(name: str, method: str, url: str, **kwargs: Any) -> Any:
            start = time.perf_counter()
            answer = await client.request(method, url, headers=headers, **kwargs)
            timings[name].append((time.perf_counter() - start) * 1000)
            assert answer.status_code in (200, 201), answer.text
            return answer.json()

        first = await timed("create draft", "POST", "/api/v1/mailings",
                            json={"topic": "outages", "text": TEXT})  # fmt: skip
        await client.post(f"/api/v1/mailings/{first['id']}/schedule", headers=headers, json={})
        start = time.perf_counter()
        written = mailings.run_round(rt)
        write_ms = (time.perf_counter() - start) * 1000
        for i in range(requests):
            citizen = citizens[(i * 37) % len(citizens)]
            await timed("registry", "GET", f"/api/v1/consents?citizen_id={citizen}")
            made = await timed("record", "POST", "/api/v1/consents", json={
                "citizen_id": citizen, "scope_kind": "situation", "scope_id": "yard"})  # fmt: skip
            await timed("withdraw", "POST", f"/api/v1/consents/{made['consent']['id']}/withdraw",
                        json={"citizen_id": citizen})  # fmt: skip
            await timed("topics", "GET", "/api/v1/mailings/topics")
            await timed("list", "GET", "/api/v1/mailings")
            await timed("create draft", "POST", "/api/v1/mailings",
                        json={"topic": "outages", "area": "north", "text": TEXT})  # fmt: skip
            await timed("progress", "GET", f"/api/v1/mailings/{first['id']}")
    result: dict[str, Any] = {
        name: {"median_ms": percentile(v, 50), "p95_ms": percentile(v, 95), "n": len(v)}
        for name, v in timings.items()
    }
    result["worker writes the mailing"] = {"recipients": written, "ms": round(write_ms)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: dict[str, Any] = {}
    rows = []
    for kind in kinds:
        with database(kind) as url, tempfile.TemporaryDirectory() as data:
            clock = FrozenClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
            settings = Settings(
                database_url=url, data_dir=Path(data), secret_key="bench-secret-key" * 3
            )
            rt = build_runtime(settings, clock=clock)
            citizens = fill(rt, args.subscribers)
            results[kind] = asyncio.run(measure(rt, citizens, args.requests))
            rt.dispose()
        for name, figures in results[kind].items():
            if "median_ms" in figures:
                rows.append([kind, name, figures["median_ms"], figures["p95_ms"], figures["n"]])
        wrote = results[kind]["worker writes the mailing"]
        rows.append([kind, f"worker writes {wrote['recipients']} recipients", wrote["ms"], "", 1])
    print(f"{args.subscribers} subscribers")
    print(table(["db", "request", "median ms", "p95 ms", "n"], rows))
    path = write_result(
        "consents_mailings_api", {"subscribers": args.subscribers, "results": results}
    )
    print(f"written {path}")


if __name__ == "__main__":
    main()
