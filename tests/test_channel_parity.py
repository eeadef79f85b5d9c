"""The same citizen-bot scenarios on every chat channel: Telegram, VK, MAX and the web chat.

One suite, parametrised over the channels (``tests/helpers/channels.py`` holds how each
channel is fed its platform's real update format and how replies are read back), on SQLite
and PostgreSQL. docs/channels.md names the rows of the parity table these tests prove.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.citizen import mailing_texts, texts
from core.clock import FrozenClock, as_utc
from inbox.applications import Actor, ChangeRequest, change_status
from inbox.models import Application, Consent, Conversation, Rating, Subscription
from inbox.queue import queue_query
from inbox.runtime import Runtime
from tests.helpers.channels import CHANNELS, ChatAdapter, make_adapter
from tests.helpers.citizen_harness import GARBAGE_ANSWER, PAYMENT_TEMPLATE
from tests.helpers.max_api_server import FakeMaxApi
from tests.helpers.vk_api_server import FakeVkApi

PAYMENT_HOST = PAYMENT_TEMPLATE.split("?")[0]


@pytest.fixture(params=CHANNELS)
async def citizen(
    request: pytest.FixtureRequest,
    runtime: Runtime,
    clock: FrozenClock,
    vk_api: FakeVkApi,
    max_api: FakeMaxApi,
) -> AsyncIterator[ChatAdapter]:
    adapter = make_adapter(request.param, runtime, clock, vk_api, max_api)
    yield adapter
    await adapter.close()


async def test_greeting_shows_the_main_menu(citizen: ChatAdapter) -> None:
    await citizen.say(citizen.start_text)
    [greeting] = await citizen.replies()
    assert greeting.text == texts.GREETING
    # The same menu, row by row, with the labels the citizen reads.
    assert greeting.buttons == [[(b["id"], b["text"]) for b in row] for row in texts.MAIN_MENU]


async def test_the_platforms_own_start_button_greets(citizen: ChatAdapter) -> None:
    await citizen.start()
    [greeting] = await citizen.replies()
    assert greeting.text == texts.GREETING
    assert greeting.button_ids() == [b["id"] for row in texts.MAIN_MENU for b in row]


async def test_a_typical_question_gets_the_knowledge_base_answer(citizen: ChatAdapter) -> None:
    await citizen.say("Здравствуйте! Во дворе мусор не вывозят уже три дня")
    [answer] = await citizen.replies()
    assert answer.text.startswith(GARBAGE_ANSWER)
    assert answer.button_ids() == [texts.MENU, texts.OPERATOR]
    conversation = citizen.conversation()
    assert conversation.status == "bot" and conversation.kind == "appeal"


async def test_apply_then_ask_the_status_and_see_its_history(
    citizen: ChatAdapter, runtime: Runtime, clock: FrozenClock
) -> None:
    await citizen.say(citizen.start_text)
    await citizen.replies()
    await citizen.press(texts.APPLY)
    assert [r.text for r in await citizen.replies()] == [texts.APPLY_SERVICE]
    await citizen.press("service:lighting")
    for typed in ("ул. Ленина, д. 5", "Не горит фонарь у второго подъезда", "+7 900 123 45 67"):
        await citizen.replies()
        await citizen.say(typed)
    [summary] = await citizen.replies()
    assert "Уличное освещение" in summary.text and "+79001234567" in summary.text
    await citizen.press(texts.APPLY_CONFIRM)
    [done] = await citizen.replies()
    with runtime.factory() as session:
        application = session.exec(select(Application)).one()
        assert application.number is not None
        assert done.text == texts.APPLY_DONE.format(number=application.number)
        assert application.fields["phone"] == "+79001234567"
        change_status(
            session, application.id or 0,
            ChangeRequest("in_progress", comment="Бригада приедет в среду.",
                          expected_date=date(2026, 12, 1)),
            Actor("api", "backoffice"), clock.now(), ZoneInfo(runtime.rules.calendar.timezone),
        )  # fmt: skip
        session.commit()
    number = application.number
    [news] = await citizen.replies()  # status news in the channel the application came from
    assert news.text.startswith(f"Ваше заявление {number} взяли в работу.")
    await citizen.say(f"Какой статус у заявления {number}?")
    [status] = await citizen.replies()
    assert status.text == (
        f"Заявление {number} (Уличное освещение), подано 23.11.2026. Статус: в работе.\n"
        "История:\n"
        "23.11.2026 — подано.\n"
        "23.11.2026 — в работе. Срок: до 01.12.2026. Комментарий: Бригада приедет в среду."
    )
    await citizen.press(texts.MENU)
    await citizen.replies()
    await citizen.press(texts.STATUS)  # «Статус заявления» lists the citizen's own
    [pick] = await citizen.replies()
    assert pick.text == texts.STATUS_PICK
    assert f"{texts.STATUS_PREFIX}{number}" in pick.button_ids()


async def test_payment_link_for_a_fee(citizen: ChatAdapter) -> None:
    await citizen.say(citizen.start_text)
    await citizen.replies()
    await citizen.press(texts.PAY)
    [pick] = await citizen.replies()
    assert pick.text == texts.PAY_PICK and "fee:parking" in pick.button_ids()
    await citizen.press("fee:parking")
    [link] = await citizen.replies()
    number = citizen.conversation().number
    assert f"Оплатить можно по ссылке: {PAYMENT_HOST}?purpose=" in link.text
    assert "amount=500" in link.text and f"Номер платежа: {number}-parking" in link.text


async def test_hand_off_reaches_the_inbox_with_a_two_hour_deadline_and_the_reply_comes_back(
    citizen: ChatAdapter, clock: FrozenClock, runtime: Runtime
) -> None:
    await citizen.say(citizen.start_text)
    await citizen.replies()
    asked_at = clock.now()
    await citizen.press(texts.OPERATOR)
    conversation = citizen.conversation()
    assert [r.text for r in await citizen.replies()] == [
        texts.HANDOFF_ASKED.format(number=conversation.number)
    ]
    assert conversation.status == "waiting_operator"
    assert conversation.due_at is not None
    assert as_utc(conversation.due_at) == asked_at + timedelta(hours=2)
    with runtime.factory() as session:  # the operators' queue (/ui/inbox) lists it
        queued = session.exec(queue_query(channel=citizen.channel, unassigned=True)).all()
        assert [c.id for c in queued] == [conversation.id]
    clock.advance(timedelta(minutes=20))
    await citizen.say("Алло, вы тут?")
    assert await citizen.replies() == []  # the bot keeps quiet: an operator has it
    citizen.operator_replies("Добрый день! Мусор вывезут сегодня до 18:00.")
    assert [r.text for r in await citizen.replies()] == [
        "Добрый день! Мусор вывезут сегодня до 18:00."
    ]
    assert citizen.conversation().id == conversation.id


async def test_rating_after_the_operator_closes(citizen: ChatAdapter, runtime: Runtime) -> None:
    await citizen.say("мусор не вывозят")
    await citizen.replies()
    citizen.operator_replies("Мусор вывезут сегодня.")
    await citizen.replies()
    citizen.close_conversation()
    conversation = citizen.conversation()
    assert len(citizen.app.state.citizen_bot.ask_for_ratings()) == 1
    [prompt] = await citizen.replies()
    assert prompt.text == texts.RATE_PROMPT.format(number=conversation.number)
    assert [label for _, label in prompt.buttons[0]] == ["1", "2", "3", "4", "5"]
    await citizen.press(f"{texts.RATE_PREFIX}{conversation.id}:4")
    assert [r.text for r in await citizen.replies()] == [texts.RATE_THANKS]
    with runtime.factory() as session:
        [rating] = session.exec(select(Rating)).all()
        assert (rating.conversation_id, rating.score) == (conversation.id, 4)
        assert len(session.exec(select(Conversation)).all()) == 1  # no new appeal


async def test_stop_withdraws_consent_and_cancels_the_subscription(
    citizen: ChatAdapter, runtime: Runtime
) -> None:
    await citizen.say(citizen.start_text)
    await citizen.replies()
    await citizen.press(texts.SUBSCRIPTIONS)
    [topics] = await citizen.replies()
    topic = next(b for b in topics.button_ids() if b.startswith(mailing_texts.TOPIC_PREFIX))
    await citizen.press(topic)
    [step] = await citizen.replies()
    area = next(b for b in step.button_ids() if b.startswith(mailing_texts.AREA_PREFIX))
    await citizen.press(area)
    [frequency] = await citizen.replies()
    await citizen.press(frequency.button_ids()[0])
    [wording] = await citizen.replies()
    agree = next(b for b in wording.button_ids() if b.startswith(mailing_texts.AGREE_PREFIX))
    await citizen.press(agree)
    [subscribed] = await citizen.replies()
    assert subscribed.text.startswith("Готово: вы подписаны на рассылку")
    with runtime.factory() as session:
        [subscription] = session.exec(select(Subscription)).all()
        assert subscription.cancelled_at is None
    await citizen.say("Стоп")
    assert [r.text for r in await citizen.replies()] == [mailing_texts.STOPPED]
    with runtime.factory() as session:
        assert session.exec(select(Subscription)).one().cancelled_at is not None
        consents = session.exec(select(Consent)).all()
        assert consents and all(c.withdrawn_at is not None for c in consents)
