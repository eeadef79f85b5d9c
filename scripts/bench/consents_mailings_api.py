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
import time
from datetime import UTC, datetime
from typing import Any

from common import (  # type: ignore[import-not-found]
    add_db_option,
    bench_runtime,
    database,
    db_kinds,
    table,
    timed_api,
    write_result,
)

from core.clock import FrozenClock
from inbox import mailings
from inbox.models import Citizen, Conversation
from inbox.runtime import Runtime
from rules.proactive import proactive_rules

AREAS = ["central", "north", "south"]
TEXT = "Завтра с 9 до 17 часов на улице Ленина не будет воды."


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
    scopes = ["consents:write", "mailings:write"]
    names = ["registry", "record", "withdraw", "topics", "list", "create draft", "progress"]
    async with timed_api(rt, scopes, names) as timed:
        first = await timed("create draft", "POST", "/api/v1/mailings",
                            json={"topic": "outages", "text": TEXT})  # fmt: skip
        await timed.client.post(
            f"/api/v1/mailings/{first['id']}/schedule", headers=timed.headers, json={}
        )
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
    result: dict[str, Any] = timed.figures()
    result["worker writes the mailing"] = {"recipients": written, "ms": round(write_ms)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=100)
    add_db_option(parser)
    args = parser.parse_args()
    kinds = db_kinds(args.db)
    results: dict[str, Any] = {}
    rows = []
    for kind in kinds:
        clock = FrozenClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
        with (
            database(kind) as url,
            bench_runtime(url, clock, secret_key="bench-secret-key" * 3) as rt,
        ):
            citizens = fill(rt, args.subscribers)
            results[kind] = asyncio.run(measure(rt, citizens, args.requests))
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
