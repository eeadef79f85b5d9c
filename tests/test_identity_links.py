"""«Связать аккаунты»: a one-time code asked for in one chat channel and sent in another makes
one citizen of two records; abuse cases (floods of wrong codes, expired, reused, own code).
Real-format updates through each channel (tests/helpers/channels.py), SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.citizen import mailing_texts, texts
from core.clock import FrozenClock
from inbox import identity_links
from inbox.applications import Actor, ChangeRequest, change_status
from inbox.history import citizen_history
from inbox.models import (
    Application,
    AuditEvent,
    Citizen,
    Consent,
    Conversation,
    IdentityLinkCode,
    Subscription,
)
from inbox.runtime import Runtime
from tests.helpers.channels import ChatAdapter, MaxAdapter, TelegramAdapter, VkAdapter
from tests.helpers.max_api_server import FakeMaxApi
from tests.helpers.vk_api_server import FakeVkApi

CODE = re.compile(r"Код для связи аккаунтов: ([A-Z2-9]{4}-[A-Z2-9]{4})\.")


@pytest.fixture
async def telegram(runtime: Runtime, clock: FrozenClock) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(runtime, clock)
    yield adapter
    await adapter.close()


@pytest.fixture
async def max_chat(
    runtime: Runtime, clock: FrozenClock, max_api: FakeMaxApi
) -> AsyncIterator[MaxAdapter]:
    adapter = MaxAdapter(runtime, clock, max_api)
    yield adapter
    await adapter.close()


async def ask_code(citizen: ChatAdapter) -> str:
    await citizen.say("Связать аккаунты")
    [reply] = await citizen.replies()
    match = CODE.search(reply.text)
    assert match is not None, reply.text
    return match.group(1)


async def send(citizen: ChatAdapter, text: str) -> str:
    await citizen.say(text)
    [reply] = await citizen.replies()
    return reply.text


def citizens(runtime: Runtime) -> dict[str, int]:
    """Each channel's conversation's citizen."""
    with runtime.factory() as session:
        return {c.channel: c.citizen_id for c in session.exec(select(Conversation)).all()}


async def test_a_code_from_telegram_sent_in_max_makes_one_citizen_with_one_history(
    telegram: TelegramAdapter, max_chat: MaxAdapter, runtime: Runtime, clock: FrozenClock
) -> None:
    # An application in Telegram first.
    await telegram.say("/start")
    await telegram.replies()
    await telegram.press(texts.APPLY)
    await telegram.replies()
    await telegram.press("service:lighting")
    for typed in ("ул. Ленина, д. 5", "Не горит фонарь у подъезда", "+7 900 123 45 67"):
        await telegram.replies()
        await telegram.say(typed)
    await telegram.replies()
    await telegram.press(texts.APPLY_CONFIRM)
    await telegram.replies()
    await max_chat.say("мусор не вывозят")
    await max_chat.replies()
    before = citizens(runtime)
    assert before["telegram"] != before["max"]

    code = await ask_code(telegram)
    assert await send(max_chat, code.lower().replace("-", " - ")) == texts.LINK_DONE
    after = citizens(runtime)
    assert after["max"] == after["telegram"] == before["telegram"]
    with runtime.factory() as session:
        merged = session.get(Citizen, before["max"])
        assert merged is not None and merged.merged_into_id == before["telegram"]
        history = citizen_history(session, before["telegram"])
        assert {c.channel for c, _ in history} == {"telegram", "max"}  # the operator's view
        linked = session.exec(select(AuditEvent).where(AuditEvent.kind == "identity_linked")).one()
        assert linked.data["keep"] == before["telegram"] and linked.data["merged"] == before["max"]
        application = session.exec(select(Application)).one()
        assert application.citizen_id == before["telegram"]
    # In MAX, «Статус заявления» now lists the application filed in Telegram...
    await max_chat.press(texts.MENU)
    await max_chat.replies()
    await max_chat.press(texts.STATUS)
    [pick] = await max_chat.replies()
    assert f"{texts.STATUS_PREFIX}{application.number}" in pick.button_ids()
    # ...and its news still go to Telegram, where it was filed.
    with runtime.factory() as session:
        change_status(
            session, application.id or 0, ChangeRequest("in_progress"), Actor("api", "backoffice"),
            clock.now(), ZoneInfo(runtime.rules.calendar.timezone),
        )  # fmt: skip
        session.commit()
    [news] = await telegram.replies()
    assert news.text.startswith(f"Ваше заявление {application.number} взяли в работу")
    assert await max_chat.replies() == []


async def test_only_the_code_hash_is_stored_and_asking_again_replaces_the_code(
    telegram: TelegramAdapter, max_chat: MaxAdapter, runtime: Runtime
) -> None:
    first = await ask_code(telegram)
    second = await ask_code(telegram)
    assert first != second
    with runtime.factory() as session:
        rows = session.exec(select(IdentityLinkCode)).all()
    plain = second.replace("-", "")
    assert {r.code_hash for r in rows} >= {hashlib.sha256(plain.encode()).hexdigest()}
    assert all(plain not in r.code_hash and first not in r.code_hash for r in rows)
    assert await send(max_chat, first) == texts.LINK_WRONG  # replaced
    assert await send(max_chat, second) == texts.LINK_DONE


async def test_an_expired_code_links_nothing(
    telegram: TelegramAdapter, max_chat: MaxAdapter, runtime: Runtime, clock: FrozenClock
) -> None:
    code = await ask_code(telegram)
    clock.advance(identity_links.LIFETIME + timedelta(seconds=1))
    assert await send(max_chat, code) == texts.LINK_WRONG
    found = citizens(runtime)
    assert found["telegram"] != found["max"]


async def test_own_code_is_refused(telegram: TelegramAdapter, runtime: Runtime) -> None:
    await telegram.say("/start")
    await telegram.replies()
    await telegram.press(texts.LINK)  # the menu's «Связать аккаунты»
    [reply] = await telegram.replies()
    match = CODE.search(reply.text)
    assert match is not None
    code = match.group(1)
    assert await send(telegram, code) == texts.LINK_SELF
    with runtime.factory() as session:
        assert session.exec(select(Citizen).where(Citizen.merged_into_id != None)).all() == []  # noqa: E711


async def test_a_used_code_cannot_link_a_third_account(
    telegram: TelegramAdapter,
    max_chat: MaxAdapter,
    runtime: Runtime,
    clock: FrozenClock,
    vk_api: FakeVkApi,
) -> None:
    code = await ask_code(telegram)
    assert await send(max_chat, code) == texts.LINK_DONE
    vk = VkAdapter(runtime, clock, vk_api)
    assert await send(vk, code) == texts.LINK_WRONG
    found = citizens(runtime)
    assert found["vk"] != found["telegram"] == found["max"]


async def test_a_flood_of_wrong_codes_is_stopped_before_the_right_one(
    telegram: TelegramAdapter, max_chat: MaxAdapter, runtime: Runtime, clock: FrozenClock
) -> None:
    code = await ask_code(telegram)
    guesses = ["AAAA-AAAA", "ZZZZ-2222", "abcd-efgh", "2345-6789", "QWER-TYUP"]
    assert [await send(max_chat, g) for g in guesses] == [texts.LINK_WRONG] * 5
    assert await send(max_chat, code) == texts.LINK_TOO_MANY  # even the right one, now
    assert citizens(runtime)["max"] != citizens(runtime)["telegram"]
    clock.advance(timedelta(hours=1, minutes=1))  # an hour later: a fresh code works
    fresh = await ask_code(telegram)
    assert await send(max_chat, fresh) == texts.LINK_DONE


@pytest.mark.parametrize(
    "text", ["musornyi", "ABCD-EFG", "ABCD-EFGHI", "ABCD-EFG0", "ＡＢＣＤ-ＥＦＧＨ", "A" * 4000]
)
def test_not_a_code(text: str) -> None:
    assert identity_links.parse(text) is None


async def subscribe(citizen: ChatAdapter, topic: int) -> None:
    """«Рассылки» → the ``topic``-th topic → (the first area) → the first frequency →
    «Согласен»."""
    await citizen.say("/start" if citizen.channel == "telegram" else "Начать")
    await citizen.replies()
    await citizen.press(texts.SUBSCRIPTIONS)
    [topics] = await citizen.replies()
    await citizen.press(
        [b for b in topics.button_ids() if b.startswith(mailing_texts.TOPIC_PREFIX)][topic]
    )
    steps = (mailing_texts.AREA_PREFIX, mailing_texts.FREQUENCY_PREFIX, mailing_texts.AGREE_PREFIX)
    for _ in range(3):
        [reply] = await citizen.replies()
        if reply.text.startswith("Готово: вы подписаны"):
            return
        await citizen.press(next(b for b in reply.button_ids() if b.startswith(steps)))
    [done] = await citizen.replies()
    assert done.text.startswith("Готово: вы подписаны"), done.text


async def test_after_linking_stop_in_one_channel_withdraws_the_consents_given_in_both(
    telegram: TelegramAdapter, max_chat: MaxAdapter, runtime: Runtime
) -> None:
    await subscribe(telegram, 0)
    await subscribe(max_chat, 0)  # the same topic in both: one is kept after linking
    await subscribe(max_chat, 1)
    code = await ask_code(telegram)
    assert await send(max_chat, code) == texts.LINK_DONE
    kept = citizens(runtime)["telegram"]
    with runtime.factory() as session:
        live = session.exec(select(Subscription).where(Subscription.cancelled_at == None)).all()  # noqa: E711
        assert len(live) == 2 and {s.citizen_id for s in live} == {kept}
        assert {s.conversation_id for s in live} == {  # each still goes where it was made
            c.id for c in session.exec(select(Conversation)).all()
        }
    assert await send(telegram, "стоп") == mailing_texts.STOPPED
    with runtime.factory() as session:
        subscriptions = session.exec(select(Subscription)).all()
        assert len(subscriptions) == 3 and all(s.cancelled_at for s in subscriptions)
        consents = session.exec(select(Consent)).all()
        assert consents and all(c.withdrawn_at for c in consents)
