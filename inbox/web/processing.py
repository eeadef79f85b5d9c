"""Processing of journalled webhook events after the platform was answered.

A webhook answers as soon as its event is in the journal (``Inbox.accept``, one commit, run on
Starlette's thread pool). The processing that follows (rules, conversation, SLA clock, the
citizen bot) used to run as a FastAPI background task on that same thread pool, so that above
~40 events/s the backlog of processing starved the next requests' journal commits and the
webhooks' latency grew without bound (docs/performance.md, section 2).

It now runs here: a small thread pool owned by the app (created in ``create_app``'s lifespan,
kept on ``app.state.processing``, shut down at exit) with a bounded number of waiting jobs.
When it is full, ``submit`` refuses at once instead of queueing: the event is already in the
journal, and ``Inbox.process_pending`` (the scheduler runs it every minute, and at start-up)
finishes it. Processing is idempotent (``Inbox.process`` locks the journal row and marks it),
so an event is processed exactly once whichever of the two gets it; the follow-up the job
would have done (the citizen bot's answer) is done by ``process_pending``'s after-processing
hook for the channel (``Inbox.after_processing``).

With ``OTKLIK_PROCESSING=worker`` there is no executor at all: webhooks only journal and
answer (``journal_only``), and a separate ``otklik worker`` process runs ``process_pending``
every second (``otklik/worker.py``), so that processing never takes the web process's CPU.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import FastAPI

log = logging.getLogger(__name__)

T = TypeVar("T")

# Processing is CPU-bound Python (section 1: ~23 ms per event); more threads would only fight
# the request threads for the interpreter lock.
WORKERS = 1
# Jobs waiting beyond the running ones: about 2.5 s of processing at ~40 events/s. Past that,
# the event waits for process_pending rather than for a queue that would only grow.
QUEUE_SIZE = 100


class ProcessingExecutor:
    """A thread pool that refuses work instead of queueing more than ``queue_size`` jobs."""

    def __init__(self, workers: int = WORKERS, queue_size: int = QUEUE_SIZE) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otklik-process")
        self._slots = threading.BoundedSemaphore(workers + queue_size)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T] | None:
        """Start ``fn(*args)`` on the pool; None, at once, when the pool is full or shut down."""
        if not self._slots.acquire(blocking=False):
            return None
        try:
            job = self._pool.submit(fn, *args)
        except RuntimeError:  # shut down: the app is stopping
            self._slots.release()
            return None
        job.add_done_callback(lambda _: self._slots.release())
        return job

    def shutdown(self) -> None:
        """Let running jobs end; drop waiting ones (journalled: the next start finishes them)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def journal_only(app: FastAPI) -> bool:
    """Whether webhooks leave processing to ``otklik worker`` (``OTKLIK_PROCESSING=worker``)."""
    return bool(app.state.runtime.settings.processing == "worker")


def processing_executor(app: FastAPI) -> ProcessingExecutor:
    """The app's executor. The lifespan creates it; an app driven without its lifespan (ASGI
    tests) gets one on first use, whose idle thread ends with the interpreter."""
    found: ProcessingExecutor | None = getattr(app.state, "processing", None)
    if found is None:
        found = ProcessingExecutor()
        app.state.processing = found
    return found


async def settled(job: Future[T]) -> T:
    """Wait, in the event loop (no thread), for a submitted job. Added as the request's
    background task after the answer, it keeps the request open until its processing ends, so
    that a graceful shutdown and in-process test clients see the event processed."""
    return await asyncio.wrap_future(job)
