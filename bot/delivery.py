"""The one outbox loop: deliver due messages of every enabled channel, and on the way ask
closed dialogues for a rating and queue the next mailing batch.

The web app runs it in its event loop (``otklik.web``), ``otklik worker`` in its own
(``otklik.worker``, which adds fast polling and a wake-up), and the Telegram and MAX polling
commands with only their own sender. Which senders there are comes from the channel registry
(``otklik.registry.senders``); this module knows no channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from bot.citizen.engine import CitizenBot
from inbox import mailings
from inbox.outbox import PLATFORM_RATES, DeliveryReport, Outbox, SendFunc
from inbox.runtime import Runtime

log = logging.getLogger(__name__)


class Delivery:
    """One outbox over ``senders`` and the citizen bot's rating requests."""

    def __init__(
        self, runtime: Runtime, senders: dict[str, SendFunc], citizen_bot: CitizenBot
    ) -> None:
        self.runtime = runtime
        self.citizen_bot = citizen_bot
        lease = timedelta(seconds=runtime.settings.outbox_lease)
        self.outbox = Outbox(
            runtime.factory, runtime.clock, senders, lease=lease, rates=PLATFORM_RATES
        )
        #: Messages sent since start (the worker logs it when it stops).
        self.sent = 0
        self._ratings_at = -1e9

    async def round(self) -> DeliveryReport:
        """Ask for ratings and run a mailing round (at most once a second, or once an
        ``outbox_interval``: a query over closed dialogues, not for every fast poll), then
        deliver what is due."""
        now = time.monotonic()
        if now - self._ratings_at >= max(1.0, self.runtime.settings.outbox_interval):
            self._ratings_at = now
            await asyncio.to_thread(self.citizen_bot.ask_for_ratings)
            await asyncio.to_thread(mailings.run_round, self.runtime)
        report = await self.outbox.deliver_once()
        self.sent += len(report.sent)
        if report.failed:
            log.warning("outbox: %d messages failed for good", len(report.failed))
        return report

    async def forever(self, interval: float) -> None:
        """A round every ``interval`` seconds until cancelled; a failed round (the database
        may be down for a moment) is logged and the loop goes on."""
        while True:
            try:
                await self.round()
            except Exception:
                log.exception("outbox round failed")
            await asyncio.sleep(interval)
