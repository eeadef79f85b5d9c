"""The phone-robot webhook: signatures, every event type, DTMF twins of voice choices, the
operator on «0», recordings, repeats stored once, and robot texts that pass readability."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from bot.phone import robot as texts
from bot.phone.robot import MENU, Robot, spoken, voice_choice
from bot.phone.signature import sign
from bot.phone.webhook import phone_sender
from core.clock import FrozenClock, as_utc
from inbox.models import (
    Application,
    AuditEvent,
    Conversation,
    InboundRecord,
    Message,
    SlaClock,
)
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from knowledge_base.readability import check_text
from knowledge_base.search import KnowledgeBase
from otklik.web import create_app
from tests.helpers.phone import AGENCY, HOT_WATER, POTHOLE, SECRET, call_event, post, small_kb


@pytest.fixture
def phone(runtime: Runtime) -> Iterator[tuple[TestClient, Runtime]]:
    settings = runtime.settings.model_copy(update={"phone_secret": SECRET})
    rt = dataclasses.replace(runtime, settings=settings)
    app = create_app(rt, start_scheduler=False)
    app.state.phone_robot = Robot(small_kb(), agency=AGENCY)
    with TestClient(app) as client:
        yield client, rt


def said(rt: Runtime) -> list[Message]:
    with rt.factory() as session:
        query = select(Message).where(Message.direction == "out").order_by(Message.id)  # type: ignore[arg-type]
        return list(session.exec(query))


def conversation(rt: Runtime) -> Conversation:
    with rt.factory() as session:
        return session.exec(select(Conversation)).one()


def test_signed_request_is_accepted(phone: tuple[TestClient, Runtime], clock: FrozenClock) -> None:
    client, _ = phone
    assert post(client, clock, call_event("call_started.json")).status_code == 200


@pytest.mark.parametrize(
    ("secret", "age", "reason"),
    [
        ("someone-else", timedelta(0), "bad signature"),
        (SECRET, timedelta(minutes=5, seconds=1), "stale timestamp"),
        (SECRET, -timedelta(minutes=6), "stale timestamp"),
    ],
)
def test_bad_or_stale_signature_is_rejected_logged_and_not_stored(
    phone: tuple[TestClient, Runtime],
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
    secret: str,
    age: timedelta,
    reason: str,
) -> None:
    client, rt = phone
    answer = post(client, clock, call_event("call_started.json"), secret=secret, age=age)
    assert answer.status_code == 401 and reason in answer.json()["detail"]
    assert reason in caplog.text
    with rt.factory() as session:
        assert session.exec(select(InboundRecord)).all() == []


def test_a_signature_just_inside_five_minutes_is_accepted(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, _ = phone
    answer = post(client, clock, call_event("call_started.json"), age=timedelta(minutes=4))
    assert answer.status_code == 200


def test_unsigned_and_tampered_bodies_are_rejected(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, _ = phone
    assert client.post("/webhooks/phone", json=call_event("call_started.json")).status_code == 401
    body = json.dumps(call_event("call_started.json")).encode()
    timestamp = str(int(clock.now().timestamp()))
    headers = {"X-Otklik-Timestamp": timestamp, "X-Otklik-Signature": sign(SECRET, timestamp, body)}
    tampered = body.replace(b"+79161234567", b"+79990000000")
    assert client.post("/webhooks/phone", content=tampered, headers=headers).status_code == 401


def test_call_started_opens_an_appeal_and_the_robot_greets_with_the_menu(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone
    answer = post(client, clock, call_event("call_started.json")).json()
    assert answer["say"].startswith(f"Здравствуйте! Это {AGENCY}.")
    assert answer["action"] == "listen"
    assert answer["menu"] == [
        {"digit": "1", "title": "вопросы ЖКХ"},
        {"digit": "2", "title": "дороги и дворы"},
        {"digit": "3", "title": "статус заявления"},
        {"digit": "0", "title": "оператор"},
    ]
    opened = conversation(rt)
    assert answer["conversation"] == opened.number
    assert (opened.channel, opened.kind, opened.thread_key) == (
        "phone", "appeal", "phone:call-20261123-0042",
    )  # fmt: skip
    [greeting] = said(rt)
    assert greeting.channel == "phone" and greeting.text == answer["say"]
    assert greeting.meta["menu"] == answer["menu"] and greeting.meta["readability"]["ok"]


def test_utterance_is_answered_with_the_short_answer_from_the_knowledge_base(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone
    post(client, clock, call_event("call_started.json"))
    answer = post(client, clock, call_event("utterance.json")).json()
    assert answer["say"] == f"{HOT_WATER} {texts.AFTER_ANSWER}"
    assert answer["action"] == "listen"
    assert said(rt)[-1].meta["kb_entry"] == "hot-water"
    with rt.factory() as session:
        heard = session.exec(select(Message).where(Message.direction == "in")).all()
    assert "горячей воды" in heard[-1].text


def test_question_the_base_cannot_answer_goes_to_an_operator(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone
    post(client, clock, call_event("call_started.json"))
    question = call_event("utterance.json", event_id="evt-q", text="сколько стоит билет в цирк")
    answer = post(client, clock, question).json()
    assert answer["say"] == texts.NO_ANSWER and answer["action"] == "transfer"
    assert conversation(rt).status == "waiting_operator"


def test_unclear_speech_is_asked_again(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, _ = phone
    mumble = call_event("utterance.json", confidence=0.2)
    assert post(client, clock, mumble).json()["say"] == texts.NOT_HEARD


@pytest.mark.parametrize(
    ("digit", "phrase"),
    [("1", "вопросы ЖКХ"), ("2", "дороги и дворы"), ("3", "статус заявления"), ("0", "оператор")],
)
def test_each_dtmf_digit_routes_like_its_voice_choice(
    phone: tuple[TestClient, Runtime], clock: FrozenClock, digit: str, phrase: str
) -> None:
    client, _ = phone
    by_key = post(client, clock, call_event("dtmf.json", digits=digit, call_id=f"k{digit}"))
    spoken = call_event("utterance.json", event_id=f"v{digit}", call_id=f"v{digit}", text=phrase)
    by_voice = post(client, clock, spoken)
    assert by_key.status_code == by_voice.status_code == 200
    key_answer, voice_answer = by_key.json(), by_voice.json()
    key_answer.pop("conversation"), voice_answer.pop("conversation")
    assert key_answer == voice_answer


@pytest.mark.parametrize(
    ("phrase", "digit"),
    [("мне про ЖКХ", "1"), ("вопросы по дорогам", "2"), ("соедините с человеком", "0"),
     ("яма во дворе", None), ("у нас в доме нет горячей воды", None)],
)  # fmt: skip
def test_short_menu_phrases_are_choices_and_questions_are_not(
    phrase: str, digit: str | None
) -> None:
    choice = voice_choice(phrase)
    assert (choice.digit if choice else None) == digit


def test_zero_reaches_an_operator_with_a_running_response_clock(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone
    post(client, clock, call_event("call_started.json"))
    answer = post(client, clock, call_event("dtmf.json")).json()  # digits "0"
    assert answer["say"] == texts.TO_OPERATOR and answer["action"] == "transfer"
    assert answer["menu"] == []
    current = conversation(rt)
    assert current.status == "waiting_operator"
    with rt.factory() as session:
        clocks = session.exec(select(SlaClock).where(SlaClock.status == "running")).all()
        handoff = session.exec(select(AuditEvent).where(AuditEvent.kind == "handoff")).one()
    assert len(clocks) == 1 and as_utc(clocks[0].due_at) > clock.now()
    assert "оператор" in handoff.data["reason"]


def test_topic_chosen_then_the_question_is_answered(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone
    choice = post(client, clock, call_event("dtmf.json", digits="2")).json()
    assert choice["say"] == texts.TOPIC_PROMPT.format(title="дороги и дворы")
    question = call_event("utterance.json", text="большая яма на дороге во дворе")
    assert post(client, clock, question).json()["say"].startswith(POTHOLE)
    assert conversation(rt).topic == "Дворы и дороги"


def test_application_status_by_its_number_typed_on_the_keypad(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone
    post(client, clock, call_event("call_started.json"))
    with rt.factory() as session:
        citizen_id = conversation(rt).citizen_id
        session.add(
            Application(
                number="З-2026-000042",
                citizen_id=citizen_id,
                service="spravka",
                status="in_progress",
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        session.commit()
    assert post(client, clock, call_event("dtmf.json", digits="3")).json()["say"] == (
        texts.STATUS_PROMPT
    )
    typed = call_event("dtmf.json", event_id="evt-number", digits="2026000042#")
    assert post(client, clock, typed).json()["say"] == (
        "Заявление З-2026-000042. Сейчас оно в работе. Мы сообщим, когда будет ответ."
    )
    wrong = call_event("dtmf.json", event_id="evt-wrong", digits="3")
    post(client, clock, wrong)
    unknown = call_event("dtmf.json", event_id="evt-unknown", digits="1999999#")
    assert post(client, clock, unknown).json()["say"] == texts.STATUS_NOT_FOUND


def test_recording_attaches_to_the_calls_conversation(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone
    post(client, clock, call_event("call_started.json"))
    post(client, clock, call_event("call_ended.json"))
    answer = post(client, clock, call_event("recording.json")).json()
    assert (answer["say"], answer["action"], answer["menu"]) == (None, "none", [])
    with rt.factory() as session:
        conversations = session.exec(select(Conversation)).all()
        recorded = [m for m in session.exec(select(Message)) if m.attachments]
    assert len(conversations) == 1
    assert recorded[0].conversation_id == conversations[0].id
    assert recorded[0].attachments[0]["kind"] == "recording"
    assert recorded[0].attachments[0]["ref"].endswith("call-20261123-0042.ogg")


def test_call_ended_needs_nothing_said(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone
    post(client, clock, call_event("call_started.json"))
    answer = post(client, clock, call_event("call_ended.json")).json()
    assert answer["say"] is None and answer["action"] == "none"
    assert len(said(rt)) == 1  # the greeting only


def test_same_event_twice_is_stored_once_and_answered_the_same(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone
    post(client, clock, call_event("call_started.json"))
    first = post(client, clock, call_event("dtmf.json")).json()
    again = post(client, clock, call_event("dtmf.json")).json()
    assert first == again
    with rt.factory() as session:
        journal = session.exec(select(InboundRecord)).all()
        handoffs = session.exec(select(AuditEvent).where(AuditEvent.kind == "handoff")).all()
    assert len(journal) == 2 and len(handoffs) == 1
    assert [m.text for m in said(rt)].count(texts.TO_OPERATOR) == 1


def test_invalid_event_is_refused_with_the_reason(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, _ = phone
    broken = call_event("dtmf.json", digits="12a")
    answer = post(client, clock, broken)
    assert answer.status_code == 422 and "digits" in answer.json()["detail"]


async def test_the_outbox_marks_what_the_robot_said_as_delivered(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone
    post(client, clock, call_event("call_started.json"))
    [greeting] = said(rt)
    assert greeting.delivery_status == "queued"
    report = await Outbox(rt.factory, clock, {"phone": phone_sender}).deliver_once()
    assert report.sent == [greeting.id]
    assert said(rt)[0].delivery_status == "sent"


def test_every_text_the_robot_speaks_passes_the_readability_check() -> None:
    spoken = [
        texts.GREETING.format(agency=AGENCY),
        *(texts.TOPIC_PROMPT.format(title=c.title) for c in MENU if c.topic),
        texts.STATUS_PROMPT,
        *(
            texts.STATUS_FOUND.format(number="З-2026-000042", status=status)
            for status in [*texts.STATUS_LABELS.values(), texts.STATUS_UNKNOWN]
        ),
        texts.STATUS_NOT_FOUND,
        texts.TO_OPERATOR,
        texts.NO_ANSWER,
        texts.NOT_HEARD,
        texts.NO_SUCH_DIGIT,
        f"{HOT_WATER} {texts.AFTER_ANSWER}",
    ]
    for text in spoken:
        report = check_text(text)
        assert report.ok, (text, report.failures)


def test_knowledge_base_short_answers_spoken_by_the_robot_pass_readability() -> None:
    kb = KnowledgeBase.load()
    failing = [
        entry.id
        for entry in kb.entries
        if not check_text(f"{spoken(entry.short_answer)} {texts.AFTER_ANSWER}").ok
    ]
    assert failing == []


def test_spoken_answer_leaves_out_the_invitation_to_private_messages() -> None:
    short = "Летом горячую воду отключают на 10 дней. Напишите нам в личные сообщения адрес."
    assert spoken(short) == "Летом горячую воду отключают на 10 дней."
    assert spoken("Напишите нам в личные сообщения.") == "Напишите нам в личные сообщения."


def test_phone_endpoint_is_off_without_its_secret(runtime: Runtime, clock: FrozenClock) -> None:
    with TestClient(create_app(runtime, start_scheduler=False)) as client:
        assert post(client, clock, call_event("call_started.json")).status_code == 404


def test_cli_prints_the_json_schema() -> None:
    from otklik.cli import app

    result = CliRunner().invoke(app, ["phone", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"event_id", "type", "call_id", "timestamp", "caller"}
    assert schema["$defs"]["PhoneEventType"]["enum"] == [
        "call.started", "call.utterance", "call.dtmf", "call.ended", "call.recording",
    ]  # fmt: skip


def test_the_documented_signature_example_is_right() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "phone-webhook.md").read_text(encoding="utf-8")
    body = re.search(r"^(\{\"event_id\":\"evt-7f3a-0002\".*\})$", doc, re.MULTILINE)
    signature = re.search(r"X-Otklik-Signature: (sha256=[0-9a-f]{64})", doc)
    assert body and signature
    assert sign("phone-shared-secret", 1795415412, body.group(1).encode()) == signature.group(1)


def test_long_event_ids_with_a_common_prefix_get_distinct_answer_keys(
    phone: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone
    prefix = "robot-platform-7f3a9c1b-" * 4
    post(client, clock, call_event("call_started.json", event_id=prefix + "started"))
    post(client, clock, call_event("dtmf.json", event_id=prefix + "dtmf-1", digits="1"))
    keys = [m.idempotency_key for m in said(rt)]
    assert len(keys) == 2 and len(set(keys)) == 2
    assert all(key and len(key) <= 64 for key in keys)
