"""The email channel against real servers on loopback: Dovecot (IMAP) and aiosmtpd (SMTP)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import col, select

from bot.email.channel import EmailChannel, start_email_channel
from bot.email.mailbox import ImapMailbox
from bot.email.receive import poll_once
from core.clock import FrozenClock
from inbox import workflow
from inbox.models import Conversation, InboundRecord, Message
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.mail_servers import PASSWORD, USER, Dovecot, SmtpServer, dovecot, smtp_server
from tests.helpers.payloads import payload

pytestmark = pytest.mark.mail
__all__ = ["dovecot", "smtp_server"]  # fixtures

FROM = "Приёмная ДГХ <priem@dgh.example>"
FROM_ADDR = b"priem@dgh.example"


@pytest.fixture
def channel(runtime: Runtime, dovecot: Dovecot, smtp_server: SmtpServer) -> Iterator[EmailChannel]:
    runtime.settings = runtime.settings.model_copy(
        update={
            "imap_host": "127.0.0.1",
            "imap_port": dovecot.port,
            "imap_user": USER,
            "imap_password": PASSWORD,
            "imap_ssl": False,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_server.port,
            "smtp_starttls": False,
            "email_from": FROM,
        }
    )
    yield EmailChannel.from_runtime(runtime)


def letters(smtp_server: SmtpServer) -> list[EmailMessage]:
    parsed = []
    for item in smtp_server.received:
        msg = BytesParser(policy=policy.default).parsebytes(item.data)
        assert isinstance(msg, EmailMessage)
        parsed.append(msg)
    return parsed


def conversations(runtime: Runtime) -> list[Conversation]:
    with runtime.factory() as session:
        return list(session.exec(select(Conversation).order_by(col(Conversation.id))))


def inbound_texts(runtime: Runtime, conversation_id: int) -> list[str]:
    with runtime.factory() as session:
        rows = session.exec(
            select(Message.text)
            .where(Message.conversation_id == conversation_id)
            .where(Message.direction == "in")
            .order_by(col(Message.id))
        )
        return list(rows)


def test_cp1251_letter_is_flagged_seen_only_after_it_is_stored(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot
) -> None:
    uid = dovecot.deliver(payload("email", "cp1251_plain.eml"))

    def database_down(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO INBOUND_EVENT"):
            raise RuntimeError("database down")

    sa.event.listen(runtime.engine, "before_cursor_execute", database_down)
    with pytest.raises(RuntimeError, match="database down"):
        channel.poll()
    sa.event.remove(runtime.engine, "before_cursor_execute", database_down)
    assert dovecot.unseen() == [uid]  # not stored, so not flagged: it will be read again
    assert conversations(runtime) == []

    report = channel.poll()

    assert len(report.stored) == 1 and report.error is None
    assert "\\Seen" in dovecot.flags(uid)
    [conversation] = conversations(runtime)
    assert conversation.channel == "email" and conversation.number == "2026-000001"
    [text] = inbound_texts(runtime, conversation.id or 0)
    assert text.startswith("Здравствуйте!\nВо дворе дома 7 по улице Гагарина")


def test_the_same_letter_fetched_twice_is_stored_once(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot
) -> None:
    raw = payload("email", "koi8r_qp.eml")
    no_id = b"From: petrov@mail.example\r\nTo: priem@dgh.example\r\nSubject: test\r\n\r\nhello\r\n"
    for raw_letter in (raw, raw, no_id, no_id):  # no Message-ID: a hash of the bytes dedupes
        dovecot.deliver(raw_letter)

    report = channel.poll()

    assert report.fetched == 4 and len(report.stored) == 2 and report.duplicates == 2
    assert dovecot.unseen() == []
    with runtime.factory() as session:
        assert len(session.exec(select(InboundRecord)).all()) == 2
    assert len(conversations(runtime)) == 2
    assert channel.poll().fetched == 0


async def test_new_appeal_is_acknowledged_with_its_number_deadline_and_thread(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    dovecot.deliver(payload("email", "cp1251_plain.eml"))

    polled, delivered = await channel.round()

    assert len(polled.acknowledged) == 1 and delivered.sent == polled.acknowledged
    [received] = smtp_server.received
    assert received.rcpt_tos == ["ivanov@mail.example"]
    assert received.mail_from == "<>"  # an automatic reply: bounces of it go nowhere
    [ack] = letters(smtp_server)
    assert ack["Subject"] == "[Обращение № 2026-000001] Re: Не вывозят мусор"
    assert ack["In-Reply-To"] == "<20261123101500.1234@mail.example>"
    assert ack["References"] == "<20261123101500.1234@mail.example>"
    assert ack["Message-ID"] == "<otklik.ack-1@dgh.example>"
    assert ack["Auto-Submitted"] == "auto-replied"
    body = ack.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    # Sent 10:15 Moscow time on Sunday; an appeal is due in 2 hours round the clock.
    assert "№ 2026-000001" in text and "23.11.2026 12:15 по времени Москвы" in text
    with runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
        assert conversation.first_response_at is None  # the acknowledgement is not the answer
        assert conversation.status == "new"


@pytest.mark.parametrize(
    "name", ["auto_reply.eml", "bounce.eml", "mailing_list.eml", "own_address"]
)
async def test_automatic_mail_and_our_own_letters_get_no_acknowledgement(
    runtime: Runtime,
    channel: EmailChannel,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
    name: str,
) -> None:
    if name == "own_address":
        raw = payload("email", "cp1251_plain.eml").replace(b"Ivanov@mail.example", FROM_ADDR)
    else:
        raw = payload("email", name)
    dovecot.deliver(raw)

    polled, delivered = await channel.round()

    assert len(polled.stored) == 1 and polled.acknowledged == []
    assert delivered.sent == [] and smtp_server.received == []


async def test_operator_reply_is_delivered_once_with_threading_headers(
    runtime: Runtime,
    channel: EmailChannel,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
    clock: FrozenClock,
) -> None:
    dovecot.deliver(payload("email", "cp1251_plain.eml"))
    await channel.round()  # the acknowledgement
    with runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
        reply = workflow.reply(session, conversation, "Контейнеры вывезут сегодня.", clock.now())
        session.commit()
        key = reply.idempotency_key

    first = await channel.outbox.deliver_once()
    again = await channel.outbox.deliver_once()

    assert len(first.sent) == 1 and again.sent == []
    _ack, answer = letters(smtp_server)
    assert answer["Message-ID"] == f"<otklik.{key}@dgh.example>"
    assert answer["In-Reply-To"] == "<20261123101500.1234@mail.example>"
    assert answer["References"] == "<20261123101500.1234@mail.example>"
    assert answer["Subject"] == "[Обращение № 2026-000001] Re: Не вывозят мусор"
    assert answer["Auto-Submitted"] is None
    assert smtp_server.received[1].mail_from == "priem@dgh.example"
    body = answer.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Контейнеры вывезут сегодня."
    assert answer.get_content_charset() == "utf-8"


async def test_smtp_down_is_retried_then_delivered_once(
    runtime: Runtime,
    channel: EmailChannel,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
    clock: FrozenClock,
) -> None:
    dovecot.deliver(payload("email", "cp1251_plain.eml"))
    smtp_server.stop()

    polled, delivered = await channel.round()

    assert delivered.retried == polled.acknowledged and delivered.sent == []
    smtp_server.catcher.refuse = "451 4.3.0 Try again later"
    smtp_server.start()
    clock.advance(timedelta(minutes=1))
    assert (await channel.outbox.deliver_once()).retried == polled.acknowledged
    smtp_server.catcher.refuse = None
    clock.advance(timedelta(minutes=1))
    assert (await channel.outbox.deliver_once()).sent == polled.acknowledged
    assert (await channel.outbox.deliver_once()).sent == []
    assert len(smtp_server.received) == 1
    with runtime.factory() as session:
        ack = session.get(Message, polled.acknowledged[0])
        assert ack is not None and ack.attempts == 3 and ack.delivery_status == "sent"


async def test_a_5xx_answer_fails_the_letter_at_once(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    dovecot.deliver(payload("email", "cp1251_plain.eml"))
    smtp_server.catcher.refuse = "554 5.7.1 Message rejected"

    polled, delivered = await channel.round()

    assert delivered.failed == polled.acknowledged
    with runtime.factory() as session:
        ack = session.get(Message, polled.acknowledged[0])
        assert ack is not None and ack.last_error and "554" in ack.last_error


class DroppedConnection(ImapMailbox):
    """The connection drops and the server goes down right after the first letter was stored,
    before it is flagged ``\\Seen``."""

    def __init__(self, dovecot: Dovecot, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.dovecot = dovecot

    def mark_seen(self, uid: int) -> None:
        self.conn.shutdown()
        self.dovecot.stop()
        super().mark_seen(uid)


def test_imap_disconnect_mid_poll_loses_nothing_and_stores_nothing_twice(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot
) -> None:
    first = dovecot.deliver(payload("email", "cp1251_plain.eml"))
    second = dovecot.deliver(payload("email", "html_only_base64.eml"))
    s = runtime.settings
    dropping = DroppedConnection(
        dovecot,
        host=s.imap_host,
        port=s.imap_port,
        user=s.imap_user,
        password=s.imap_password,
        use_ssl=False,
    )

    broken = poll_once(runtime, dropping, channel.inbound)

    assert broken.error is not None and broken.stored == []  # stopped before processing
    assert channel.poll().error is not None  # the server is down: nothing happens
    dovecot.start()
    assert dovecot.unseen() == [first, second]

    report = channel.poll()

    assert report.duplicates == 1 and len(report.stored) == 1
    assert dovecot.unseen() == []
    runtime.inbox.process_pending()
    with runtime.factory() as session:
        assert len(session.exec(select(InboundRecord)).all()) == 2
    assert len(conversations(runtime)) == 2


def test_attachments_are_saved_under_their_hash(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot, tmp_path: Path
) -> None:
    dovecot.deliver(payload("email", "attachment_rfc2231.eml"))

    channel.poll()

    with runtime.factory() as session:
        message = session.exec(select(Message).where(Message.direction == "in")).one()
        attachments = message.attachments
    assert [(a["name"], a["mime_type"]) for a in attachments] == [
        ("Акт осмотра.pdf", "application/pdf"),
        ("яма.jpg", "image/jpeg"),
    ]
    pdf = (runtime.settings.data_dir / "attachments" / attachments[0]["ref"][7:]).read_bytes()
    assert pdf.startswith(b"%PDF-1.4") and len(pdf) == attachments[0]["size"]
    jpg = (runtime.settings.data_dir / "attachments" / attachments[1]["ref"][7:]).read_bytes()
    assert jpg.startswith(b"\xff\xd8") and jpg.endswith(b"\xff\xd9")


def _citizen_reply(subject: str, sender: str, extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: priem@dgh.example\r\n"
        f"Subject: =?utf-8?B?{_b64(subject)}?=\r\n"
        f"Message-ID: <reply-{abs(hash((subject, sender, extra)))}@mail.example>\r\n{extra}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{_b64('Дополняю обращение: контейнеры так и стоят.')}\r\n"
    ).encode("ascii")


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


async def test_reply_without_references_joins_its_appeal_by_number_or_our_message_id(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    dovecot.deliver(payload("email", "cp1251_plain.eml"))
    await channel.round()
    subject = "Re: [Обращение № 2026-000001] Re: Не вывозят мусор"
    dovecot.deliver(_citizen_reply(subject, "ivanov@mail.example"))  # References stripped
    dovecot.deliver(
        _citizen_reply(
            "Ответ", "ivanov@mail.example", "In-Reply-To: <otklik.ack-1@dgh.example>\r\n"
        )
    )
    dovecot.deliver(_citizen_reply(subject, "stranger@mail.example"))  # not the appeal's author

    polled, _ = await channel.round()

    assert len(polled.stored) == 3
    first, stranger = conversations(runtime)
    assert len(inbound_texts(runtime, first.id or 0)) == 3
    assert stranger.reply_target["to"] == "stranger@mail.example"
    assert stranger.number == "2026-000002"
    assert len(smtp_server.received) == 2  # one acknowledgement per appeal, not per letter
    # The last letter (In-Reply-To only) is answered within the whole thread again.
    assert first.reply_target["references"][0] == "20261123101500.1234@mail.example"


def test_the_app_runs_the_channel_in_its_lifespan(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    dovecot.deliver(payload("email", "cp1251_plain.eml"))
    runtime.settings = runtime.settings.model_copy(
        update={"email_poll_interval": 1, "outbox_interval": 1}
    )

    with TestClient(create_app(runtime)):
        deadline = time.monotonic() + 15
        while not smtp_server.received and time.monotonic() < deadline:
            time.sleep(0.05)  # the channel's task runs in the app's event loop

    assert len(smtp_server.received) == 1
    assert dovecot.unseen() == []


def test_email_is_off_without_settings(runtime: Runtime) -> None:
    assert start_email_channel(runtime) is None


def test_cli_polls_once(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    dovecot.deliver(payload("email", "koi8r_header_wrong_label.eml"))
    s = runtime.settings
    env = {
        **os.environ,
        "OTKLIK_DATABASE_URL": s.effective_database_url,
        "OTKLIK_DATA_DIR": str(s.data_dir),
        "OTKLIK_IMAP_HOST": s.imap_host,
        "OTKLIK_IMAP_PORT": str(s.imap_port),
        "OTKLIK_IMAP_USER": s.imap_user,
        "OTKLIK_IMAP_PASSWORD": s.imap_password,
        "OTKLIK_IMAP_SSL": "false",
        "OTKLIK_SMTP_HOST": s.smtp_host,
        "OTKLIK_SMTP_PORT": str(s.smtp_port),
        "OTKLIK_SMTP_STARTTLS": "false",
        "OTKLIK_EMAIL_FROM": s.email_from,
    }
    done = subprocess.run(
        [sys.executable, "-m", "otklik.cli", "email", "poll"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["stored"] == 1 and result["acknowledged"] == 1 and result["sent"] == 1
    [ack] = letters(smtp_server)
    assert ack["Subject"] == "[Обращение № 2026-000001] Re: Разбит павильон на остановке"


async def test_a_copy_of_our_own_letter_in_the_mailbox_changes_nothing(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    dovecot.deliver(payload("email", "cp1251_plain.eml"))
    await channel.round()
    dovecot.deliver(smtp_server.received[0].data)  # the server filed our acknowledgement

    polled, _ = await channel.round()

    assert polled.own == 1 and polled.stored == [] and dovecot.unseen() == []
    [conversation] = conversations(runtime)
    assert conversation.status == "new" and conversation.first_response_at is None


def test_idle_wakes_up_when_a_letter_arrives(channel: EmailChannel, dovecot: Dovecot) -> None:
    with channel.mailbox() as box:
        assert box.supports_idle()
        assert box.wait_for_mail(0.2) is False  # nothing new: the wait times out
        arrival = threading.Timer(0.3, dovecot.deliver, [payload("email", "koi8r_qp.eml")])
        arrival.start()
        started = time.monotonic()
        assert box.wait_for_mail(30) is True
        assert time.monotonic() - started < 20  # woken by the server, not by the timeout
        arrival.join()
        assert len(box.unseen()) == 1  # the connection is usable after IDLE


def test_a_big_letter_is_kept_byte_exact_on_disk(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot
) -> None:
    scan = bytes(range(256)) * 1200  # 300 KiB "scan.pdf"
    letter = EmailMessage()
    letter["From"] = "Ольга <olga.k@mail.example>"
    letter["To"] = "priem@dgh.example"
    letter["Subject"] = "Скан заявления"
    letter["Message-ID"] = "<big-1@mail.example>"
    letter.set_content("Заявление во вложении.")
    letter.add_attachment(scan, maintype="application", subtype="pdf", filename="скан.pdf")
    raw = letter.as_bytes(policy=policy.SMTP)
    dovecot.deliver(raw)

    assert len(channel.poll().stored) == 1

    with runtime.factory() as session:
        record = session.exec(select(InboundRecord)).one()
        kept = record.event["raw"]
    assert (runtime.settings.data_dir / kept["rfc822_file"]).read_bytes() == raw
    [attachment] = record.event["attachments"]
    saved = runtime.settings.data_dir / "attachments" / attachment["ref"].removeprefix("sha256:")
    assert saved.read_bytes() == scan


def test_an_unreadable_letter_is_flagged_for_a_person_and_not_read_again(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot
) -> None:
    uid = dovecot.deliver(b"Subject: no sender at all\r\n\r\nbody\r\n")

    report = channel.poll()

    assert report.rejected == [uid] and report.stored == []
    assert "\\Flagged" in dovecot.flags(uid) and "\\Seen" in dovecot.flags(uid)
    assert channel.poll().fetched == 0


async def test_an_appeal_processed_late_is_still_acknowledged_once(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    dovecot.deliver(payload("email", "outlook_alternative_cp1251.eml"))

    def crash_once(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO CONVERSATION"):
            sa.event.remove(runtime.engine, "before_cursor_execute", crash_once)
            raise RuntimeError("disk full")

    sa.event.listen(runtime.engine, "before_cursor_execute", crash_once)
    polled, _ = await channel.round()
    assert len(polled.stored) == 1 and polled.acknowledged == [] and conversations(runtime) == []

    assert runtime.inbox.process_pending() == 1  # the scheduler's job
    again, delivered = await channel.round()
    third, _ = await channel.round()

    assert len(again.acknowledged) == 1 and delivered.sent == again.acknowledged
    assert third.acknowledged == []
    [ack] = letters(smtp_server)
    assert ack["To"] == "m.petrova@mail.example"
    assert ack["Subject"] == "[Обращение № 2026-000001] Re: Не работает фонарь во дворе"


async def test_a_letter_dated_days_ago_is_still_acknowledged_without_a_past_deadline(
    runtime: Runtime, channel: EmailChannel, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    raw = payload("email", "cp1251_plain.eml").replace(
        b"Date: Sun, 23 Nov 2026 10:15:00 +0300", b"Date: Thu, 19 Nov 2026 10:15:00 +0300"
    )
    dovecot.deliver(raw)

    polled, delivered = await channel.round()

    assert len(polled.acknowledged) == 1 and delivered.sent == polled.acknowledged
    [ack] = letters(smtp_server)
    body = ack.get_body(("plain",))
    assert body is not None and "Ответим как можно скорее." in body.get_content()
