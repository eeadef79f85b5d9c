"""Consent and mailings through the real bot entry point (Telegram webhook → bot → outbox →
the fake Bot API): subscribing shows and keeps the consent's wording, a mailing reaches
subscribers once, «стоп» or «Отписаться» stop the next message, even one already queued."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from bot.citizen import mailing_texts as t
from bot.citizen import texts
from core.clock import FrozenClock
from inbox import mailings
from inbox.mailings import MailingDraft
from inbox.models import AuditEvent, Consent, Mailing, Message, Subscription
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from otklik.web import create_app
from rules.errors import RulesFileError
from rules.proactive import SHIPPED, proactive_rules
from tests.helpers.applications_bot import vk_post
from tests.helpers.citizen_harness import TelegramChat, citizen_bot
from tests.helpers.consent import LINKS, RULES, WORDING, mail, subscribe, webchat_subscribe
from tests.helpers.vk import vk_settings
from tests.helpers.vk_api_server import FakeVkApi


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


# -- the web chat and VK ------------------------------------------------------------------------


def test_web_chat_subscribes_gets_the_mailing_and_a_stop_withholds_the_next(
    runtime: Runtime, clock: FrozenClock
) -> None:
    app = create_app(runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    visitor = TestClient(app)
    webchat_subscribe(visitor)
    seen = visitor.get("/api/chat/messages").json()
    assert seen[-1]["text"].startswith("Готово: вы подписаны на рассылку «Отопительный сезон»")
    consent_shown = [m["text"] for m in seen if m["text"].startswith("Прочитайте")]
    assert consent_shown == [t.CONSENT_PROMPT.format(wording=RULES.consent_text(
        "service", "heating_season"))]  # fmt: skip
    first = mail_topic(runtime, clock, "heating_season", "Отопление включат 1 октября.")
    news = visitor.get(f"/api/chat/messages?after={seen[-1]['id']}").json()
    assert [m["text"].split("\n")[0] for m in news] == ["Отопление включат 1 октября."]
    assert news[0]["buttons"][0][0]["text"] == "Отписаться"
    mail_topic(runtime, clock, "heating_season", "Отопление выключат 15 мая.")
    # «стоп» arrives before the page fetches the queued mailing: it is never shown.
    assert visitor.post("/api/chat/messages", json={"text": "СТОП"}).status_code == 200
    after = visitor.get(f"/api/chat/messages?after={news[-1]['id']}").json()
    texts_after = [m["text"] for m in after]
    assert "Отопление выключат 15 мая." not in " ".join(texts_after)
    assert texts_after[-1] == t.STOPPED
    with runtime.factory() as session:
        assert mailings.figures(session, first).sent == 1
        withheld = session.exec(select(Message).where(Message.delivery_status == "withheld"))
        assert len(withheld.all()) == 1


def mail_topic(runtime: Runtime, clock: FrozenClock, topic: str, text: str) -> int:
    with runtime.factory() as session:
        mailing = mailings.create(
            session, RULES, MailingDraft(topic, None, text, None), clock.now(), by="boss"
        )
        session.commit()
        assert mailing.id is not None
    mailings.send_due(runtime.factory, RULES, clock.now(), LINKS)
    return mailing.id


def test_vk_one_word_withdraws_every_consent(
    runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi
) -> None:
    app = create_app(vk_settings(runtime), start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    counter = [0]
    with TestClient(app) as client:

        def press(button_id: str) -> None:
            vk_post(client, "message_new_button.json", counter,
                    payload=json.dumps({"id": button_id}), text="…")  # fmt: skip

        steps = ["sub:child_benefits", "subf:child_benefits:all:weekly"]
        for button_id in (texts.SUBSCRIPTIONS, *steps, "subok:child_benefits:all:weekly"):
            press(button_id)
        with runtime.factory() as session:
            given = session.exec(select(Consent)).one()
            assert given.scope_id == "child_benefits" and given.withdrawn_at is None
            assert session.exec(select(Subscription)).one().frequency == "weekly"
        vk_post(client, "message_new.json", counter, text="отписаться")
    with runtime.factory() as session:
        assert session.exec(select(Consent)).one().withdrawn_via == "bot"
        assert session.exec(select(Subscription)).one().cancelled_at is not None
        last = session.exec(
            select(Message).where(Message.direction == "out").order_by(col(Message.id).desc())
        ).first()
        assert last is not None and last.text == t.STOPPED


def test_the_proactive_rules_file_is_checked_and_names_what_is_wrong(tmp_path: Path) -> None:
    assert proactive_rules(tmp_path) == RULES  # no file in the directory: the shipped one
    shipped = SHIPPED.read_text(encoding="utf-8")
    for broken, words in (
        (shipped.replace("service: outages,", "service: nothing,"), "unknown service nothing"),
        (shipped.replace("{what}", "то"), "{what}"),
        (shipped.replace("- {id: yard_works, title", "- {id: outages, title"), "repeated id"),
        ("wording: [", "not valid YAML"),
    ):
        (tmp_path / "proactive.yaml").write_text(broken, encoding="utf-8")
        with pytest.raises(RulesFileError) as error:
            proactive_rules(tmp_path)
        assert "proactive.yaml" in str(error.value) and words in str(error.value), words
    assert RULES.is_stop(" Стоп! ") and RULES.is_stop("ОТПИСАТЬСЯ") and not RULES.is_stop("не стоп")


async def test_stop_while_an_operator_has_the_conversation_is_obeyed_but_is_no_answer(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = TelegramChat(runtime, clock)
    await subscribe(chat)
    await chat.press(texts.OPERATOR)
    await chat.deliver()
    waiting = chat.conversation()
    assert waiting.status == "waiting_operator"
    await chat.say("стоп")
    await chat.deliver()
    assert chat.sent_texts()[-1] == t.STOPPED
    after = chat.conversation()
    assert (after.status, after.due_at) == ("waiting_operator", waiting.due_at)
    with runtime.factory() as session:
        assert session.exec(select(Consent)).one().withdrawn_at is not None
