"""The outbox delivers every stored reply exactly once, with retries and backoff."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.normalize import normalize
from core.clock import FrozenClock
from core.events import Channel
from inbox import workflow
from inbox.models import AuditEvent, Conversation, Message
from inbox.outbox import DeliveryError, Outbox
from inbox.runtime import Runtime
from tests.helpers.payloads import payload


class Platform:
    """Stands in for the platform's server: records what reached it, fails on request."""

    def __init__(self) -> None:
        self.received: list[tuple[int | None, str, dict]] = []
        self.failures: list[DeliveryError] = []

    async def send(self, message: Message) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.received.append((message.id, message.text, message.reply_target))
        return f"platform-{len(self.received)}"


def queue_reply(runtime: Runtime, clock: FrozenClock, text: str = "Ответ") -> int:
    ev = normalize(Channel.vk, payload("vk", "message_new.json"), runtime.profile)
    ev = ev.model_copy(update={"external_id": f"ev-{text}", "published_at": clock.now()})
    _, processed = runtime.inbox.ingest(ev)
    assert processed and processed.conversation_id
    with runtime.factory() as session:
        conv = session.get(Conversation, processed.conversation_id)
        assert conv
        message = workflow.reply(session, conv, text, clock.now())
        session.commit()
        assert message.id
        return message.id


async def test_reply_reaches_the_platform_once_with_its_target(
    runtime: Runtime, clock: FrozenClock
) -> None:
    platform = Platform()
    outbox = Outbox(runtime.factory, clock, {"vk": platform.send})
    message_id = queue_reply(runtime, clock)
    report = await outbox.deliver_once()
    again = await outbox.deliver_once()
    assert report.sent == [message_id] and again.sent == []
    assert platform.received == [(message_id, "Ответ", {"peer_id": 512345678})]
    with runtime.factory() as session:
        message = session.get(Message, message_id)
        assert message and message.delivery_status == "sent"
        assert message.external_id == "platform-1"


async def test_rate_limit_is_respected_then_sent_once(runtime: Runtime, clock: FrozenClock) -> None:
    platform = Platform()
    platform.failures = [DeliveryError("Too Many Requests: retry after 7", retry_after=7)]
    outbox = Outbox(runtime.factory, clock, {"vk": platform.send})
    message_id = queue_reply(runtime, clock)
    assert (await outbox.deliver_once()).retried == [message_id]
    clock.advance(timedelta(seconds=6))
    assert (await outbox.deliver_once()).sent == []  # not before retry_after
    clock.advance(timedelta(seconds=1))
    assert (await outbox.deliver_once()).sent == [message_id]
    assert [r[0] for r in platform.received] == [message_id]


async def test_backoff_grows_and_gives_up_with_an_alert(
    runtime: Runtime, clock: FrozenClock
) -> None:
    platform = Platform()
    platform.failures = [DeliveryError("SMTP 451 try later") for _ in range(3)]
    outbox = Outbox(runtime.factory, clock, {"vk": platform.send}, max_attempts=3, base_delay=10)
    message_id = queue_reply(runtime, clock)
    waits = []
    for _ in range(3):
        await outbox.deliver_once()
        with runtime.factory() as session:
            message = session.get(Message, message_id)
            assert message
            if message.delivery_status == "failed":
                break
            waits.append(
                (
                    message.next_attempt_at.replace(tzinfo=None) - clock.now().replace(tzinfo=None)
                ).total_seconds()
            )
        clock.advance(timedelta(hours=1))
    assert waits == [10, 20]
    with runtime.factory() as session:
        message = session.get(Message, message_id)
        assert message and message.delivery_status == "failed"
        assert message.last_error == "SMTP 451 try later"
        alert = session.exec(select(AuditEvent).where(AuditEvent.kind == "alert")).one()
        assert alert.data["alert"] == "delivery_failed"
    outbox.retry_now(message_id)
    assert (await outbox.deliver_once()).sent == [message_id]


async def test_permanent_error_fails_at_once(runtime: Runtime, clock: FrozenClock) -> None:
    platform = Platform()
    platform.failures = [DeliveryError("Forbidden: bot was blocked by the user", permanent=True)]
    outbox = Outbox(runtime.factory, clock, {"vk": platform.send})
    message_id = queue_reply(runtime, clock)
    assert (await outbox.deliver_once()).failed == [message_id]


async def test_a_crashed_sender_does_not_lose_the_message(
    runtime: Runtime, clock: FrozenClock
) -> None:
    calls = []

    async def buggy(message: Message) -> str:
        calls.append(message.id)
        if len(calls) == 1:
            raise KeyError("chat_id")
        return "ok-id"

    outbox = Outbox(runtime.factory, clock, {"vk": buggy}, base_delay=1)
    message_id = queue_reply(runtime, clock)
    assert (await outbox.deliver_once()).retried == [message_id]
    clock.advance(timedelta(seconds=1))
    assert (await outbox.deliver_once()).sent == [message_id]


async def test_message_stuck_in_sending_is_offered_again_after_the_lease(
    runtime: Runtime, clock: FrozenClock
) -> None:
    platform = Platform()
    outbox = Outbox(runtime.factory, clock, {"vk": platform.send}, lease=timedelta(minutes=5))
    message_id = queue_reply(runtime, clock)
    assert [m.id for m in outbox.claim()] == [message_id]  # then the worker died
    assert outbox.claim() == []  # another worker does not take it while the lease runs
    clock.advance(timedelta(minutes=5))
    assert (await outbox.deliver_once()).sent == [message_id]


async def test_two_workers_never_send_the_same_message(
    runtime: Runtime, clock: FrozenClock
) -> None:
    platform = Platform()
    ids = [queue_reply(runtime, clock, f"Ответ {n}") for n in range(6)]
    first = Outbox(runtime.factory, clock, {"vk": platform.send})
    second = Outbox(runtime.factory, clock, {"vk": platform.send})
    a = first.claim(limit=3)
    b = second.claim(limit=10)
    assert {m.id for m in a}.isdisjoint({m.id for m in b})
    # All six are replies in one conversation: the second worker leaves the rest until the
    # first has sent its part, so that they reach the platform in order.
    assert [m.id for m in a] == ids[:3] and b == []
    for message in a:
        assert message.id is not None
        first._sent(message.id, f"vk-{message.id}")
    b = second.claim(limit=10)
    assert [m.id for m in b] == ids[3:]


async def test_channels_without_a_sender_stay_queued(runtime: Runtime, clock: FrozenClock) -> None:
    outbox = Outbox(runtime.factory, clock, {"telegram": Platform().send})
    message_id = queue_reply(runtime, clock)
    assert (await outbox.deliver_once()).sent == []
    with runtime.factory() as session:
        message = session.get(Message, message_id)
        assert message and message.delivery_status == "queued"
