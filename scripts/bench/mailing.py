"""A mailing to many subscribers through the outbox: writing the recipients, a kill -9 while
writing and the rerun (no duplicates), delivery throughput, and the platforms' rate limits.

    .venv/bin/python scripts/bench/mailing.py [--recipients 10000] [--paced 300]
        [--db sqlite|postgresql|both]

Subscribers are split between Telegram and VK. Delivery goes through ``inbox.outbox.Outbox``
to local stand-ins of the platforms (async senders that record when each message reached
them): unpaced for the outbox's own throughput, and paced at ``PLATFORM_RATES`` for
``--paced`` messages per platform, checking that no one-second window holds more than the
platform allows. Prints a table and writes bench-results/mailing.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from common import (  # type: ignore[import-not-found]
    add_db_option,
    bench_runtime,
    database,
    db_kinds,
    table,
    write_result,
)
from sqlalchemy.exc import OperationalError
from sqlmodel import func, select

from core.clock import FrozenClock
from inbox import mailings
from inbox.mailings import MailingDraft, Unsubscribe
from inbox.models import Citizen, Consent, Conversation, MailingRecipient, Message, Subscription
from inbox.outbox import PLATFORM_RATES, Outbox
from inbox.runtime import Runtime
from rules.proactive import SHIPPED, load_proactive_rules

RULES = load_proactive_rules(SHIPPED)
LINKS = Unsubscribe("b" * 40, "https://otklik.example")
WRITER = """
import sys
from datetime import datetime
from inbox.db import make_engine, session_factory
from inbox.mailings import Unsubscribe, send_due
from rules.proactive import SHIPPED, load_proactive_rules
factory = session_factory(make_engine(sys.argv[1]))
links = Unsubscribe("b" * 40, "https://otklik.example")
send_due(factory, load_proactive_rules(SHIPPED), datetime.fromisoformat(sys.argv[2]), links)
"""


def seed(rt: Runtime, count: int, topic: str) -> None:
    now = rt.clock.now()
    service = RULES.topic(topic).service  # type: ignore[union-attr]
    with rt.factory() as session:
        for n in range(count):
            citizen = Citizen(display_name=f"c{n}", created_at=now)
            session.add(citizen)
            session.flush()
            assert citizen.id is not None
            channel = "telegram" if n % 2 else "vk"
            target = {"chat_id": n} if channel == "telegram" else {"peer_id": n}
            conversation = Conversation(
                channel=channel, thread_key=f"{topic}:{n}", citizen_id=citizen.id, kind="appeal",
                rule_id="appeal", opened_at=now, status="closed", reply_target=target,
            )  # fmt: skip
            session.add(conversation)
            session.flush()
            assert conversation.id is not None
            session.add(Consent(
                citizen_id=citizen.id, scope_kind="service", scope_id=service, wording="w",
                given_at=now, given_via="bot", given_by="citizen",
            ))  # fmt: skip
            session.add(Subscription(
                citizen_id=citizen.id, topic=topic, frequency="now",
                conversation_id=conversation.id, created_at=now,
            ))  # fmt: skip
        mailings.create(session, RULES, MailingDraft(topic, None, "Текст.", None), now, by="b")
        session.commit()


def count(rt: Runtime, model: Any) -> int:
    """Rows of ``model`` (on SQLite, retried while the writer holds the database)."""
    while True:
        try:
            with rt.factory() as session:
                return int(session.exec(select(func.count()).select_from(model)).one())
        except OperationalError:
            time.sleep(0.05)


class StandIn:
    """A platform: records when each message arrived, per recipient."""

    def __init__(self) -> None:
        self.at: dict[str, list[float]] = {"telegram": [], "vk": []}
        self.per_recipient: Counter[str] = Counter()

    def sender(self, channel: str) -> Any:
        async def send(message: Message) -> str:
            self.at[channel].append(time.monotonic())
            target = message.reply_target
            self.per_recipient[f"{channel}:{target.get('chat_id', target.get('peer_id'))}"] += 1
            return str(message.id)

        return send


def max_per_second(stamps: list[float]) -> int:
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def deliver(rt: Runtime, rates: dict[str, float] | None) -> tuple[StandIn, float]:
    stand_in = StandIn()
    senders = {c: stand_in.sender(c) for c in ("telegram", "vk")}
    outbox = Outbox(rt.factory, rt.clock, senders, rates=rates)
    started = time.perf_counter()
    while (await outbox.deliver_once(limit=500)).sent:
        pass
    return stand_in, time.perf_counter() - started


def run(kind: str, recipients: int, paced: int) -> dict[str, Any]:
    clock = FrozenClock(datetime.now(UTC))
    with database(kind) as url, bench_runtime(url, clock) as rt:
        seed(rt, recipients, "outages")
        writer = subprocess.Popen([sys.executable, "-c", WRITER, url, clock.now().isoformat()])
        while count(rt, MailingRecipient) < recipients // 3:
            time.sleep(0.01)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        at_kill = count(rt, MailingRecipient)
        started = time.perf_counter()
        mailings.send_due(rt.factory, RULES, clock.now(), LINKS)
        rerun = time.perf_counter() - started
        written = count(rt, MailingRecipient)
        stand_in, seconds = asyncio.run(deliver(rt, None))
        duplicates = sum(1 for n in stand_in.per_recipient.values() if n > 1)
        # Paced: a second mailing of another topic to ``paced`` subscribers per platform.
        seed(rt, paced * 2, "heating_season")
        mailings.send_due(rt.factory, RULES, clock.now(), LINKS)
        paced_in, paced_seconds = asyncio.run(deliver(rt, PLATFORM_RATES))
    return {
        "db": kind,
        "recipients": recipients,
        "written_before_kill": at_kill,
        "written_after_rerun": written,
        "rerun_seconds": round(rerun, 2),
        "write_rate_per_s": round((written - at_kill) / rerun) if rerun else None,
        "delivered": sum(stand_in.per_recipient.values()),
        "duplicates": duplicates,
        "delivery_seconds": round(seconds, 2),
        "delivery_per_s": round(sum(stand_in.per_recipient.values()) / seconds),
        "paced_messages": paced * 2,
        "paced_seconds": round(paced_seconds, 1),
        "telegram_max_per_s": max_per_second(paced_in.at["telegram"]),
        "vk_max_per_s": max_per_second(paced_in.at["vk"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--paced", type=int, default=300)
    add_db_option(parser)
    args = parser.parse_args()
    kinds = db_kinds(args.db)
    results = [run(kind, args.recipients, args.paced) for kind in kinds]
    keys = list(results[0])
    print(table(keys, [[r[k] for k in keys] for r in results]))
    write_result("mailing", {"runs": results})


if __name__ == "__main__":
    main()
