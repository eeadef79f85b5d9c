"""A mailing killed mid-write (kill -9) and run again reaches every subscriber exactly once,
on SQLite and PostgreSQL: the recipients' rows and messages are written batch by batch in
transactions, unique per mailing and citizen, before the outbox sends anything."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime

from sqlmodel import func, select

from core.clock import FrozenClock
from inbox import mailings
from inbox.mailings import MailingDraft, Unsubscribe
from inbox.models import Citizen, Consent, Conversation, MailingRecipient, Message, Subscription
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from rules.proactive import SHIPPED, load_proactive_rules

RULES = load_proactive_rules(SHIPPED)
SUBSCRIBERS = 1200

WRITER = """
import sys
import time
from datetime import datetime
from inbox.db import make_engine, session_factory
from inbox.mailings import Unsubscribe, send_due
from rules.proactive import SHIPPED, load_proactive_rules
engine = make_engine(sys.argv[1])
rules = load_proactive_rules(SHIPPED)
links = Unsubscribe("k" * 40, "https://otklik.example")
real = session_factory(engine)


def slow():
    # Each batch waits a little first, so that the test's kill lands mid-mailing however fast
    # the machine writes (1,200 rows took less than the test's first look on a quiet one).
    time.sleep(0.2)
    return real()


send_due(slow, rules, datetime.fromisoformat(sys.argv[2]), links, batch=20)
"""


def seed(runtime: Runtime, now: datetime) -> None:
    with runtime.factory() as session:
        for n in range(SUBSCRIBERS):
            citizen = Citizen(display_name=f"c{n}", created_at=now)
            session.add(citizen)
            session.flush()
            assert citizen.id is not None
            conversation = Conversation(
                channel="telegram", thread_key=f"tg:{n}", citizen_id=citizen.id, kind="appeal",
                rule_id="appeal", opened_at=now, status="closed", reply_target={"chat_id": n},
            )  # fmt: skip
            session.add(conversation)
            session.flush()
            assert conversation.id is not None
            session.add(Consent(
                citizen_id=citizen.id, scope_kind="service", scope_id="outages", wording="w",
                given_at=now, given_via="bot", given_by="citizen",
            ))  # fmt: skip
            session.add(Subscription(
                citizen_id=citizen.id, topic="outages", frequency="now",
                conversation_id=conversation.id, created_at=now,
            ))  # fmt: skip
        mailings.create(
            session, RULES, MailingDraft("outages", None, "Завтра нет воды.", None), now, by="b"
        )
        session.commit()


def recipients(runtime: Runtime) -> int:
    with runtime.factory() as session:
        return int(session.exec(select(func.count()).select_from(MailingRecipient)).one())


async def test_kill_9_mid_mailing_then_rerun_reaches_everyone_exactly_once(
    runtime: Runtime, clock: FrozenClock
) -> None:
    now = clock.now()
    seed(runtime, now)
    url = runtime.settings.effective_database_url
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, now.isoformat()])
    deadline = time.monotonic() + 60
    while recipients(runtime) < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    written = recipients(runtime)
    assert 100 <= written < SUBSCRIBERS, written  # killed mid-mailing
    with runtime.factory() as session:
        assert int(session.exec(select(func.count()).select_from(Message)).one()) == written
    links = Unsubscribe("k" * 40, "https://otklik.example")
    mailings.send_due(runtime.factory, RULES, now, links, batch=100)
    assert recipients(runtime) == SUBSCRIBERS
    got: Counter[int] = Counter()

    async def send(message: Message) -> str:
        got[int(message.reply_target["chat_id"])] += 1
        return str(message.id)

    outbox = Outbox(runtime.factory, clock, {"telegram": send})
    while (await outbox.deliver_once(limit=500)).sent:
        pass
    assert len(got) == SUBSCRIBERS and set(got.values()) == {1}
    with runtime.factory() as session:
        assert mailings.figures(session, 1).sent == SUBSCRIBERS


async def test_the_outbox_keeps_under_a_platforms_rate(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """40 messages at 100 a second take at least 0.39 s: no burst over the platform's limit."""
    now = clock.now()
    with runtime.factory() as session:
        citizen = Citizen(display_name="c", created_at=now)
        session.add(citizen)
        session.flush()
        assert citizen.id is not None
        conversation = Conversation(
            channel="telegram", thread_key="tg:1", citizen_id=citizen.id, kind="appeal",
            rule_id="appeal", opened_at=now, reply_target={"chat_id": 1},
        )  # fmt: skip
        session.add(conversation)
        session.flush()
        for n in range(40):
            session.add(Message(
                conversation_id=conversation.id, direction="out", author_kind="bot",
                channel="telegram", text=str(n), published_at=now, delivery_status="queued",
                next_attempt_at=now, idempotency_key=f"k{n}",
            ))  # fmt: skip
        session.commit()
    stamps: list[float] = []

    async def send(message: Message) -> str:
        stamps.append(time.monotonic())
        return "x"

    outbox = Outbox(runtime.factory, clock, {"telegram": send}, rates={"telegram": 100.0})
    assert len((await outbox.deliver_once(limit=100)).sent) == 40
    assert stamps[-1] - stamps[0] >= 0.39 - 0.01
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.009  # never two within the same hundredth of a second
