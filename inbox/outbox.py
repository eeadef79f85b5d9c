"""The outbox: every reply is stored first (``workflow.reply``), then delivered here.

A worker claims due messages (``SKIP LOCKED`` on PostgreSQL, so several workers never take the
same one), marks them ``sending`` and commits *before* calling the platform, then records the
result: ``sent`` with the platform's id, a retry with backoff (the platform's ``retry_after``
when it gives one), or ``failed`` after the last attempt, visible to the operator.

Exactly once: a message is claimed by one worker only and is never re-sent after ``sent``.
If a worker dies between the platform call and recording ``sent``, the message stays in
``sending``; after ``lease`` it is offered again. Senders pass ``idempotency_key`` where the
platform supports one (VK ``random_id``, email ``Message-ID``), so such a retry is dropped by
the platform; for Telegram, which has none, that window is the only at-least-once case.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased, sessionmaker
from sqlmodel import Session, col, select

from core.clock import Clock
from inbox import audit, consent
from inbox.models import DeliveryStatus, Direction, Message

log = logging.getLogger(__name__)

#: Messages per second a worker sends to a platform at most (``Outbox(rates=...)``):
#: Telegram allows about 30 messages a second per bot, VK 20 API calls a second per
#: community token. Mailings of thousands stay under them instead of learning them from
#: 429s and flood-control errors (which are still honoured: ``retry_after``).
PLATFORM_RATES = {"telegram": 30.0, "vk": 20.0}

#: The advisory lock that serialises claims on PostgreSQL.
_CLAIM_KEY = zlib.crc32(b"otklik:outbox-claim") & 0x7FFFFFFF


class DeliveryError(Exception):
    """A failed send. ``retry_after`` (seconds) when the platform said when to retry;
    ``permanent`` when retrying cannot help (blocked by the user, chat not found)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(reason)
        self.retry_after = retry_after
        self.permanent = permanent


#: Sends one message; returns the platform's id of what it sent. Raises DeliveryError.
SendFunc = Callable[[Message], Awaitable[str | None]]


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


class Outbox:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock,
        senders: dict[str, SendFunc],
        *,
        max_attempts: int = 8,
        base_delay: float = 5.0,
        max_delay: float = 3600.0,
        lease: timedelta = timedelta(minutes=5),
        rates: dict[str, float] | None = None,
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.senders = senders
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = lease
        self.rates = rates or {}
        self._next_send: dict[str, float] = {}

    def claim(self, limit: int = 50) -> list[Message]:
        """Take due messages for channels we can send to; commits the claim.

        Several messages of one conversation may go in one claim (they are sent in order, one
        by one), but none while an earlier one of it is being sent by another claim: with
        several workers, a conversation's messages still reach the platform in order."""
        now = self.clock.now()
        with self.factory() as session:
            if session.get_bind().dialect.name == "postgresql":
                # One claim at a time (a few milliseconds): a claim then sees what the
                # previous one took as ``sending``, which keeps conversations in order (below).
                session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_KEY})
            stale = now - self.lease
            earlier = aliased(Message)
            in_flight_before = (
                sa.exists()
                .where(col(earlier.conversation_id) == col(Message.conversation_id))
                .where(col(earlier.id) < col(Message.id))
                .where(col(earlier.direction) == Direction.outbound.value)
                .where(col(earlier.delivery_status) == DeliveryStatus.sending.value)
                .where(col(earlier.next_attempt_at) > stale)
            )
            query = (
                select(Message)
                .where(Message.direction == Direction.outbound.value)
                .where(col(Message.channel).in_(list(self.senders)))
                .where(
                    sa.or_(
                        sa.and_(
                            col(Message.delivery_status) == DeliveryStatus.queued.value,
                            col(Message.next_attempt_at) <= now,
                        ),
                        sa.and_(
                            col(Message.delivery_status) == DeliveryStatus.sending.value,
                            col(Message.next_attempt_at) <= stale,
                        ),
                    )
                )
                # A conversation whose earlier message another worker is sending waits for
                # it: its messages leave in order whatever the number of workers.
                .where(~in_flight_before)
                .order_by(col(Message.next_attempt_at), col(Message.id))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            # The consent guard: a proactive message whose consent was withdrawn meanwhile
            # is withheld here, in the claim's transaction, never sent (inbox/consent.py).
            claimed = consent.withhold(session, list(session.exec(query)), now)
            for message in claimed:
                message.delivery_status = DeliveryStatus.sending.value
                message.attempts += 1
                message.next_attempt_at = now  # the lease starts now
            session.commit()
            return claimed

    async def deliver_once(self, limit: int = 50) -> DeliveryReport:
        """Claim due messages and send them one by one. The database calls run on a thread:
        the caller's event loop may also be answering webhooks."""
        report = DeliveryReport()
        for message in await asyncio.to_thread(self.claim, limit):
            assert message.id is not None
            send = self.senders[message.channel]
            await self._pace(message.channel)
            try:
                platform_id = await send(message)
            except DeliveryError as exc:
                await asyncio.to_thread(self._failed, message.id, exc, report)
                continue
            except Exception as exc:  # a bug or an unexpected library error: retry, keep it
                log.exception("sender for %s crashed on message %s", message.channel, message.id)
                error = DeliveryError(f"{type(exc).__name__}: {exc}")
                await asyncio.to_thread(self._failed, message.id, error, report)
                continue
            await asyncio.to_thread(self._sent, message.id, platform_id)
            report.sent.append(message.id)
        return report

    async def _pace(self, channel: str) -> None:
        """Wait for the channel's next slot (``rates``: messages per second; none: no wait)."""
        rate = self.rates.get(channel)
        if not rate:
            return
        wait = self._next_send.get(channel, 0.0) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        # From the moment this one goes, never the planned one: a late wake-up never lets
        # the next message go early.
        self._next_send[channel] = time.monotonic() + 1.0 / rate

    def _sent(self, message_id: int, platform_id: str | None) -> None:
        now = self.clock.now()
        with self.factory() as session:
            message = session.get(Message, message_id)
            assert message is not None
            message.delivery_status = DeliveryStatus.sent.value
            message.delivered_at = now
            message.external_id = platform_id
            message.last_error = None
            audit.record(
                session, "delivered", now, conversation_id=message.conversation_id,
                message_id=message_id, attempts=message.attempts,
            )  # fmt: skip
            session.commit()

    def _failed(self, message_id: int, exc: DeliveryError, report: DeliveryReport) -> None:
        now = self.clock.now()
        with self.factory() as session:
            message = session.get(Message, message_id)
            assert message is not None
            message.last_error = str(exc)[:2000]
            give_up = exc.permanent or message.attempts >= self.max_attempts
            if give_up:
                message.delivery_status = DeliveryStatus.failed.value
                report.failed.append(message_id)
                audit.record(
                    session, "alert", now, conversation_id=message.conversation_id,
                    alert="delivery_failed", message_id=message_id, error=str(exc)[:500],
                )  # fmt: skip
            else:
                message.delivery_status = DeliveryStatus.queued.value
                message.next_attempt_at = now + timedelta(seconds=self._delay(message, exc))
                report.retried.append(message_id)
            session.commit()

    def _delay(self, message: Message, exc: DeliveryError) -> float:
        if exc.retry_after is not None:
            return max(0.0, exc.retry_after)
        return min(self.max_delay, self.base_delay * 2 ** (message.attempts - 1))

    def retry_now(self, message_id: int, at: datetime | None = None) -> None:
        """An operator asks to try a failed message again."""
        with self.factory() as session:
            message = session.get(Message, message_id)
            if message is None or message.delivery_status != DeliveryStatus.failed.value:
                raise ValueError("only a failed message can be retried")
            message.delivery_status = DeliveryStatus.queued.value
            message.next_attempt_at = at or self.clock.now()
            message.attempts = 0
            session.commit()
