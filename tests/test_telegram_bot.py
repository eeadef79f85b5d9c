"""The citizen bot over Telegram: webhook in, exact Bot API requests out (fake Bot API)."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlmodel import select

from bot.citizen import texts
from core.clock import FrozenClock
from core.config import Settings
from inbox import workflow
from inbox.models import (
    Application,
    AuditEvent,
    Conversation,
    DeliveryStatus,
    InboundRecord,
    Message,
    Operator,
    Rating,
)
from inbox.runtime import Runtime, build_runtime
from otklik.web import create_app
from tests.helpers.citizen_harness import (
    CITIZEN,
    GARBAGE_ANSWER,
    NOW,
    SECRET,
    TelegramChat,
    operator_replies,
)
from tests.helpers.payloads import payload
from tests.helpers.telegram_fake import TOKEN, fake_bot


@pytest.fixture
def chat(runtime: Runtime, clock: FrozenClock) -> TelegramChat:
    return TelegramChat(runtime, clock)


def _journal_size(runtime: Runtime) -> int:
    with runtime.factory() as session:
        return len(session.exec(select(InboundRecord)).all())


async def test_webhook_rejects_a_wrong_or_missing_secret_token(
    chat: TelegramChat, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    update = json.loads(payload("telegram", "private_message.json"))
    wrong = await chat.post(update, secret="guess")
    missing = await chat.post(update, secret=None)
    assert wrong.status_code == 403 and missing.status_code == 403
    assert "wrong or missing secret token" in caplog.text
    assert _journal_size(runtime) == 0
    assert chat.api.requests == []
    accepted = await chat.post(update)
    assert accepted.status_code == 200 and _journal_size(runtime) == 1


async def test_private_question_is_stored_and_answered_from_the_knowledge_base(
    chat: TelegramChat,
) -> None:
    update = json.loads(payload("telegram", "private_message.json"))
    response = await chat.post(update)
    assert response.status_code == 200
    report = await chat.deliver()
    assert len(report.sent) == 1
    [request] = chat.api.requests
    assert request.method == "sendMessage"
    assert request.data["chat_id"] == "391234567"
    assert request.data["text"].startswith(GARBAGE_ANSWER)
    assert request.json("reply_parameters")["message_id"] == 52
    buttons = [
        b["callback_data"] for row in request.json("reply_markup")["inline_keyboard"] for b in row
    ]
    assert buttons == [texts.MENU, texts.OPERATOR]
    conversation = chat.conversation()
    inbound, answer = chat.messages(conversation.id or 0)
    assert inbound.text.startswith("Здравствуйте! Во дворе дома 5")
    assert answer.meta["kb_entry_id"] == "garbage-not-collected"
    assert answer.delivery_status == DeliveryStatus.sent.value
    assert answer.external_id == "9000"
    assert conversation.status == "bot"  # the bot leads the dialogue


async def test_russian_in_latin_letters_is_answered_from_the_knowledge_base(
    chat: TelegramChat,
) -> None:
    """Not taken for English (#13): transliterated, it finds its entry."""
    await chat.say("vklyuchat li otoplenie v kvartire")
    await chat.deliver()
    conversation = chat.conversation()
    _, answer = chat.messages(conversation.id or 0)
    assert answer.meta["kb_entry_id"] == "heating-start"
    assert conversation.status == "bot"


async def test_not_our_topic_is_handed_to_an_operator(chat: TelegramChat) -> None:
    await chat.say("какая погода будет в выходные?")
    await chat.deliver()
    conversation = chat.conversation()
    assert conversation.status == "waiting_operator"
    assert chat.sent_texts() == [texts.HANDOFF_NOT_FOUND.format(number=conversation.number)]


async def test_a_resent_update_is_answered_once(chat: TelegramChat, runtime: Runtime) -> None:
    update = json.loads(payload("telegram", "private_message.json"))
    await chat.post(update)
    await chat.post(update)
    await chat.deliver()
    assert _journal_size(runtime) == 1
    assert len(chat.api.calls("sendMessage")) == 1


async def test_webhook_answers_503_when_the_database_is_down(clock: FrozenClock, tmp_path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/none",
        data_dir=tmp_path,
        telegram_token=TOKEN,
        telegram_webhook_secret=SECRET,
    )
    runtime = build_runtime(settings, clock=clock)
    app = create_app(runtime, start_scheduler=False)
    app.state.telegram_bot, _api = fake_bot()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://otklik") as client:
        response = await client.post(
            "/webhooks/telegram",
            content=payload("telegram", "private_message.json"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
    runtime.dispose()
    assert response.status_code == 503


async def test_call_operator_button_hands_off_and_stops_the_spinner(chat: TelegramChat) -> None:
    await chat.say("/start")
    await chat.deliver()
    assert chat.sent_texts() == [texts.GREETING]
    await chat.press(texts.OPERATOR)
    await chat.deliver()
    conversation = chat.conversation()
    assert conversation.status == "waiting_operator"
    [spinner] = chat.api.calls("answerCallbackQuery")
    assert spinner.data["callback_query_id"].startswith("cq")
    assert chat.sent_texts()[-1] == texts.HANDOFF_ASKED.format(number=conversation.number)
    # The pressed button is in the history as the citizen saw it.
    assert chat.messages(conversation.id or 0)[2].text == "Позвать оператора"
    assert "text" not in spinner.data
    # While an operator has it, the bot keeps quiet; a pressed button gets a short pop-up.
    await chat.say("Алло, вы тут?")
    await chat.press(texts.APPLY)
    assert (await chat.deliver()).sent == []
    assert chat.api.calls("answerCallbackQuery")[-1].data["text"] == texts.BUTTON_WHILE_OPERATOR


@pytest.mark.parametrize("phrase", ["оператор", "Позовите специалиста", "можно живого человека?"])
async def test_typed_request_for_a_person_hands_off(chat: TelegramChat, phrase: str) -> None:
    await chat.say(phrase)
    await chat.deliver()
    conversation = chat.conversation()
    assert conversation.status == "waiting_operator"
    with chat.runtime.factory() as session:
        handoff = session.exec(select(AuditEvent).where(AuditEvent.kind == "handoff")).one()
    assert handoff.data["reason"] == "citizen asked for an operator"


async def test_unknown_question_is_handed_to_an_operator_saying_so(chat: TelegramChat) -> None:
    await chat.say("Как оформить охотничий билет на лося?")
    await chat.deliver()
    conversation = chat.conversation()
    assert conversation.status == "waiting_operator"
    assert chat.sent_texts() == [texts.HANDOFF_NOT_FOUND.format(number=conversation.number)]


async def test_application_form_end_to_end_gives_a_number(chat: TelegramChat) -> None:
    await chat.say("/start")
    await chat.deliver()
    await chat.press(texts.APPLY)
    await chat.deliver()
    assert chat.sent_texts()[-1] == texts.APPLY_SERVICE
    assert [row[0]["text"] for row in chat.last_keyboard][:2] == [
        "Благоустройство двора",
        "Вывоз мусора",
    ]
    await chat.press("service:lighting")
    await chat.deliver()
    await chat.say("ул. Ленина, д. 5")
    await chat.deliver()
    await chat.say("Не горит фонарь у второго подъезда уже неделю")
    await chat.deliver()
    await chat.say("8 (900) 123-45-67")
    await chat.deliver()
    summary = chat.sent_texts()[-1]
    assert "Уличное освещение" in summary and "+79001234567" in summary
    await chat.press(texts.APPLY_CONFIRM)
    await chat.deliver()
    with chat.runtime.factory() as session:
        application = session.exec(select(Application)).one()
    assert application.number == f"З-2026-{application.id:06d}"
    assert application.service == "lighting"
    assert application.fields["address"] == "ул. Ленина, д. 5"
    assert application.fields["phone"] == "+79001234567"
    assert chat.sent_texts()[-1] == texts.APPLY_DONE.format(number=application.number)


async def test_form_keeps_its_place_across_a_restart(
    chat: TelegramChat, runtime: Runtime, clock: FrozenClock
) -> None:
    await chat.say("/start")
    await chat.press(texts.APPLY)
    await chat.press("service:roads")
    await chat.deliver()
    restarted = TelegramChat(runtime, clock)  # a new app, a new bot: only the database is kept
    restarted.last_keyboard = chat.last_keyboard
    restarted.continue_after(chat)
    await restarted.say("пр. Мира, 12")
    await restarted.deliver()
    assert restarted.sent_texts() == [texts.APPLY_DESCRIPTION]


async def test_bad_phone_is_asked_again(chat: TelegramChat) -> None:
    await chat.fill_application("yard", "ул. Садовая, 1", "Сломаны качели во дворе", "не скажу")
    await chat.deliver()
    assert chat.sent_texts()[-1] == texts.APPLY_BAD_PHONE


async def test_status_by_typed_number_and_from_own_list(chat: TelegramChat) -> None:
    await chat.fill_application(
        "garbage", "ул. Ленина, д. 5", "Третий день не вывозят мусор", "+7 900 123 45 67"
    )
    await chat.press(texts.APPLY_CONFIRM)
    with chat.runtime.factory() as session:
        application = session.exec(select(Application)).one()
        application.status = "in_progress"
        session.add(application)
        session.commit()
    number = application.number
    assert number is not None
    await chat.say(f"Какой статус у заявления {number.lower()}?")
    await chat.deliver()
    assert chat.sent_texts()[-1] == (
        f"Заявление {number} (Вывоз мусора), подано 23.11.2026. Статус: в работе."
    )
    await chat.press(texts.STATUS)
    await chat.deliver()
    assert chat.last_keyboard[0] == [{"id": f"status:{number}", "text": number}]
    await chat.press(f"status:{number}")
    await chat.deliver()
    assert chat.sent_texts()[-1].startswith(f"Заявление {number}")
    await chat.say("З-2026-999999")
    await chat.deliver()
    assert chat.sent_texts()[-1] == texts.STATUS_NOT_FOUND.format(number="З-2026-999999")


async def test_pay_a_fee_sends_the_link_with_its_qr_code(chat: TelegramChat) -> None:
    await chat.say("/start")
    await chat.press(texts.PAY)
    await chat.deliver()
    assert chat.last_keyboard[0][0] == {
        "id": "fee:excavation",
        "text": "Ордер на земляные работы — 1500 руб.",
    }
    await chat.press("fee:excavation")
    await chat.deliver()
    photo = chat.api.calls("sendPhoto")[-1]
    number = f"{chat.conversation().number}-excavation"
    link = f"https://pay.example/?purpose={'%D0%9E%D1%80%D0%B4%D0%B5%D1%80'}"
    caption = photo.data["caption"]
    assert link in caption and f"amount=1500&id={number}" in caption
    url = caption.split("по ссылке: ")[1].split("\n")[0]
    assert parse_qs(urlparse(url).query)["purpose"] == ["Ордер на земляные работы"]
    [png] = photo.files.values()
    assert photo.data["photo"].startswith("attach://")
    assert png.data.startswith(b"\x89PNG")


async def test_rating_is_asked_after_the_operator_closes_and_stored_with_the_kb_entry(
    chat: TelegramChat, runtime: Runtime, clock: FrozenClock
) -> None:
    await chat.post(json.loads(payload("telegram", "private_message.json")))
    await chat.deliver()
    conversation = chat.conversation()
    with runtime.factory() as session:
        anna = Operator(login="anna", display_name="Анна Операторова")
        session.add(anna)
        fresh = session.get(Conversation, conversation.id)
        assert fresh is not None
        workflow.close(session, fresh, clock.now(), by=anna, reason="answered by the bot")
        session.commit()
    bot = chat.app.state.citizen_bot
    assert len(bot.ask_for_ratings()) == 1
    assert bot.ask_for_ratings() == []  # asked once
    await chat.deliver()
    request = chat.api.calls("sendMessage")[-1]
    assert request.data["text"] == texts.RATE_PROMPT.format(number=conversation.number)
    assert "reply_parameters" not in request.data
    assert [b["text"] for b in chat.last_keyboard[0]] == ["1", "2", "3", "4", "5"]
    await chat.press(f"rate:{conversation.id}:5")
    await chat.press(f"rate:{conversation.id}:1")  # a second press does not change it
    await chat.deliver()
    with runtime.factory() as session:
        rating = session.exec(select(Rating)).one()
        opened = session.exec(select(Conversation)).all()
    assert (rating.score, rating.kb_entry_id) == (5, "garbage-not-collected")
    assert len(opened) == 1  # a rating opens no new appeal
    assert chat.sent_texts()[-2:] == [texts.RATE_THANKS, texts.RATE_ALREADY]


async def test_rating_of_someone_elses_conversation_is_ignored(
    chat: TelegramChat, runtime: Runtime, clock: FrozenClock
) -> None:
    await chat.say("оператор")
    conversation = chat.conversation()
    with runtime.factory() as session:
        fresh = session.get(Conversation, conversation.id)
        assert fresh is not None
        fresh.thread_key = "tg:1"  # someone else's dialogue
        workflow.close(session, fresh, clock.now())
        session.commit()
    await chat.press(f"rate:{conversation.id}:1")
    with runtime.factory() as session:
        assert session.exec(select(Rating)).all() == []


async def test_voice_goes_to_an_operator_with_its_file(chat: TelegramChat) -> None:
    await chat.post(json.loads(payload("telegram", "private_voice.json")))
    await chat.deliver()
    conversation = chat.conversation()
    assert conversation.status == "waiting_operator"
    voice = chat.messages(conversation.id or 0)[0]
    assert voice.attachments[0]["kind"] == "voice"
    assert voice.attachments[0]["ref"] == "AwACAgIAAxkBAAIBY2VoZ2"
    assert chat.sent_texts() == [texts.HANDOFF_VOICE.format(number=conversation.number)]


async def test_foreign_language_gets_a_bilingual_note_and_an_operator(chat: TelegramChat) -> None:
    await chat.say("Hello, the garbage was not collected in our yard for three days")
    await chat.deliver()
    conversation = chat.conversation()
    assert conversation.status == "waiting_operator"
    [note] = chat.sent_texts()
    assert note == texts.FOREIGN_HANDOFF["ru"] + "\n\n" + texts.FOREIGN_HANDOFF["en"]
    with chat.runtime.factory() as session:
        handoff = session.exec(select(AuditEvent).where(AuditEvent.kind == "handoff")).one()
    assert "en" in handoff.data["reason"] and "английский" in handoff.data["reason"]


async def test_flood_limit_429_is_retried_after_the_given_time_and_sent_once(
    chat: TelegramChat, clock: FrozenClock
) -> None:
    await chat.say("/start")
    chat.api.fail_next(429, "Too Many Requests: retry after 7", retry_after=7)
    first = await chat.deliver()
    assert first.retried and not first.sent
    assert (await chat.deliver()).sent == []  # not due yet
    clock.advance(timedelta(seconds=7))
    second = await chat.deliver()
    assert second.sent == first.retried
    assert (await chat.deliver()).sent == []
    assert len(chat.api.calls("sendMessage")) == 2  # the refused one and the delivered one
    with chat.runtime.factory() as session:
        message = session.get(Message, first.retried[0])
    assert message is not None and message.attempts == 2
    assert message.delivery_status == DeliveryStatus.sent.value


async def test_blocked_by_the_user_is_a_permanent_failure(chat: TelegramChat) -> None:
    await chat.say("/start")
    chat.api.fail_next(403, "Forbidden: bot was blocked by the user")
    report = await chat.deliver()
    assert report.failed and not report.retried


async def test_server_error_is_retried(chat: TelegramChat) -> None:
    await chat.say("/start")
    chat.api.fail_next(502, "Bad Gateway")
    report = await chat.deliver()
    assert report.retried and not report.failed


async def test_operator_reply_is_exactly_one_send_message_to_the_chat(
    chat: TelegramChat, runtime: Runtime, clock: FrozenClock
) -> None:
    await chat.say("оператор")
    await chat.deliver()
    before = len(chat.api.requests)
    operator_replies(runtime, clock, "Здравствуйте! Проверим и ответим до вечера.")
    await chat.deliver()
    await chat.deliver()
    [request] = chat.api.requests[before:]
    assert request.method == "sendMessage"
    assert request.data["chat_id"] == str(CITIZEN["id"])
    assert request.data["text"] == "Здравствуйте! Проверим и ответим до вечера."
    assert "reply_markup" not in request.data


async def test_operator_reply_to_a_post_comment_goes_into_the_thread(
    chat: TelegramChat, runtime: Runtime, clock: FrozenClock
) -> None:
    await chat.post(json.loads(payload("telegram", "discussion_comment.json")))
    await chat.deliver()
    assert chat.api.requests == []  # the bot does not talk in public comments
    with runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
        assert conversation.kind == "comment"
        workflow.reply(session, conversation, "Горячую воду дадут 27 ноября.", clock.now())
        session.commit()
    await chat.deliver()
    [request] = chat.api.requests
    assert request.data["chat_id"] == "-1002000000002"
    assert request.data["message_thread_id"] == "1040"
    assert request.json("reply_parameters")["message_id"] == 1045


async def test_long_polling_journals_answers_and_acknowledges_by_offset(
    chat: TelegramChat,
) -> None:
    from bot.telegram.cli import poll
    from bot.telegram.pipeline import TelegramPipeline

    update = json.loads(payload("telegram", "private_message.json"))
    chat.api.answer_next([update])
    pipeline = TelegramPipeline(chat.runtime, chat.app.state.citizen_bot, chat.bot)
    await poll(pipeline, chat.bot, rounds=2)
    first, second = chat.api.calls("getUpdates")
    assert "offset" not in first.data
    assert second.data["offset"] == str(update["update_id"] + 1)
    await chat.deliver()
    assert chat.sent_texts()[0].startswith(GARBAGE_ANSWER)
    assert _journal_size(chat.runtime) == 1


def test_the_app_runs_the_outbox_worker_that_delivers_bot_answers(
    runtime: Runtime, clock: FrozenClock
) -> None:
    import time

    from fastapi.testclient import TestClient

    chat = TelegramChat(runtime, clock)
    app = create_app(runtime, start_scheduler=True)
    app.state.telegram_bot, api = chat.bot, chat.api
    app.state.citizen_bot = chat.app.state.citizen_bot
    with TestClient(app) as client:
        response = client.post(
            "/webhooks/telegram",
            content=payload("telegram", "private_message.json"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while not api.calls("sendMessage") and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker runs every second in the app's own loop
    [request] = api.calls("sendMessage")
    assert request.data["text"].startswith(GARBAGE_ANSWER)


def test_webhook_is_off_without_a_token(runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(runtime, start_scheduler=False)) as client:
        response = client.post("/webhooks/telegram", json={"update_id": 1})
    assert response.status_code == 404


async def test_deep_link_start_greets_and_an_edit_is_not_answered_again(
    chat: TelegramChat,
) -> None:
    await chat.say("/start from-site")
    await chat.deliver()
    assert chat.sent_texts() == [texts.GREETING]
    edit = chat.message_update(text="/start", edit_date=NOW + 60)
    edit["edited_message"] = edit.pop("message")
    await chat.post(edit)
    assert (await chat.deliver()).sent == []


async def test_public_comments_get_no_rating_request_when_closed(
    chat: TelegramChat, runtime: Runtime, clock: FrozenClock
) -> None:
    await chat.post(json.loads(payload("telegram", "discussion_comment.json")))
    with runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
        workflow.close(session, conversation, clock.now())
        session.commit()
    assert chat.app.state.citizen_bot.ask_for_ratings() == []
