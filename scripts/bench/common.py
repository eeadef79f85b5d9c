"""Shared bits of the benchmarks: the machine description, private databases and runtimes on
them, timed requests to the app over ASGI, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from core.clock import Clock  # noqa: E402
from core.config import Settings  # noqa: E402
from inbox.db import upgrade  # noqa: E402
from inbox.runtime import Runtime, build_runtime  # noqa: E402

PG_URL = os.environ.get("OTKLIK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RESULTS = ROOT / "bench-results"


def machine() -> dict[str, Any]:
    """What the figures were measured on (they mean little without it)."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "0",
    )
    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "mem_gib": round(int(mem) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sa.__version__ and __import__("sqlite3").sqlite_version,
        "sqlalchemy": sa.__version__,
        "postgresql": _pg_version(),
        "load_avg": os.getloadavg(),
    }


def _pg_version() -> str | None:
    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar()
        engine.dispose()
        return str(version)
    except sa.exc.SQLAlchemyError:
        return None


@contextmanager
def private_pg(migrate: bool = True) -> Iterator[str]:
    """A uniquely named PostgreSQL database, dropped afterwards."""
    name = f"otklik_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")


def db_kinds(choice: str) -> list[str]:
    """The databases ``--db`` names, in the order they run."""
    return ["sqlite", "postgresql"] if choice == "both" else [choice]


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A migrated, empty database of ``kind`` (a temporary SQLite file or a private PostgreSQL
    database), removed afterwards."""
    if kind == "postgresql":
        with private_pg() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        upgrade(url)
        yield url


@contextmanager
def bench_runtime(url: str, clock: Clock, **settings: Any) -> Iterator[Runtime]:
    """A runtime on the migrated database ``url`` with a temporary data folder."""
    with tempfile.TemporaryDirectory() as data:
        runtime = build_runtime(
            Settings(database_url=url, data_dir=Path(data), **settings), clock=clock
        )
        try:
            yield runtime
        finally:
            runtime.dispose()


class Timed:
    """Requests to the app with an API token, each timed under a name (it must succeed)."""

    def __init__(self, client: Any, token: str, names: list[str]) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.timings: dict[str, list[float]] = {name: [] for name in names}

    async def __call__(
        self, name: str, method: str, url: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        """The answer's JSON."""
        start = time.perf_counter()
        answer = await self.client.request(
            method, url, headers=self.headers | (headers or {}), **kw
        )
        self.timings[name].append((time.perf_counter() - start) * 1000)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def figures(self) -> dict[str, Any]:
        """Median, 95th percentile and count of each name's milliseconds."""
        return {
            name: {"median_ms": percentile(v, 50), "p95_ms": percentile(v, 95), "n": len(v)}
            for name, v in self.timings.items()
        }


@asynccontextmanager
async def timed_api(rt: Runtime, scopes: list[str], names: list[str]) -> AsyncIterator[Timed]:
    """The app in-process over ASGI (the figures are the app's and the database's, not a
    network's), with a token of ``scopes`` and no rate limit in the way."""
    import httpx  # here: the other benchmarks need neither httpx nor the web app

    from inbox import api_tokens
    from otklik.web import create_app

    with rt.factory() as session:
        _, token = api_tokens.create(session, "bench", scopes, rt.clock.now(), "bench")
        session.commit()
    rt.settings.api_rate_burst = 10**9
    transport = httpx.ASGITransport(app=create_app(rt, start_scheduler=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        yield Timed(client, token, names)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": machine(),
        **data,
    }
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    return path


def _commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return None


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers, *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)
