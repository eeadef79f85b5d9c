"""A small asyncio load generator that behaves like the platforms, and a real server process.

``deliver_all`` sends each webhook until it gets a 2xx, as VK and Telegram do (a connection
error, a 5xx or a 429 means "try again"), and returns what was acknowledged. ``open_loop``
sends at a fixed rate whatever the answers' latency (so a slow server cannot slow down the
arrivals and hide its own queueing: no coordinated omission). ``Server`` runs the real
``otklik serve`` in a subprocess, to be killed with SIGKILL and started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlmodel import col, func, select

from core.config import Settings
from inbox.models import InboundRecord, Message
from inbox.runtime import build_runtime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Child:
    """An ``otklik`` sub-command in a subprocess with the given ``OTKLIK_*`` environment,
    its output appended to ``log_path``."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def _spawn(self, *args: str) -> int:
        """Start ``otklik ARGS``; the log's size before it (where this run's lines begin)."""
        self.starts += 1
        with self.log_path.open("ab") as log:
            offset = log.tell()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "otklik.cli", *args],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return offset

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, like a power cut or the OOM killer."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then wait; the exit code (None if it had to be killed)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.process.returncode


@dataclass
class Server(_Child):
    """``otklik serve`` on a free loopback port."""

    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 60.0) -> None:
        self._spawn("serve", "--port", str(self.port))
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._exited():
                raise RuntimeError(f"server exited: see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {wait} s: see {self.log_path}")


@dataclass
class WorkerProcess(_Child):
    """``otklik worker``."""

    def start(self, wait: float = 60.0) -> None:
        """Start it and wait for its loops to run (its start-up line in the log)."""
        offset = self._spawn("worker")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._exited():
                raise RuntimeError(f"worker exited: see {self.log_path}")
            with self.log_path.open("rb") as log:
                log.seek(offset)
                if b"worker: processing every" in log.read():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start in {wait} s: see {self.log_path}")


@dataclass
class Delivery:
    acknowledged: list[str] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)  # external id -> 4xx status
    attempts: int = 0
    retries_by_reason: dict[str, int] = field(default_factory=dict)


RETRY = frozenset({429, 500, 502, 503, 504})


async def deliver_all(
    items: Sequence[tuple[str, bytes]],
    url: Callable[[], str],
    *,
    concurrency: int = 8,
    headers: dict[str, str] | None = None,
    on_ack: Callable[[int], None] | None = None,
    give_up_after: float = 180.0,
) -> Delivery:
    """POST each (external id, body) until a 2xx; 4xx other than 429 is final (rejected)."""
    result = Delivery()
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    deadline = time.monotonic() + give_up_after

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            external_id, body = queue.get_nowait()
            delay = 0.05
            while time.monotonic() < deadline:
                result.attempts += 1
                try:
                    response = await client.post(url(), content=body, headers=headers)
                    reason = str(response.status_code)
                    if response.is_success:
                        result.acknowledged.append(external_id)
                        if on_ack:
                            on_ack(len(result.acknowledged))
                        break
                    if response.status_code not in RETRY:
                        result.rejected[external_id] = response.status_code
                        break
                except httpx.TransportError as exc:
                    reason = type(exc).__name__
                result.retries_by_reason[reason] = result.retries_by_reason.get(reason, 0) + 1
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return result


async def open_loop(
    rate: float,
    duration: float,
    url: str,
    bodies: Callable[[int], bytes],
    headers: dict[str, str] | None = None,
) -> tuple[list[float], dict[str, int]]:
    """Send ``rate`` requests per second for ``duration`` s; latencies (ms) and status counts."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    interval = 1.0 / rate
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)

    async def one(client: httpx.AsyncClient, n: int) -> None:
        started = time.perf_counter()
        try:
            response = await client.post(url, content=bodies(n), headers=headers)
            key = str(response.status_code)
        except httpx.TransportError as exc:
            key = type(exc).__name__
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[key] = statuses.get(key, 0) + 1

    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        tasks = []
        start = time.perf_counter()
        n = 0
        while (now := time.perf_counter() - start) < duration:
            scheduled = n * interval
            if scheduled > now:
                await asyncio.sleep(scheduled - now)
            tasks.append(asyncio.create_task(one(client, n)))
            n += 1
        await asyncio.gather(*tasks)
    return latencies, statuses


class TcpProxy:
    """A loopback TCP forwarder to a database server that can be cut and restored.

    ``cut`` closes the listening socket and every open connection (what a crashed or
    restarting database server, or a network failure, looks like to the app); ``restore``
    listens again on the same port.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut while this one was connecting
                    client.close()
                    upstream.close()
                    return
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def wait_until_settled(db_url: str, timeout: float = 90.0) -> None:
    """Until the journal is processed and nothing is queued (the server works in background)."""
    runtime = build_runtime(Settings(database_url=db_url))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with runtime.factory() as session:
                pending = session.exec(
                    select(func.count()).where(col(InboundRecord.processed_at).is_(None))
                ).one()
                queued = session.exec(
                    select(func.count()).where(Message.delivery_status == "queued")
                ).one()
            if pending == 0 and queued == 0:
                return
            time.sleep(0.3)
    finally:
        runtime.dispose()
