"""Webhook latency p50/p99 at fixed request rates, open loop, against the real server.

    .venv/bin/python scripts/bench/webhook.py [--rates 20,50,100] [--duration 10] [--backends ..]

Starts ``otklik serve`` (uvicorn, one process) on a free loopback port with the VK channel
on, and posts VK Callback ``message_new`` events to ``/webhooks/vk`` at each fixed rate with
``tests.loadgen.open_loop`` (arrivals do not wait for answers, so queueing shows in the
latency). The endpoint journals the event (one commit) before answering ``ok``; the rules run
after the answer on the app's processing executor (``inbox/web/processing.py``), in the same
process, and compete for the same two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx
from common import percentile, private_pg, table, write_result  # type: ignore[import-not-found]

from inbox.db import upgrade
from tests.loadgen import Server, free_port, open_loop
from tests.workload import native_events

GROUP_ID = 200000001
SECRET = "s3cr3t-callback"


def _env(url: str, data_dir: str) -> dict[str, str]:
    return {
        "OTKLIK_DATABASE_URL": url,
        "OTKLIK_DATA_DIR": data_dir,
        "OTKLIK_VK_TOKEN": "token",
        "OTKLIK_VK_GROUP_ID": str(GROUP_ID),
        "OTKLIK_VK_CONFIRMATION": "confirm",
        "OTKLIK_VK_SECRET": SECRET,
        "OTKLIK_VK_API_URL": f"http://127.0.0.1:{free_port()}/method/",
        "OTKLIK_RATE_LIMIT_WEBHOOKS_PER_SECOND": "100000",
        "OTKLIK_RATE_LIMIT_WEBHOOKS_BURST": "100000",
    }


def run_rates(url: str, rates: list[float], duration: float, log: Path) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as data_dir:
        server = Server(env=_env(url, data_dir), log_path=log)
        server.start()
        try:
            warm = [n.body for n in native_events(40, start=90_000_000) if n.channel.value == "vk"]
            for body in warm:  # first requests import and compile what later ones reuse
                httpx.post(f"{server.url}/webhooks/vk", content=body, timeout=30)
            offset = 0
            for rate in rates:
                count = int(rate * duration) + 1
                bodies = [
                    n.body
                    for n in native_events(count * 2, threads=500, start=offset)
                    if n.channel.value == "vk"
                ]
                offset += count * 2
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
                    }
                )
        finally:
            server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="20,50,100")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    found: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        if "sqlite" in args.backends:
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
            upgrade(url)
            found["sqlite"] = run_rates(url, rates, args.duration, log)
        if "postgresql" in args.backends:
            with private_pg() as url:
                found["postgresql"] = run_rates(url, rates, args.duration, log)
    rows = [
        [backend, r["rate"], r["requests"], r["p50_ms"], r["p99_ms"], r["max_ms"],
         " ".join(f"{k}:{v}" for k, v in sorted(r["statuses"].items()))]
        for backend, results in found.items()
        for r in results
    ]  # fmt: skip
    print(f"webhook /webhooks/vk, open loop, {args.duration} s per rate")
    print(table(["backend", "req/s", "sent", "p50 ms", "p99 ms", "max ms", "answers"], rows))
    path = write_result("webhook", {"duration_s": args.duration, "results": found})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
