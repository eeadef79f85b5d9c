"""Webhook latency p50/p99 at fixed request rates, open loop, against the real server; and how
long after its acknowledgement each event is processed.

    .venv/bin/python scripts/bench/webhook.py [--rates 20,50,100] [--duration 10]
        [--backends sqlite,postgresql] [--modes inline,worker]

Starts ``otklik serve`` (uvicorn, one process) on a free loopback port with the VK channel
on, and posts VK Callback ``message_new`` events to ``/webhooks/vk`` at each fixed rate with
``tests.helpers.loadgen.open_loop`` (arrivals do not wait for answers, so queueing shows in the
latency). The endpoint journals the event (one commit) before answering ``ok``.

Modes (docs/deployment.md):

* ``inline`` (the default configuration): the rules and the citizen bot run after the
  answer on the app's processing executor, in the same process;
* ``worker``: ``otklik serve`` with ``OTKLIK_PROCESSING=worker OTKLIK_BACKGROUND=off`` only
  journals and answers; one ``otklik worker`` process processes the journal and sends.

Either way the bot's answers go to a loopback stand-in of VK's API. After each rate, the
benchmark waits (at most ``--settle`` seconds) until that rate's events are processed and
reports the delay from journal to processed (``processed_at - received_at``): in inline mode
events the executor had no room for wait for the minutely ``process_pending``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from common import percentile, private_pg, table, write_result  # type: ignore[import-not-found]

from core.clock import as_utc
from inbox.db import make_engine, upgrade
from inbox.models import InboundRecord
from tests.helpers.loadgen import Server, WorkerProcess, open_loop
from tests.helpers.vk_api_server import FakeVkApi
from tests.helpers.workload import native_events

GROUP_ID = 200000001
SECRET = "s3cr3t-callback"
MODES = {
    "inline": {},
    "worker": {"OTKLIK_PROCESSING": "worker", "OTKLIK_BACKGROUND": "off"},
}


def _env(url: str, data_dir: str, vk_url: str, mode: str) -> dict[str, str]:
    return {
        "OTKLIK_DATABASE_URL": url,
        "OTKLIK_DATA_DIR": data_dir,
        "OTKLIK_VK_TOKEN": "token",
        "OTKLIK_VK_GROUP_ID": str(GROUP_ID),
        "OTKLIK_VK_CONFIRMATION": "confirm",
        "OTKLIK_VK_SECRET": SECRET,
        "OTKLIK_VK_API_URL": vk_url,
        "OTKLIK_RATE_LIMIT_WEBHOOKS_PER_SECOND": "100000",
        "OTKLIK_RATE_LIMIT_WEBHOOKS_BURST": "100000",
        **MODES[mode],
    }


def _last_id(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(InboundRecord.id))).scalar() or 0)


def processing_delays(engine: sa.Engine, after_id: int, settle: float) -> dict[str, Any]:
    """Wait until the events journalled after ``after_id`` are processed (at most ``settle``
    seconds); their journal-to-processed delays."""
    table_ = InboundRecord.__table__  # type: ignore[attr-defined]
    query = sa.select(table_.c.received_at, table_.c.processed_at).where(table_.c.id > after_id)
    deadline = time.monotonic() + settle
    started = time.monotonic()
    while True:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        pending = sum(processed is None for _, processed in rows)
        if pending == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    delays = [
        (as_utc(processed) - as_utc(received)).total_seconds() * 1000
        for received, processed in rows
        if processed is not None
    ]
    return {
        "events": len(rows),
        "unprocessed_after_settle": pending,
        "settle_wait_s": round(time.monotonic() - started, 1),
        "delay_p50_ms": round(percentile(delays, 50), 1),
        "delay_p99_ms": round(percentile(delays, 99), 1),
        "delay_max_ms": round(max(delays), 1) if delays else None,
    }


def run_rates(
    url: str, mode: str, rates: list[float], duration: float, settle: float, log: Path
) -> list[dict[str, Any]]:
    results = []
    vk = FakeVkApi()
    vk.defaults["messages.send"] = 1
    vk.thread.start()
    engine = make_engine(url)
    with tempfile.TemporaryDirectory() as data_dir:
        env = _env(url, data_dir, vk.url, mode)
        server = Server(env=env, log_path=log)
        worker = WorkerProcess(env=env, log_path=log.with_suffix(".worker.log"))
        server.start()
        if mode == "worker":
            worker.start()
        try:
            warm = [n.body for n in native_events(40, start=90_000_000) if n.channel.value == "vk"]
            for body in warm:  # first requests import and compile what later ones reuse
                httpx.post(f"{server.url}/webhooks/vk", content=body, timeout=30)
            processing_delays(engine, 0, settle)
            offset = 0
            for rate in rates:
                count = int(rate * duration) + 1
                bodies = [
                    n.body
                    for n in native_events(count * 2, threads=500, start=offset)
                    if n.channel.value == "vk"
                ]
                offset += count * 2
                before = _last_id(engine)
                load = os.getloadavg()[0]
                latencies, statuses = asyncio.run(
                    open_loop(
                        rate,
                        duration,
                        f"{server.url}/webhooks/vk",
                        lambda i, b=bodies: b[i % len(b)],  # type: ignore[misc]
                        {"content-type": "application/json"},
                    )
                )
                results.append(
                    {
                        "rate": rate,
                        "requests": len(latencies),
                        "p50_ms": round(percentile(latencies, 50), 1),
                        "p99_ms": round(percentile(latencies, 99), 1),
                        "max_ms": round(max(latencies), 1),
                        "statuses": statuses,
                        "load_1min_before": round(load, 2),
                        "load_1min_after": round(os.getloadavg()[0], 2),
                        **processing_delays(engine, before, settle),
                    }
                )
        finally:
            worker.stop()
            server.stop()
            engine.dispose()
            vk.server.shutdown()
            vk.server.server_close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="20,50,100")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--modes", default="inline", help="inline, worker or both")
    parser.add_argument(
        "--settle", type=float, default=90.0, help="longest wait for processing after a rate (s)"
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    found: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        for backend in ("sqlite", "postgresql"):
            if backend not in args.backends:
                continue
            for mode in modes:  # the modes of one backend back to back
                key = f"{backend}/{mode}"
                started = time.strftime("%H:%M:%S", time.gmtime())
                if backend == "sqlite":
                    url = f"sqlite:///{Path(tmp) / f'bench-{mode}.sqlite3'}"
                    upgrade(url)
                    found[key] = run_rates(url, mode, rates, args.duration, args.settle, log)
                else:
                    with private_pg() as url:
                        found[key] = run_rates(url, mode, rates, args.duration, args.settle, log)
                print(f"{key}: started {started} UTC", flush=True)
    rows = [
        [key, r["rate"], r["requests"], r["p50_ms"], r["p99_ms"], r["max_ms"],
         " ".join(f"{k}:{v}" for k, v in sorted(r["statuses"].items())),
         r["delay_p50_ms"], r["delay_p99_ms"], r["unprocessed_after_settle"],
         f"{r['load_1min_before']}-{r['load_1min_after']}"]
        for key, results in found.items()
        for r in results
    ]  # fmt: skip
    print(f"webhook /webhooks/vk, open loop, {args.duration} s per rate")
    print(
        table(
            ["backend/mode", "req/s", "sent", "p50 ms", "p99 ms", "max ms", "answers",
             "proc p50 ms", "proc p99 ms", "unproc", "load"],
            rows,
        )
    )  # fmt: skip
    path = write_result("webhook", {"duration_s": args.duration, "results": found})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
