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

``--workers 1,2`` (worker mode, PostgreSQL) also measures how the processing scales with
worker processes: for each count, a backlog of ``--backlog`` VK events is posted to the
webhook with no worker running, then that many ``otklik worker`` processes start together
and the rate is the events processed from the moment all of them are up to the last processed
mark (a worker up first starts meanwhile: its marks before that moment are counted apart, as
``before all up``), with the machine's busy cores and the workers' CPU per event over the
drain. No web load meanwhile. The rate series then run with that many workers.

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
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
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


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (``/proc/stat``, all cores)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain_rate(
    engine: sa.Engine, after_id: int, settle: float, pids: list[int], since: datetime
) -> dict[str, Any]:
    """Wait until the events after ``after_id`` are processed; events per second between
    ``since`` (every worker is up: one that was ready first has started meanwhile, so its
    marks before are left out) and the last processed mark. Also what the CPU did meanwhile:
    the machine's cores busy on average (everything on it: PostgreSQL, the workers, other
    users) and the workers' own CPU milliseconds per event."""
    pids = pids or []
    busy0, total0 = _machine_cpu()
    own0 = sum(_process_cpu(pid) for pid in pids)
    table_ = InboundRecord.__table__  # type: ignore[attr-defined]
    query = sa.select(
        sa.func.count(), sa.func.count(table_.c.processed_at),
        sa.func.max(table_.c.processed_at),
        sa.func.count().filter(table_.c.processed_at >= since),
    ).where(table_.c.id > after_id)  # fmt: skip
    deadline = time.monotonic() + settle
    while True:
        with engine.connect() as conn:
            total, done, last, measured = conn.execute(query).one()
        if done == total or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    busy1, total1 = _machine_cpu()
    own = sum(_process_cpu(pid) for pid in pids) - own0
    cores = os.cpu_count() or 1
    span = (as_utc(last) - since).total_seconds() if measured > 1 else float("nan")
    return {
        "backlog": total,
        "processed": done,
        "before_all_up": done - measured,
        "span_s": round(span, 2),
        "events_per_s": round(measured / span, 1) if span and span == span else None,
        "cores_busy": round(cores * (busy1 - busy0) / max(total1 - total0, 1e-9), 2),
        "worker_cpu_ms_per_event": round(1000 * own / measured, 1) if measured else None,
    }


def post_backlog(url: str, bodies: list[bytes]) -> None:
    async def post_all() -> None:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            gate = asyncio.Semaphore(16)

            async def one(body: bytes) -> None:
                async with gate:
                    answer = await client.post(
                        url, content=body, headers={"content-type": "application/json"}
                    )
                    answer.raise_for_status()

            await asyncio.gather(*(one(b) for b in bodies))

    asyncio.run(post_all())


def run_rates(
    url: str, mode: str, rates: list[float], duration: float, settle: float, log: Path,
    workers: int = 1, backlog: int = 0,
) -> list[dict[str, Any]]:  # fmt: skip
    results: list[dict[str, Any]] = []
    vk = FakeVkApi()
    vk.defaults["messages.send"] = 1
    vk.thread.start()
    engine = make_engine(url)
    with tempfile.TemporaryDirectory() as data_dir:
        env = _env(url, data_dir, vk.url, mode)
        server = Server(env=env, log_path=log)
        pool = [
            WorkerProcess(env=env, log_path=log.with_suffix(f".worker{i}.log"))
            for i in range(workers)
        ]
        server.start()
        try:
            if mode == "worker" and backlog:
                bodies = [
                    n.body
                    for n in native_events(backlog * 2, threads=500, start=50_000_000)
                    if n.channel.value == "vk"
                ][:backlog]
                before = _last_id(engine)
                post_backlog(f"{server.url}/webhooks/vk", bodies)
                with ThreadPoolExecutor(len(pool)) as starting:  # all at once, not in turn
                    list(starting.map(lambda w: w.start(), pool))
                ready = datetime.now(UTC)
                pids = [w.process.pid for w in pool if w.process is not None]
                results.append({"rate": "backlog", "workers": workers,
                                **drain_rate(engine, before, settle, pids, ready)})  # fmt: skip
            elif mode == "worker":
                for worker in pool:
                    worker.start()
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
                        "workers": workers if mode == "worker" else 0,
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
            for worker in pool:
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
        "--workers", default="1", help="worker processes in worker mode, e.g. 1,2 (PostgreSQL)"
    )
    parser.add_argument("--backlog", type=int, default=2000, help="events for --workers' rate")
    parser.add_argument(
        "--settle", type=float, default=90.0, help="longest wait for processing after a rate (s)"
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    found: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        for backend in ("sqlite", "postgresql"):
            if backend not in args.backends:
                continue
            for mode in modes:  # the modes of one backend back to back
                counts = worker_counts if mode == "worker" and backend == "postgresql" else [1]
                for workers in counts:
                    key = f"{backend}/{mode}" + (f"/{workers}w" if len(counts) > 1 else "")
                    if key in found:  # ``--workers 1,1``: each run kept, numbered
                        key += f" #{sum(k.split(' #')[0] == key for k in found) + 1}"
                    backlog = args.backlog if len(counts) > 1 else 0
                    started = time.strftime("%H:%M:%S", time.gmtime())
                    if backend == "sqlite":
                        url = f"sqlite:///{Path(tmp) / f'bench-{mode}.sqlite3'}"
                        upgrade(url)
                        found[key] = run_rates(
                            url, mode, rates, args.duration, args.settle, log, workers, backlog
                        )
                    else:
                        with private_pg() as url:
                            found[key] = run_rates(
                                url, mode, rates, args.duration, args.settle, log, workers,
                                backlog,
                            )  # fmt: skip
                    print(f"{key}: started {started} UTC", flush=True)
    rows = [
        [key, r["rate"], r["requests"], r["p50_ms"], r["p99_ms"], r["max_ms"],
         " ".join(f"{k}:{v}" for k, v in sorted(r["statuses"].items())),
         r["delay_p50_ms"], r["delay_p99_ms"], r["unprocessed_after_settle"],
         f"{r['load_1min_before']}-{r['load_1min_after']}"]
        for key, results in found.items()
        for r in results
        if r["rate"] != "backlog"
    ]  # fmt: skip
    drains = [
        [key, r["workers"], r["backlog"], r["processed"], r["before_all_up"], r["span_s"],
         r["events_per_s"],
         r["cores_busy"], r["worker_cpu_ms_per_event"]]
        for key, results in found.items()
        for r in results
        if r["rate"] == "backlog"
    ]  # fmt: skip
    if drains:
        print("processing a backlog with N worker processes")
        print(table(["backend/mode", "workers", "backlog", "processed", "before all up",
                     "span s", "events/s",
                     "cores busy", "worker CPU ms/event"], drains))  # fmt: skip
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
