"""Issue #9, item 2: a message with code points no database can store is cleaned at the edge.

A lone surrogate (``"a \\ud83d"``: half of an emoji's UTF-16 pair, valid JSON) or a NUL used
to be acknowledged and then fail processing on every retry: SQLite and psycopg cannot encode
the surrogate, PostgreSQL refuses it in JSON (so the webhook answered 503 and the platform
retried forever) and NUL in text; one NUL in a journal row even broke PostgreSQL's
``event ->> 'thread_key'`` and with it the whole catch-up scan. The web chat answered 500.
Each channel is driven here with its own payload format through its real entry point; the
event is stored, processed and answered, with U+FFFD where the bad code point was.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import col, select

from bot.email.channel import EmailChannel
from bot.email.parse import raw_bytes, raw_payload
from bot.normalize import normalize
from bot.phone.robot import Robot
from bot.phone.signature import sign
from bot.webchat.routes import COOKIE
from core.clock import FrozenClock
from core.config import Settings
from core.events import Attachment, Author, Channel, Facts, InboundEvent, Place
from inbox.db import make_engine, upgrade
from inbox.models import Identity, InboundRecord, Message
from inbox.runtime import Runtime, build_runtime
from otklik.web import create_app
from tests.helpers.citizen_harness import SECRET as TELEGRAM_SECRET
from tests.helpers.citizen_harness import TelegramChat, citizen_bot
from tests.helpers.mail_servers import PASSWORD, USER, Dovecot, SmtpServer, dovecot, smtp_server
from tests.helpers.payloads import PG_URL, payload
from tests.helpers.phone import SECRET as PHONE_SECRET
from tests.helpers.phone import small_kb
from tests.helpers.vk import vk_settings

__all__ = ["dovecot", "smtp_server"]  # fixtures

LONE = "\ud83d"  # the first half of 😀's UTF-16 pair, alone
FFFD = "\ufffd"


def escaped_json(data: dict[str, Any]) -> bytes:
    """JSON as platforms send it: non-ASCII as \\u escapes, so a lone surrogate is valid."""
    return json.dumps(data).encode("ascii")


def inbound(runtime: Runtime) -> list[Message]:
    with runtime.factory() as session:
        query = select(Message).where(Message.direction == "in").order_by(col(Message.id))
        return list(session.exec(query))


def journal(runtime: Runtime) -> list[InboundRecord]:
    with runtime.factory() as session:
        return list(session.exec(select(InboundRecord).order_by(col(InboundRecord.id))))


def bot_answers(runtime: Runtime) -> list[Message]:
    with runtime.factory() as session:
        query = select(Message).where(Message.direction == "out", Message.author_kind == "bot")
        return list(session.exec(query))


def assert_processed(runtime: Runtime) -> None:
    rows = journal(runtime)
    assert rows, "nothing journalled"
    for row in rows:
        assert row.error is None, row.error
        assert row.processed_at is not None


# -- the normalized event ------------------------------------------------------------------


def test_every_string_of_the_event_is_made_storable() -> None:
    event = InboundEvent(
        channel=Channel.telegram,
        external_id=f"42{LONE}",
        thread_key="tg:1\x00",
        author=Author(external_id="1", display_name=f"Анна{LONE}", username="a\udc00"),
        text=f"Помогите {LONE} нет воды\x00 😀 \ud83d\ude00",
        attachments=[Attachment(kind="document", name=f"акт{LONE}.pdf")],
        published_at=datetime(2026, 11, 23, 9, tzinfo=UTC),
        facts=Facts(place=Place.private, mentions=[f"@x{LONE}"], extra={f"k{LONE}": [f"v{LONE}"]}),
        reply_target={"chat_id": 1, "note": "\x00"},
        raw={"message": {"text": f"Помогите {LONE}", f"key{LONE}": None}},
    )
    assert event.text == f"Помогите {FFFD} нет воды{FFFD} 😀 😀"  # a written-out pair is joined
    assert event.external_id == f"42{FFFD}" and event.thread_key == f"tg:1{FFFD}"
    assert event.author.display_name == f"Анна{FFFD}" and event.author.username == f"a{FFFD}"
    assert event.attachments[0].name == f"акт{FFFD}.pdf"
    assert event.facts.mentions == [f"@x{FFFD}"]
    assert event.facts.extra == {f"k{FFFD}": [f"v{FFFD}"]}
    assert event.reply_target == {"chat_id": 1, "note": FFFD}
    assert event.raw == {"message": {"text": f"Помогите {FFFD}", f"key{FFFD}": None}}
    json.dumps(event.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")  # encodable
    again = InboundEvent.model_validate(json.loads(json.dumps(event.model_dump(mode="json"))))
    assert again == event


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_at_0004(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database migrated up to the revision before this fix (0004)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
        upgrade(url, "0004")
        yield url
        return
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"otklik_old_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url, "0004")
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_poisoned_rows_journalled_before_the_fix_are_processed_after_the_upgrade(
    db_at_0004: str, clock: FrozenClock, tmp_path: Path
) -> None:
    """SQLite kept a lone surrogate, PostgreSQL a NUL escape (which broke its catch-up scan):
    after ``otklik db upgrade`` both are processed, with U+FFFD."""
    event = private_event("старое").model_dump(mode="json")
    event["text"] = f"старое {LONE}\x00"  # as journalled before: nothing was cleaned then
    expected = f"старое {FFFD}{FFFD}"
    if db_at_0004.startswith("postgresql"):
        event["text"], expected = "старое \x00", f"старое {FFFD}"  # it never took a surrogate
    engine = make_engine(db_at_0004)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO inbound_event (channel, external_id, received_at, event) "
                "VALUES ('telegram', 'old-1', :at, :event)"
            ),
            {"at": clock.now(), "event": json.dumps(event)},
        )
    engine.dispose()
    upgrade(db_at_0004)
    runtime = build_runtime(Settings(database_url=db_at_0004, data_dir=tmp_path), clock=clock)
    try:
        assert runtime.inbox.process_pending() == 1
        [message] = inbound(runtime)
        assert message.text == expected
    finally:
        runtime.dispose()


def private_event(text: str) -> InboundEvent:
    return InboundEvent(
        channel=Channel.telegram,
        external_id="old-1",
        thread_key="tg:391234567",
        author=Author(external_id="391234567", display_name="Анна"),
        text=text,
        published_at=datetime(2026, 11, 23, 9, tzinfo=UTC),
        facts=Facts(place=Place.private),
        reply_target={"chat_id": 391234567},
    )


# -- Telegram --------------------------------------------------------------------------------


def test_telegram_text_with_a_lone_surrogate_is_stored_processed_and_answered(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = TelegramChat(runtime, clock)
    update = chat.message_update(text=f"Во дворе не вывозят мусор {LONE}")
    update["message"]["from"] = {**update["message"]["from"], "first_name": f"Анна{LONE}"}
    with TestClient(chat.app) as client:
        answer = client.post(
            "/webhooks/telegram",
            content=escaped_json(update),
            headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
        )
    assert answer.status_code == 200
    assert_processed(runtime)
    [message] = inbound(runtime)
    assert message.text == f"Во дворе не вывозят мусор {FFFD}"
    with runtime.factory() as session:
        identity = session.exec(select(Identity)).one()
        assert identity.display_name == f"Анна{FFFD}"
    assert bot_answers(runtime), "the citizen bot answered"


# -- VK --------------------------------------------------------------------------------------


def test_vk_message_with_a_lone_surrogate_and_a_nul_is_stored_and_processed(
    runtime: Runtime, clock: FrozenClock
) -> None:
    rt = vk_settings(runtime)
    app = create_app(rt, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(rt, clock)
    data = json.loads(payload("vk", "message_new.json"))
    data["object"]["message"]["text"] = f"Не горит свет {LONE} в подъезде\x00"
    with TestClient(app) as client:
        answer = client.post("/webhooks/vk", content=escaped_json(data))
    assert (answer.status_code, answer.text) == (200, "ok")
    assert_processed(rt)
    [message] = inbound(rt)
    assert message.text == f"Не горит свет {FFFD} в подъезде{FFFD}"
    assert bot_answers(rt), "the citizen bot answered"


# -- phone -----------------------------------------------------------------------------------


@pytest.fixture
def phone_client(runtime: Runtime) -> Iterator[tuple[TestClient, Runtime]]:
    rt = dataclasses.replace(
        runtime, settings=runtime.settings.model_copy(update={"phone_secret": PHONE_SECRET})
    )
    app = create_app(rt, start_scheduler=False)
    app.state.phone_robot = Robot(small_kb(), agency="Департамент городского хозяйства")
    with TestClient(app) as client:
        yield client, rt


def signed(clock: FrozenClock, data: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = escaped_json(data)
    timestamp = int(clock.now().timestamp())
    return body, {
        "Content-Type": "application/json",
        "X-Otklik-Timestamp": str(timestamp),
        "X-Otklik-Signature": sign(PHONE_SECRET, timestamp, body),
    }


def test_phone_utterance_with_a_lone_surrogate_and_a_nul_gets_the_robots_answer(
    phone_client: tuple[TestClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = phone_client
    data = json.loads(payload("phone", "utterance.json"))
    data |= {"text": f"у нас нет горячей воды {LONE}\x00", "event_id": f"evt-{LONE}"}
    body, headers = signed(clock, data)
    answer = client.post("/webhooks/phone", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["say"]  # the robot answered within the call
    assert_processed(rt)
    [message] = inbound(rt)
    assert message.text == f"у нас нет горячей воды {FFFD}{FFFD}"
    assert message.external_id == f"evt-{FFFD}"
    again = client.post("/webhooks/phone", content=body, headers=headers)  # the robot retries
    assert again.status_code == 200 and again.json() == answer.json()
    assert len(journal(rt)) == 1


# -- email -----------------------------------------------------------------------------------

#: A NUL cannot cross IMAP as a raw byte (Dovecot turns it into 0x80), but it can encoded:
#: quoted-printable ``=00`` (or base64) decodes to one.
LETTER = (
    b"From: =?utf-8?b?0JjQstCw0L0g0J/QtdGC0YDQvtCy?= <petrov@mail.example>\r\n"
    b"To: priem@dgh.example\r\n"
    b"Subject: =?utf-8?b?0J3QtdGCINCy0L7QtNGL?=\r\n"
    b"Message-ID: <nul-1@mail.example>\r\n"
    b"Date: Mon, 23 Nov 2026 11:40:00 +0300\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"=D0=9D=D0=B5=D1=82 =D0=B3=D0=BE=D1=80=D1=8F=D1=87=D0=B5=D0=B9=\r\n"
    b" =D0=B2=D0=BE=D0=B4=D1=8B=00 =D0=B2 =D0=B4=D0=BE=D0=BC=D0=B5 5\r\n"
)


def test_a_letter_is_kept_byte_exact_when_it_holds_a_nul() -> None:
    letter = LETTER.replace(b"=00", b"\x00")
    assert raw_payload(letter).keys() == {"rfc822_base64"}  # not altered by the cleaning
    assert raw_bytes(raw_payload(letter)) == letter
    assert raw_payload(LETTER).keys() == {"rfc822"}


@pytest.mark.mail
def test_letter_with_an_encoded_nul_is_stored_processed_and_kept_byte_exact(
    runtime: Runtime, dovecot: Dovecot, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    runtime.settings = runtime.settings.model_copy(
        update={
            "imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_user": USER,
            "imap_password": PASSWORD, "imap_ssl": False, "smtp_host": "127.0.0.1",
            "smtp_port": smtp_server.port, "smtp_starttls": False,
            "email_from": "Приёмная ДГХ <priem@dgh.example>",
        }
    )  # fmt: skip
    uid = dovecot.deliver(LETTER)
    report = EmailChannel.from_runtime(runtime).poll()
    assert len(report.stored) == 1 and report.error is None
    assert "\\Seen" in dovecot.flags(uid)
    assert_processed(runtime)
    [message] = inbound(runtime)
    assert message.text == f"Нет горячей воды{FFFD} в доме 5"
    [row] = journal(runtime)
    assert raw_bytes(row.event["raw"]) == LETTER  # the journal keeps the letter as received
    # PostgreSQL could not read a journalled NUL (``event ->> 'thread_key'``): the catch-up
    # scan failed for every event after it. Another channel's event is processed all the same.
    runtime.inbox.accept(
        normalize(Channel.telegram, payload("telegram", "private_message.json"), runtime.profile)
    )
    assert runtime.inbox.process_pending() == 1


# -- web chat --------------------------------------------------------------------------------


@pytest.fixture
def chat_app(runtime: Runtime, clock: FrozenClock):  # type: ignore[no-untyped-def]
    app = create_app(runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    return app


def chat_post(client: TestClient, body: bytes) -> Any:
    return client.post(
        "/api/chat/messages", content=body, headers={"Content-Type": "application/json"}
    )


def test_web_chat_text_with_a_lone_surrogate_is_not_a_500_but_stored_and_answered(
    chat_app: Any, runtime: Runtime
) -> None:
    with TestClient(chat_app) as client:
        client.get("/chat")
        assert client.cookies.get(COOKIE)
        sent = chat_post(client, b'{"text": "a\\ud800b", "client_id": "m1"}')
        assert sent.status_code == 200, sent.text
        # A NUL is refused up front in the web chat (inbox.web.limits): a person never types
        # one, and the browser does not retry.
        nul = chat_post(client, b'{"text": "\\u0000"}')
        assert nul.status_code == 400 and "NUL" in nul.json()["detail"]
        shown = client.get("/api/chat/messages")
    assert shown.status_code == 200
    assert [m.text for m in inbound(runtime)] == [f"a{FFFD}b"]
    assert_processed(runtime)
    assert [m["text"] for m in shown.json() if m["direction"] == "in"] == [f"a{FFFD}b"]
    assert bot_answers(runtime), "the citizen bot answered"


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "hi", "client_id": "\\ud800"}',
        b'{"text": "hi", "button": "\\udfff", "label": "\\ud800"}',
        b'{"text": "\\ud800", "client_id": "not valid!"}',
        b'{"text": ["\\ud800"]}',
    ],
)
def test_web_chat_refuses_bad_fields_with_lone_surrogates_as_4xx(
    chat_app: Any, body: bytes
) -> None:
    with TestClient(chat_app, raise_server_exceptions=False) as client:
        client.get("/chat")
        answer = chat_post(client, body)
    assert answer.status_code < 500, answer.text
    answer.content.decode("utf-8")  # the error, if any, is encodable


def test_web_chat_surrogate_is_processed_by_the_catch_up_scan_in_worker_mode(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """Journal only (``otklik worker`` processes): the poisoned message is processed, once."""
    rt = dataclasses.replace(
        runtime, settings=runtime.settings.model_copy(update={"processing": "worker"})
    )
    app = create_app(rt, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(rt, clock)
    with TestClient(app) as poisoner, TestClient(app) as neighbour:
        for client, body in (
            (poisoner, b'{"text": "a\\ud83d"}'),
            (neighbour, '{"text": "Во дворе не вывозят мусор"}'.encode()),
        ):
            client.get("/chat")
            assert chat_post(client, body).status_code == 200
    assert all(row.processed_at is None for row in journal(rt))  # worker mode: journalled only
    assert rt.inbox.process_pending() == 2
    assert_processed(rt)
    assert rt.inbox.process_pending() == 0
    assert len(bot_answers(rt)) >= 2  # the hook answered both dialogues
