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
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from common import percentile, private_pg, table, write_result  # type: ignore[import-not-found]

from core.clock import FrozenClock
from core.config import Settings
from inbox import api_tokens
from inbox.applications import application_number
from inbox.db import upgrade
from inbox.models import Application, Citizen, Conversation
from inbox.runtime import Runtime, build_runtime
from otklik.web import create_app

SERVICES = ["lighting", "garbage", "roads", "yard", "heating"]
STATUSES = ["submitted", "in_progress", "info_needed", "done", "refused"]


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
    with rt.factory() as session:
        _, token = api_tokens.create(
            session, "bench", ["applications:write"], rt.clock.now(), "bench"
        )
        session.commit()
    rt.settings.api_rate_burst = 10**9
    app = create_app(rt, start_scheduler=False)
    headers = {"Authorization": f"Bearer {token}"}
    timings: dict[str, list[float]] = {"list": [], "list overdue": [], "get one": [], "change": []}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def timed(name: str, method: str, url: str, **kwargs: Any) -> None:
            start = time.perf_counter()
            answer = await client.request(
                method, url, headers=headers | kwargs.pop("h", {}), **kwargs
            )
            timings[name].append((time.perf_counter() - start) * 1000)
            assert answer.status_code in (200, 201), answer.text

        for i in range(requests):
            await timed("list", "GET", f"/api/v1/applications?offset={(i * 50) % 1000}")
            await timed("list overdue", "GET", "/api/v1/applications?overdue=true&status=submitted")
            await timed("get one", "GET", f"/api/v1/applications/{numbers[i % len(numbers)]}")
            await timed(
                "change", "POST", f"/api/v1/applications/{numbers[i % len(numbers)]}/status",
                json={"status": "in_progress", "comment": "Взяли в работу."},
                h={"Idempotency-Key": f"bench-{i}"},
            )  # fmt: skip
    return {
        name: {"median_ms": percentile(v, 50), "p95_ms": percentile(v, 95), "n": len(v)}
        for name, v in timings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: dict[str, Any] = {}
    rows = []
    for kind in kinds:
        with database(kind) as url, tempfile.TemporaryDirectory() as data:
            clock = FrozenClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
            rt = build_runtime(Settings(database_url=url, data_dir=Path(data)), clock=clock)
            numbers = fill(rt, args.applications)
            requests = min(args.requests, len(numbers))
            results[kind] = asyncio.run(measure(rt, numbers, requests))
            rt.dispose()
        for name, figures in results[kind].items():
            rows.append([kind, name, figures["median_ms"], figures["p95_ms"], figures["n"]])
    print(f"{args.applications} applications")
    print(table(["db", "request", "median ms", "p95 ms", "n"], rows))
    path = write_result("applications", {"applications": args.applications, "results": results})
    print(f"written {path}")


if __name__ == "__main__":
    main()
