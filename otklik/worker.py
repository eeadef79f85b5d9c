"""``otklik worker``: everything but the web, in a process of its own.

With ``OTKLIK_PROCESSING=worker`` the web process only journals webhooks and answers them; a
worker process then does the rest (docs/deployment.md):

* **processing**: ``Inbox.process_pending`` in a loop (at once again after a round that found
  work, every ``FAST_POLL`` seconds for ``OTKLIK_PENDING_INTERVAL`` seconds after that, then
  every ``OTKLIK_PENDING_INTERVAL`` seconds while nothing comes), with the citizen bot
  as the after-processing hook of the chat channels (Telegram, VK, web chat), so a dialogue
  message gets the bot's answer into the outbox here; a batch's turns run side by side on
  ``HOOK_THREADS`` threads (one event per dialogue in a batch, so each dialogue's order
  holds);
* **delivery**: one outbox loop with the senders of every enabled channel (Telegram, VK,
  phone, email over SMTP), woken as soon as processing queued something, else polling like
  the processing loop with ``OTKLIK_OUTBOX_INTERVAL``; it also asks
  for ratings of closed dialogues, as the web process's loop does in the default mode;
* **the scheduler's jobs**: the SLA scan and VK mention monitoring, and the mailbox reader.

Any number of workers may run on one PostgreSQL database: journal rows and outbox messages
are claimed with row locks (``SKIP LOCKED``), a thread's events are taken in journal order
(``inbox.ingest.thread_turn``), the scheduler's jobs take an advisory lock. On SQLite run
one worker. SIGTERM or SIGINT stop the loops after their current round (at most one
``process_pending`` batch): nothing is lost either way, since the journal and the outbox
are the state and a killed worker's claims are taken up again (``Outbox.lease``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from aiogram import Bot
from maxapi import Bot as MaxBot

from bot.citizen.app import answer_with
from bot.citizen.engine import CitizenBot
from bot.delivery import Delivery
from bot.email.channel import EmailChannel
from inbox.runtime import Runtime
from inbox.scheduler import build_scheduler
from otklik import registry
from otklik.freeze import freeze_startup

log = logging.getLogger(__name__)

#: Seconds between polls while traffic is flowing (see ``Worker._loop``): a query each.
FAST_POLL = 0.1
#: Events per ``process_pending`` round: a stop request waits at most for one round
#: (~25 ms an event, docs/performance.md section 1).
PENDING_BATCH = 50
#: Threads a ``process_pending`` batch's bot turns run on side by side (``Inbox.run_hooks_on``)
#: on PostgreSQL: a turn is ~25 statements, each a round trip during which this process would
#: idle. On SQLite they run one after the other.
HOOK_THREADS = 4


class Worker:
    """The worker's loops over one runtime; ``run`` until ``stop``."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        telegram: Bot | None = None,
        citizen_bot: CitizenBot | None = None,
        max_bot: MaxBot | None = None,
    ) -> None:
        """``telegram``, ``max_bot`` and ``citizen_bot`` are built from the settings unless
        given (tests)."""
        self.runtime = runtime
        settings = runtime.settings
        clients = registry.Clients.from_settings(settings, telegram=telegram, max=max_bot)
        self.telegram, self.max_bot = clients.telegram, clients.max
        self.citizen_bot = citizen_bot or CitizenBot.from_settings(
            runtime.factory, runtime.clock, runtime.rules_source, settings, kb=runtime.kb
        )
        #: What this worker did, logged when it stops.
        self.processed = 0
        answer_with(runtime, self.citizen_bot.handle_pending)
        # SQLite has one writer at a time: turns side by side would only wait for its lock.
        sqlite = runtime.settings.effective_database_url.startswith("sqlite")
        self._hooks = (
            None if sqlite else ThreadPoolExecutor(HOOK_THREADS, thread_name_prefix="otklik-hook")
        )
        runtime.inbox.run_hooks_on(self._hooks)
        self.delivery = Delivery(runtime, registry.senders(runtime, clients), self.citizen_bot)
        self.outbox = self.delivery.outbox
        self.stopping = asyncio.Event()
        #: Set when processing queued something (the bot's answers): the outbox goes at once.
        self._outbox_wake = asyncio.Event()
        self._clients = clients

    @property
    def sent(self) -> int:
        return self.delivery.sent

    def stop(self) -> None:
        self.stopping.set()
        self._outbox_wake.set()

    async def _loop(
        self,
        name: str,
        round_: Callable[[], Awaitable[bool]],
        idle: float,
        wake: asyncio.Event,
    ) -> None:
        """Run ``round_`` until stopped. After a round that found work the next starts at
        once; after an idle one, the loop waits ``FAST_POLL`` seconds while work was found
        within the last ``idle`` seconds (traffic is flowing: a new event should not wait a
        whole interval), else ``idle`` seconds; ``wake`` ends a wait early."""
        last_busy = -idle
        while not self.stopping.is_set():
            busy = False
            try:
                busy = await round_()
            except Exception:  # the database may be down for a moment; keep the worker alive
                log.exception("worker: %s round failed", name)
            now = time.monotonic()
            if busy:
                last_busy = now
                continue
            pause = min(FAST_POLL, idle) if now - last_busy < idle else idle
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(0.01, pause))
            if wake is not self.stopping:
                wake.clear()

    async def process_round(self) -> bool:
        done = await asyncio.to_thread(self.runtime.inbox.process_pending, PENDING_BATCH)
        self.processed += done
        if done:
            self._outbox_wake.set()
        return done > 0

    async def outbox_round(self) -> bool:
        report = await self.delivery.round()
        return bool(report.sent or report.failed)

    async def run(self) -> None:
        settings = self.runtime.settings
        scheduler = build_scheduler(self.runtime, process_pending=False)
        registry.add_jobs(scheduler, self.runtime)
        scheduler.start()
        email = EmailChannel.from_runtime(self.runtime) if settings.email_enabled else None
        reader = asyncio.create_task(email.read_forever()) if email is not None else None
        log.info(
            "worker: processing every %.1f s, outbox every %.1f s for %s",
            settings.pending_interval, settings.outbox_interval,
            ", ".join(sorted(self.outbox.senders)) or "no channel",
        )  # fmt: skip
        try:
            pending, outbox = settings.pending_interval, settings.outbox_interval
            await asyncio.gather(
                self._loop("processing", self.process_round, pending, self.stopping),
                self._loop("outbox", self.outbox_round, outbox, self._outbox_wake),
            )
        finally:
            if reader is not None and email is not None:
                email.stopping.set()
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            await asyncio.to_thread(scheduler.shutdown, True)
            self.runtime.inbox.run_hooks_on(None)
            if self._hooks is not None:
                self._hooks.shutdown(wait=True)
            await self._clients.close()
        log.info("worker stopped: %d events processed, %d messages sent", self.processed, self.sent)


async def run_worker(runtime: Runtime) -> None:
    """Run a worker until SIGTERM or SIGINT (``otklik worker``)."""
    worker = Worker(runtime)
    freeze_startup(runtime)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run()
