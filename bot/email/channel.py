"""The email channel at run time: read the mailbox (IDLE or polling); one round of reading
and delivering for ``otklik email poll``.

Off unless ``OTKLIK_IMAP_HOST``, ``OTKLIK_SMTP_HOST`` and ``OTKLIK_EMAIL_FROM`` are set. The web
app starts it in its lifespan; ``otklik email poll`` runs one round from the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from bot.email.mailbox import ImapMailbox, MailboxError
from bot.email.receive import EmailInbound, PollReport, poll_once
from bot.email.send import SmtpConfig, SmtpSender
from core.config import Settings
from inbox.outbox import DeliveryReport, Outbox
from inbox.runtime import Runtime

log = logging.getLogger(__name__)

#: Longest single IDLE wait, in seconds: how long stopping the app may take at most.
STEP = 5.0


def smtp_config(settings: Settings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        user=settings.smtp_user,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        sender=settings.email_from,
    )


@dataclass
class EmailChannel:
    runtime: Runtime
    config: SmtpConfig
    inbound: EmailInbound
    outbox: Outbox
    stopping: threading.Event = field(default_factory=threading.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> EmailChannel:
        settings = runtime.settings
        config = smtp_config(settings)
        own = {a.lower() for a in runtime.profile.email.addresses} | {config.address}
        inbound = EmailInbound(
            data_dir=settings.data_dir, own_addresses=frozenset(own), domain=config.domain
        )
        sender = SmtpSender(config, runtime.factory, runtime.clock)
        outbox = Outbox(runtime.factory, runtime.clock, {"email": sender})
        return cls(runtime, config, inbound, outbox)

    def mailbox(self) -> ImapMailbox:
        s = self.runtime.settings
        return ImapMailbox(
            s.imap_host,
            s.imap_port,
            s.imap_user,
            s.imap_password,
            use_ssl=s.imap_ssl,
            folder=s.imap_folder,
        )

    def poll(self) -> PollReport:
        """One poll of the mailbox (blocking)."""
        return poll_once(self.runtime, self.mailbox(), self.inbound)

    async def round(self) -> tuple[PollReport, DeliveryReport]:
        """Poll, then deliver the email outbox (acknowledgements and replies)."""
        polled = await asyncio.to_thread(self.poll)
        delivered = await self.outbox.deliver_once()
        return polled, delivered

    def wait_for_mail(self, timeout: float) -> None:
        """Wait up to ``timeout`` for new mail: IMAP IDLE where the server has it, else sleep.

        In steps of at most ``STEP`` seconds, so that stopping the app never waits long.
        """
        deadline = time.monotonic() + timeout
        try:
            with self.mailbox() as box:
                if box.supports_idle():
                    while not self.stopping.is_set():
                        left = deadline - time.monotonic()
                        if left <= 0 or box.wait_for_mail(min(STEP, left)):
                            return
                    return
        except MailboxError as exc:
            log.warning("email: waiting for new mail failed: %s", exc)
        self.stopping.wait(max(0.0, deadline - time.monotonic()))

    async def read_forever(self) -> None:
        """Poll, then wait for new mail (IDLE) at most ``email_poll_interval``; forever."""
        interval = max(1, self.runtime.settings.email_poll_interval)
        while True:
            try:
                polled = await asyncio.to_thread(self.poll)
                if polled.stored or polled.acknowledged:
                    log.info(
                        "email: %d letters stored, %d acknowledgements queued",
                        len(polled.stored), len(polled.acknowledged),
                    )  # fmt: skip
            except Exception:  # keep the channel alive; the next poll retries
                log.exception("email poll failed")
            await asyncio.to_thread(self.wait_for_mail, interval)


def start_email_channel(runtime: Runtime) -> EmailChannel | None:
    """Start the mailbox reader as a background task if the channel is configured; None if it
    is off. Letters are delivered by the process's one outbox loop (``bot.delivery``)."""
    if not runtime.settings.email_enabled:
        return None
    channel = EmailChannel.from_runtime(runtime)
    log.info("email channel on: %s via %s", channel.config.address, channel.config.host)
    channel.tasks = [asyncio.create_task(channel.read_forever(), name="otklik-email-read")]
    return channel


async def stop_email_channel(channel: EmailChannel | None) -> None:
    if channel is None:
        return
    channel.stopping.set()
    for task in channel.tasks:
        task.cancel()
    for task in channel.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
