"""Benchmark: how long one citizen-bot turn takes end to end (journal, rules, bot, outbox row).

Runs web chat turns against a fresh SQLite database with the real knowledge base and prints
the median and 95th percentile per turn. Usage: .venv/bin/python scripts/bench_citizen_bot.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from bot.citizen.engine import CitizenBot
from bot.webchat.store import inbound_event
from core.config import Settings
from inbox.db import upgrade
from inbox.runtime import build_runtime

QUESTIONS = [
    "Во дворе третий день не вывозят мусор",
    "Когда включат отопление?",
    "Как оплатить госпошлину?",
    "Можно ли выгуливать собаку на детской площадке?",
    "Как записаться к врачу?",
]


def main(turns: int = 200) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        upgrade(settings.effective_database_url)
        runtime = build_runtime(settings)
        started = time.perf_counter()
        bot = CitizenBot.from_settings(runtime.factory, runtime.clock, runtime.rules, settings)
        print(f"bot start (knowledge base load): {time.perf_counter() - started:.2f} s")
        timings: list[float] = []
        for n in range(turns):
            event = inbound_event(f"bench-session-{n % 20:04d}-xxxxxxxxxxxx", runtime.clock.now(),
                                  text=QUESTIONS[n % len(QUESTIONS)])  # fmt: skip
            t0 = time.perf_counter()
            _accepted, processed = runtime.inbox.ingest(event)
            bot.handle(processed, event)
            timings.append((time.perf_counter() - t0) * 1000)
        runtime.dispose()
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(f"{turns} turns: median {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms per turn")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
