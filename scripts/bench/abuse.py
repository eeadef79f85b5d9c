"""Abuse from one address against a real server: a web-chat flood and a login flood, and what
operators feel meanwhile.

    .venv/bin/python scripts/bench/abuse.py [--duration 20] [--backends sqlite,postgresql]
        [--chat-rate 40] [--login-rate 20] [--source DIR]

Loopback only, bounded in time (``--duration`` seconds of flood, at most ``--max-requests``
per flood) and in requests. For each backend it makes a private database (``otklik db
upgrade``, ``otklik demo load``: the demo's operators and a morning of appeals), starts
``otklik serve`` with the default settings on a free loopback port, and then:

1. **idle**: the operator «anna» (logged in from 127.0.0.2) loads ``/ui/inbox`` at a fixed
   rate (``--inbox-rate``) for ``--duration`` seconds: p50/p99;
2. **flood**: from one address (127.0.0.10) and at the same time, open loop (arrivals do not
   wait for answers): web-chat POSTs without a cookie, each asking a new question
   (``--chat-rate`` per second; the issue's probe sent 500 in 15 s), and wrong-password
   logins (``--login-rate`` per second) at the supervisor «svetlana» and at made-up logins,
   each with the login form's CSRF token; «anna» keeps loading ``/ui/inbox`` as in 1.

It prints, per backend: web-chat conversations opened by the flooding address (and per
minute of flood), the answers the flood got, password checks (audit events
``login_failed`` + ``logged_in``) for «svetlana» and for the flooding address against their
limits (``OTKLIK_LOGIN_MAX_FAILURES`` 5, ``_IP_MAX_FAILURES`` 20), and ``/ui/inbox`` p50/p99
idle vs during the flood. ``--source DIR`` runs the server (and its ``db upgrade`` and
``demo load``) from another checkout, e.g. ``git worktree`` of an older commit, to compare
before and after with the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from common import ROOT, percentile, private_pg, table, write_result  # type: ignore[import-not-found]

from tests.helpers.loadgen import Server

OPERATOR = ("anna", "operator-demo")
TARGET = "svetlana"
OPERATOR_ADDRESS = "127.0.0.2"
FLOOD_ADDRESS = "127.0.0.10"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
QUESTIONS = [
    "Во дворе не вывозят мусор",
    "Когда включат отопление",
    "Яма на дороге у дома 5",
    "Не горит фонарь во дворе",
]


def otklik(source: Path, env: dict[str, str], *args: str) -> None:
    """Run an ``otklik`` command of the checkout ``source`` (its code, not this one's)."""
    subprocess.run(
        [sys.executable, "-m", "otklik.cli", *args],
        cwd=source, env={**os.environ, **env}, check=True, capture_output=True,
    )  # fmt: skip


async def fixed_rate(
    rate: float, duration: float, one: Callable[[int], Awaitable[str]], limit: int
) -> tuple[list[float], dict[str, int]]:
    """Call ``one(n)`` ``rate`` times a second for ``duration`` s (at most ``limit`` calls),
    whatever the answers' latency; latencies (ms) and outcome counts."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}

    async def timed(n: int) -> None:
        started = time.perf_counter()
        try:
            key = await one(n)
        except httpx.TransportError as exc:
            key = type(exc).__name__
        latencies.append((time.perf_counter() - started) * 1000)
        outcomes[key] = outcomes.get(key, 0) + 1

    tasks = []
    start = time.perf_counter()
    n = 0
    while (now := time.perf_counter() - start) < duration and n < limit:
        scheduled = n / rate
        if scheduled > now:
            await asyncio.sleep(scheduled - now)
        tasks.append(asyncio.create_task(timed(n)))
        n += 1
    await asyncio.gather(*tasks)
    return latencies, outcomes


def client(
    base: str, address: str, connections: int = 50, keep_cookies: bool = True
) -> httpx.AsyncClient:
    """A client from a loopback source address; without ``keep_cookies`` every request goes
    without a cookie (a jar that stores none), as a flooding script's would."""
    jar = CookieJar() if keep_cookies else CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(
        base_url=base,
        timeout=60,
        cookies=jar,
        transport=httpx.AsyncHTTPTransport(
            local_address=address,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        ),
    )


async def log_in(browser: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    form = await browser.get("/ui/login")
    token = CSRF.search(form.text)
    assert token, f"no login form: {form.status_code}"
    return await browser.post(
        "/ui/login", data={"login": login, "password": password, "csrf_token": token.group(1)}
    )


async def measure(
    base: str, args: argparse.Namespace, snapshot: Callable[[], dict[str, int]]
) -> dict[str, Any]:
    operator = client(base, OPERATOR_ADDRESS, connections=10)
    flooder = client(base, FLOOD_ADDRESS, connections=100)
    cookieless = client(base, FLOOD_ADDRESS, connections=100, keep_cookies=False)
    try:
        answer = await log_in(operator, *OPERATOR)
        assert answer.status_code == 303, f"operator login failed: {answer.status_code}"

        async def inbox(_: int) -> str:
            page = await operator.get("/ui/inbox")
            return str(page.status_code)

        await fixed_rate(args.inbox_rate, 2, inbox, 10**6)  # warm up
        idle, idle_status = await fixed_rate(args.inbox_rate, args.duration, inbox, 10**6)

        form = await flooder.get("/ui/login")  # one form: its token serves every try
        token = CSRF.search(form.text)
        assert token

        async def chat(n: int) -> str:
            text = f"{QUESTIONS[n % len(QUESTIONS)]} ({secrets.token_hex(3)})"
            sent = await cookieless.post("/api/chat/messages", json={"text": text})
            return str(sent.status_code)

        async def login(n: int) -> str:
            name = TARGET if n % 2 == 0 else f"guess{n}"
            tried = await flooder.post(
                "/ui/login",
                data={"login": name, "password": f"wrong-{n}", "csrf_token": token.group(1)},
            )
            return str(tried.status_code)

        before = await asyncio.to_thread(snapshot)
        flood = await asyncio.gather(
            fixed_rate(args.chat_rate, args.duration, chat, args.max_requests),
            fixed_rate(args.login_rate, args.duration, login, args.max_requests),
            fixed_rate(args.inbox_rate, args.duration, inbox, 10**6),
        )
    finally:
        await operator.aclose()
        await flooder.aclose()
        await cookieless.aclose()
    after = await asyncio.to_thread(snapshot)
    (_, chat_answers), (_, login_answers), (busy, busy_status) = flood
    return {
        **{key: after[key] - before[key] for key in after},
        "inbox_idle_p50_ms": round(percentile(idle, 50), 1),
        "inbox_idle_p99_ms": round(percentile(idle, 99), 1),
        "inbox_idle_answers": idle_status,
        "inbox_flood_p50_ms": round(percentile(busy, 50), 1),
        "inbox_flood_p99_ms": round(percentile(busy, 99), 1),
        "inbox_flood_answers": busy_status,
        "chat_answers": chat_answers,
        "login_answers": login_answers,
    }


def counts(url: str) -> dict[str, int]:
    """What is in the database now (plain SQL: works with any version's schema)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            chats = conn.execute(
                sa.text("SELECT count(*) FROM conversation WHERE channel = 'webchat'")
            ).scalar()
            events = conn.execute(
                sa.text("SELECT data FROM audit_event WHERE kind IN ('login_failed', 'logged_in')")
            ).all()
    finally:
        engine.dispose()
    datas = [d if isinstance(d, dict) else json.loads(d) for (d,) in events]
    return {
        "webchat_conversations": int(chats or 0),
        "password_checks": len(datas),
        "checks_target_login": sum(d.get("login") == TARGET for d in datas),
        "checks_flood_address": sum(d.get("ip") == FLOOD_ADDRESS for d in datas),
    }


def run(url: str, source: Path, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"OTKLIK_DATABASE_URL": url, "OTKLIK_DATA_DIR": data_dir,
               "OTKLIK_SECRET_KEY": secrets.token_urlsafe(32)}  # fmt: skip
        otklik(source, env, "db", "upgrade")
        otklik(source, env, "demo", "load")
        here = Path.cwd()
        os.chdir(source)  # the server runs the checkout's code (python -m from its folder)
        try:
            server = Server(env=env, log_path=log)
            server.start()
        finally:
            os.chdir(here)
        assert server.url.startswith("http://127.0.0.1:")  # loopback only
        try:
            result = asyncio.run(measure(server.url, args, lambda: counts(url)))
        finally:
            server.stop()
    per_minute = result["webchat_conversations"] / (args.duration / 60)
    return {**result, "conversations_per_minute": round(per_minute, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each phase")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--chat-rate", type=float, default=40.0, help="chat POSTs per second")
    parser.add_argument("--login-rate", type=float, default=20.0, help="logins per second")
    parser.add_argument("--inbox-rate", type=float, default=4.0, help="/ui/inbox per second")
    parser.add_argument("--max-requests", type=int, default=2000, help="per flood, at most")
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout to serve from")
    args = parser.parse_args()
    if args.duration > 120:
        parser.error("--duration is capped at 120 s (a bounded benchmark)")
    found: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        for backend in ("sqlite", "postgresql"):
            if backend not in args.backends:
                continue
            if backend == "sqlite":
                found[backend] = run(
                    f"sqlite:///{Path(tmp) / 'abuse.sqlite3'}", args.source, args, log
                )
            else:
                with private_pg(migrate=False) as url:
                    found[backend] = run(url, args.source, args, log)
    rows = [
        [backend, r["webchat_conversations"], r["conversations_per_minute"],
         " ".join(f"{k}:{v}" for k, v in sorted(r["chat_answers"].items())),
         f"{r['checks_target_login']} / 5", f"{r['checks_flood_address']} / 20",
         " ".join(f"{k}:{v}" for k, v in sorted(r["login_answers"].items())),
         f"{r['inbox_idle_p50_ms']} / {r['inbox_idle_p99_ms']}",
         f"{r['inbox_flood_p50_ms']} / {r['inbox_flood_p99_ms']}"]
        for backend, r in found.items()
    ]  # fmt: skip
    print(
        f"one address, {args.duration:.0f} s: chat {args.chat_rate:.0f}/s without cookies, "
        f"logins {args.login_rate:.0f}/s; /ui/inbox {args.inbox_rate:.0f}/s ({args.source})"
    )
    print(
        table(
            ["backend", "chats opened", "per min", "chat answers", "checks svetlana/limit",
             "checks address/limit", "login answers", "inbox idle p50/p99 ms",
             "inbox flood p50/p99 ms"],
            rows,
        )
    )  # fmt: skip
    path = write_result("abuse", {"args": {k: str(v) for k, v in vars(args).items()}, **found})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
