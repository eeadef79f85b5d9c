"""The back-office API under a load of applications: list pages (with the overdue filter), one
application with its history, and status changes (each with its outbox message).

    .venv/bin/python scripts/bench/applications.py [--applications 5000] [--requests 200]
        [--db sqlite|postgresql|both]

In-process over ASGI (httpx), so the figures are the app's and the database's, not a
network's. Prints a table and writes bench-results/applications.json.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
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
from inbox.applications import application_number
from inbox.models import Application, Citizen, Conversation
from inbox.runtime import Runtime

SERVICES = ["lighting", "garbage", "roads", "yard", "heating"]
STATUSES = ["submitted", "in_progress", "info_needed", "done", "refused"]


def fill(rt: Runtime, count: int) -> list[str]:
    """``count`` applications over the last 60 days, each with its own citizen and dialogue."""
    now = rt.clock.now()
    numbers: list[str] = []
    with rt.factory() as session:
        for i in range(count):
            made = now - timedelta(minutes=17 * i)
            citizen = Citizen(display_name=f"Житель {i}", created_at=made)
            session.add(citizen)
            session.flush()
            conversation = Conversation(
                channel=["telegram", "vk", "webchat"][i % 3], thread_key=f"bench:{i}",
                citizen_id=citizen.id, kind="appeal", rule_id="appeal", opened_at=made,
                reply_target={"chat_id": i}, number=f"B-{i}",
            )  # fmt: skip
            session.add(conversation)
            session.flush()
            application = Application(
                citizen_id=citizen.id, conversation_id=conversation.id,
                service=SERVICES[i % len(SERVICES)], status=STATUSES[i % len(STATUSES)],
                fields={"address": "ул. Ленина, 5", "service_title": "Услуга"},
                created_at=made, updated_at=made,
            )  # fmt: skip
            session.add(application)
            session.flush()
            assert application.id is not None
            application.number = application_number(made.year, application.id)
            if application.status == "submitted":
                numbers.append(application.number)
        session.commit()
    return numbers


async def measure(rt: Runtime, numbers: list[str], requests: int) -> dict[str, Any]:
    names = ["list", "list overdue", "get one", "change"]
    async with timed_api(rt, ["applications:write"], names) as timed:
        for i in range(requests):
            await timed("list", "GET", f"/api/v1/applications?offset={(i * 50) % 1000}")
            await timed("list overdue", "GET", "/api/v1/applications?overdue=true&status=submitted")
            await timed("get one", "GET", f"/api/v1/applications/{numbers[i % len(numbers)]}")
            await timed(
                "change", "POST", f"/api/v1/applications/{numbers[i % len(numbers)]}/status",
                json={"status": "in_progress", "comment": "Взяли в работу."},
                headers={"Idempotency-Key": f"bench-{i}"},
            )  # fmt: skip
    return timed.figures()  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=200)
    add_db_option(parser)
    args = parser.parse_args()
    kinds = db_kinds(args.db)
    results: dict[str, Any] = {}
    rows = []
    for kind in kinds:
        clock = FrozenClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
        with database(kind) as url, bench_runtime(url, clock) as rt:
            numbers = fill(rt, args.applications)
            requests = min(args.requests, len(numbers))
            results[kind] = asyncio.run(measure(rt, numbers, requests))
        for name, figures in results[kind].items():
            rows.append([kind, name, figures["median_ms"], figures["p95_ms"], figures["n"]])
    print(f"{args.applications} applications")
    print(table(["db", "request", "median ms", "p95 ms", "n"], rows))
    path = write_result("applications", {"applications": args.applications, "results": results})
    print(f"written {path}")


if __name__ == "__main__":
    main()
