"""How long the phone robot takes to answer: signed webhook requests through the whole stack
(signature, journal, rules, knowledge base, readability, stored answer) on SQLite.

    .venv/bin/python scripts/bench_phone_webhook.py [calls]

Prints the median and the 95th percentile per event type. A voice platform waits for the
answer while the caller hears silence, so these should stay well under a second.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from bot.phone.signature import sign
from core.config import Settings
from inbox.db import upgrade
from inbox.runtime import build_runtime
from otklik.web import create_app

SECRET = "bench-secret"
QUESTIONS = [
    "у нас в доме нет горячей воды второй день",
    "когда вывезут старый диван",
    "яма на дороге у школы",
    "как оплатить квартиру без комиссии",
    "сколько стоит билет в цирк",
]


def post(client: TestClient, event: dict) -> float:
    body = json.dumps(event, ensure_ascii=False).encode()
    timestamp = int(time.time())
    headers = {
        "X-Otklik-Timestamp": str(timestamp),
        "X-Otklik-Signature": sign(SECRET, timestamp, body),
    }
    started = time.perf_counter()
    answer = client.post("/webhooks/phone", content=body, headers=headers)
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return elapsed


def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        upgrade(url)
        runtime = build_runtime(Settings(database_url=url, data_dir=Path(tmp), phone_secret=SECRET))
        timings: dict[str, list[float]] = {
            "call.started": [],
            "call.utterance": [],
            "call.dtmf": [],
        }
        with TestClient(create_app(runtime, start_scheduler=False)) as client:
            for n in range(calls):
                base = {"call_id": f"bench-{n}", "caller": f"+7916{n:07d}",
                        "timestamp": datetime.now(UTC).isoformat()}  # fmt: skip
                timings["call.started"].append(
                    post(client, {**base, "event_id": f"s{n}", "type": "call.started"})
                )
                timings["call.utterance"].append(post(client, {
                    **base, "event_id": f"u{n}", "type": "call.utterance",
                    "text": QUESTIONS[n % len(QUESTIONS)], "confidence": 0.9,
                }))  # fmt: skip
                timings["call.dtmf"].append(
                    post(client, {**base, "event_id": f"d{n}", "type": "call.dtmf", "digits": "0"})
                )
        runtime.dispose()
    for kind, values in timings.items():
        values.sort()
        p95 = values[max(0, int(len(values) * 0.95) - 1)]
        median = statistics.median(values) * 1000
        print(f"{kind:15} median {median:6.1f} ms   p95 {p95 * 1000:6.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
