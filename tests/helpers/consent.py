"""Subscribing citizens to mailings (consents) from the channels."""

from __future__ import annotations

from fastapi.testclient import TestClient

from bot.citizen import mailing_texts as t
from bot.citizen import texts
from core.clock import FrozenClock
from inbox import mailings
from inbox.mailings import MailingDraft, Unsubscribe
from inbox.runtime import Runtime
from rules.proactive import SHIPPED, load_proactive_rules
from tests.helpers.citizen_harness import TelegramChat

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


def webchat_subscribe(visitor: TestClient) -> None:
    visitor.get("/chat")
    for step in (
        {"text": "привет"}, {"button": texts.SUBSCRIPTIONS}, {"button": "sub:heating_season"},
        {"button": "subf:heating_season:all:now"}, {"button": "subok:heating_season:all:now"},
    ):  # fmt: skip
        assert visitor.post("/api/chat/messages", json=step).status_code == 200
