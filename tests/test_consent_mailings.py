"""Consent and mailings through the real bot entry point (Telegram webhook → bot → outbox →
the fake Bot API): subscribing shows and keeps the consent's wording, a mailing reaches
subscribers once, «стоп» or «Отписаться» stop the next message, even one already queued."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.citizen import mailing_texts as t
from bot.citizen import texts
from inbox import mailings
from inbox.clock import FrozenClock
from inbox.mailings import MailingDraft, Unsubscribe
from inbox.models import AuditEvent, Consent, Mailing, Message, Subscription
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from rules.proactive import SHIPPED, load_proactive_rules
from tests.citizen_harness import TelegramChat

RULES = load_proactive_rules(SHIPPED)
LINKS = Unsubscribe("k" * 40, "https://otklik.example")
WORDING = RULES.consent_text("service", "outages")


async def subscribe(chat: TelegramChat, area: str = "central", frequency: str = "now") -> None:
    await chat.say("/start")
    await chat.deliver()
    await chat.press(texts.SUBSCRIPTIONS)
    await chat.deliver()
    await chat.press(f"{t.TOPIC_PREFIX}outages")
    await chat.deliver()
    await chat.press(f"{t.AREA_PREFIX}outages:{area}")
    await chat.deliver()
    await chat.press(f"{t.FREQUENCY_PREFIX}outages:{area}:{frequency}")
    await chat.deliver()
    assert chat.sent_texts()[-1] == t.CONSENT_PROMPT.format(wording=WORDING)
    await chat.press(f"{t.AGREE_PREFIX}outages:{area}:{frequency}")
    await chat.deliver()


def mail(runtime: Runtime, clock: FrozenClock, text: str, area: str | None = "central") -> int:
    with runtime.factory() as session:
        mailing = mailings.create(
            session, RULES, MailingDraft("outages", area, text, None), clock.now(), by="boss"
        )
        session.commit()
        assert mailing.id is not None
        mailing_id = mailing.id
    mailings.send_due(runtime.factory, RULES, clock.now(), LINKS)
    return mailing_id


async def test_subscribing_keeps_the_wording_shown_and_a_mailing_arrives_once_with_unsubscribe(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = TelegramChat(runtime, clock)
    await subscribe(chat)
    assert chat.sent_texts()[-1].startswith("Готово: вы подписаны на рассылку «Плановые")
    with runtime.factory() as session:
        consent = session.exec(select(Consent)).one()
        assert (consent.scope_kind, consent.scope_id, consent.given_via) == (
            "service", "outages", "bot",
        )  # fmt: skip
        assert consent.wording == WORDING and consent.withdrawn_at is None
        kinds = session.exec(select(AuditEvent.kind)).all()
        assert "consent_given" in kinds and "subscribed" in kinds
    mailing_id = mail(runtime, clock, "Завтра с 9 до 17 часов на улице Ленина не будет воды.")
    # A second run (a restart, another worker) writes nobody twice.
    assert mailings.send_due(runtime.factory, RULES, clock.now(), LINKS) == 0
    await chat.deliver()
    got = chat.sent_texts()[-1]
    assert got.startswith("Завтра с 9 до 17 часов на улице Ленина не будет воды.")
    assert "напишите «стоп»" in got
    with runtime.factory() as session:
        subscription = session.exec(select(Subscription)).one()
        assert mailings.figures(session, mailing_id).sent == 1
        assert session.get(Mailing, mailing_id).status == "sent"  # type: ignore[union-attr]
    assert chat.last_keyboard == [[{"id": f"unsub:{subscription.id}", "text": "Отписаться"}]]
    again = await Outbox(runtime.factory, clock, chat.outbox.senders).deliver_once()
    assert again.sent == []


async def test_a_consent_withdrawn_after_queueing_stops_the_next_message(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = TelegramChat(runtime, clock)
    await subscribe(chat)
    mailing_id = mail(runtime, clock, "Во вторник отключат горячую воду.")
    before = len(chat.sent_texts())
    await chat.say("Стоп!")
    with runtime.factory() as session:
        assert session.exec(select(Consent)).one().withdrawn_via == "bot"
        assert session.exec(select(Subscription)).one().cancelled_at is not None
    await chat.deliver()
    sent = chat.sent_texts()[before:]
    assert sent == [t.STOPPED]  # the queued mailing was withheld, not sent
    with runtime.factory() as session:
        figures = mailings.figures(session, mailing_id)
        assert (figures.withheld, figures.sent) == (1, 0)
        withheld = session.exec(select(Message).where(Message.delivery_status == "withheld")).one()
        assert withheld.meta["mailing_id"] == mailing_id
    # The next mailing finds no subscriber.
    clock.advance(timedelta(minutes=1))
    second = mail(runtime, clock, "В среду отключат свет.")
    with runtime.factory() as session:
        assert mailings.figures(session, second).recipients == 0


async def test_the_unsubscribe_button_is_checked_against_the_presser(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = TelegramChat(runtime, clock)
    await subscribe(chat)
    with runtime.factory() as session:
        subscription_id = session.exec(select(Subscription.id)).one()
    for forged in ("unsub:999999", "unsub:-1", "unsub:" + "9" * 60, "unsub:١"):
        await chat.press(forged)
        await chat.deliver()
        assert chat.sent_texts()[-1] == t.UNKNOWN
    await chat.press(f"unsub:{subscription_id}")
    await chat.deliver()
    assert chat.sent_texts()[-1] == t.UNSUBSCRIBED.format(topic="Плановые отключения")
    with runtime.factory() as session:
        assert session.exec(select(Consent)).one().withdrawn_at is not None


async def test_daily_subscribers_get_one_digest_and_other_districts_nothing(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = TelegramChat(runtime, clock)
    await subscribe(chat, frequency="daily")
    before = len(chat.sent_texts())
    mail(runtime, clock, "Первая новость.")
    mail(runtime, clock, "Вторая новость.")
    mail(runtime, clock, "Новость другого района.", area="north")
    assert mailings.send_digests(runtime.factory, RULES, clock.now(), LINKS) == 0  # not a day
    clock.advance(timedelta(days=1, minutes=1))
    assert mailings.send_digests(runtime.factory, RULES, clock.now(), LINKS) == 1
    assert mailings.send_digests(runtime.factory, RULES, clock.now(), LINKS) == 0
    await chat.deliver()
    [digest] = chat.sent_texts()[before:]
    assert digest.startswith("Новости за день: Плановые отключения.\n\nПервая новость.")
    assert "Вторая новость." in digest and "другого района" not in digest
    with runtime.factory() as session:
        assert len(session.exec(select(Mailing).order_by(col(Mailing.id))).all()) == 3
