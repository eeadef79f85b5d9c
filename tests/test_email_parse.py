"""Real Russian mail decodes correctly; outbound letters carry the right headers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from bot.email.acknowledge import acknowledgement_text
from bot.email.mime import body_text, decode_bytes, header_text
from bot.email.parse import parse_email, raw_bytes, reply_headers
from bot.email.quotes import strip_quoted_reply
from bot.email.send import SmtpConfig, compose, key_from_message_id, subject_with_number
from inbox.models import Message
from inbox.outbox import DeliveryError
from rules.profile import AgencyProfile
from tests.helpers.payloads import payload

CONFIG = SmtpConfig("127.0.0.1", 25, "", "", False, "Приёмная ДГХ <priem@dgh.example>")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "author", "subject", "text"),
    [
        ("cp1251_plain.eml", "Иван Иванов", "Не вывозят мусор", "контейнеры переполнены"),
        ("koi8r_qp.eml", None, None, "Добрый день."),
        ("outlook_alternative_cp1251.eml", "Петрова Мария", "Не работает фонарь во дворе",
         "третью неделю не работает фонарь"),
        ("koi8r_header_wrong_label.eml", "Сидоров Пётр", "Разбит павильон на остановке",
         "разбит павильон, стекло на земле"),
        ("attachment_rfc2231.eml", "Ольга Кузнецова", "Акт осмотра и фото ямы",
         "фотографию ямы у подъезда"),
    ],
)  # fmt: skip
def test_russian_letters_decode_to_readable_text(
    profile: AgencyProfile, name: str, author: str | None, subject: str | None, text: str
) -> None:
    event = parse_email(payload("email", name), profile)
    if author is not None:
        assert event.author.display_name == author
    if subject is not None:
        assert event.facts.extra["subject"] == subject
    assert text in event.text
    assert "\ufffd" not in event.text


def test_outlook_letter_reads_the_plain_part_not_the_html(profile: AgencyProfile) -> None:
    event = parse_email(payload("email", "outlook_alternative_cp1251.eml"), profile)
    assert event.facts.extra["from_html"] is False
    assert event.text.endswith("С уважением,\nПетрова Мария Сергеевна")


@pytest.mark.parametrize(
    ("actual", "label"),
    [
        ("koi8-r", "windows-1251"),
        ("windows-1251", "koi8-r"),
        ("utf-8", "windows-1251"),
        ("windows-1251", None),
        ("koi8-r", "us-ascii"),
        ("windows-1251", "x-unknown-charset"),
    ],
)
def test_wrong_or_missing_charset_labels_are_caught(actual: str, label: str | None) -> None:
    for text in ("Прошу проверить", "Не вывозят мусор во дворе дома 7", "ЖАЛОБА", "Ямы"):
        assert decode_bytes(text.encode(actual), label) == text


def test_a_correct_label_is_kept() -> None:
    for charset in ("windows-1251", "koi8-r", "utf-8"):
        assert decode_bytes("Обращение принято".encode(charset), charset) == "Обращение принято"


def test_encoded_word_with_a_wrong_label_is_redecoded() -> None:
    koi8 = base64.b64encode("Жалоба на мусор во дворе".encode("koi8-r")).decode()
    raw = f"From: a@mail.example\r\nSubject: Re: =?windows-1251?B?{koi8}?=\r\n\r\nx\r\n".encode()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert str(msg["Subject"]) != "Re: Жалоба на мусор во дворе"  # what the library gives
    assert header_text(msg, "Subject") == "Re: Жалоба на мусор во дворе"


def test_attachment_names_in_rfc2231_and_outlook_form_are_decoded(
    profile: AgencyProfile,
) -> None:
    event = parse_email(payload("email", "attachment_rfc2231.eml"), profile)
    assert [(a.name, a.kind, a.size) for a in event.attachments] == [
        ("Акт осмотра.pdf", "document", 69),
        ("яма.jpg", "photo", 22),
    ]
    assert all(a.ref and a.ref.startswith("sha256:") for a in event.attachments)


def test_an_8bit_letter_is_kept_byte_exact(profile: AgencyProfile) -> None:
    raw = payload("email", "cp1251_plain.eml")
    event = parse_email(raw, profile)
    assert "rfc822_base64" in event.raw and raw_bytes(event.raw) == raw
    utf8 = payload("email", "reply_in_thread_with_attachment.eml")
    assert raw_bytes(parse_email(utf8, profile).raw) == utf8


def test_reply_headers_continue_the_thread(profile: AgencyProfile) -> None:
    event = parse_email(payload("email", "reply_in_thread_with_attachment.eml"), profile)
    headers = reply_headers(event)
    assert headers["In-Reply-To"] == "<20261123140000.5678@mail.example>"
    assert headers["References"] == (
        "<20261123101500.1234@mail.example> <ack-2026-000001@dgh.example> "
        "<20261123140000.5678@mail.example>"
    )
    assert headers["Subject"] == "Re: Обращение № 2026-000001 принято"


def outbound(key: str | None = "k1", to: str = "ivanov@mail.example", **meta: object) -> Message:
    return Message(
        conversation_id=1,
        direction="out",
        author_kind="operator",
        channel="email",
        text="Ответ по обращению.",
        published_at=NOW,
        idempotency_key=key,
        reply_target={
            "to": to,
            "subject": "Не вывозят мусор",
            "in_reply_to": "a@b",
            "references": ["a@b"],
        },
        meta=dict(meta),
    )


def test_message_id_is_the_same_on_every_retry() -> None:
    first = compose(outbound(), CONFIG, "2026-000001", NOW)
    second = compose(outbound(), CONFIG, "2026-000001", NOW)
    assert first["Message-ID"] == second["Message-ID"] == "<otklik.k1@dgh.example>"
    assert key_from_message_id("<otklik.k1@dgh.example>", "dgh.example") == "k1"
    assert key_from_message_id("<otklik.k1@evil.example>", "dgh.example") is None


def test_letter_is_utf8_mime_with_the_number_in_the_subject() -> None:
    letter = compose(outbound(), CONFIG, "2026-000001", NOW)
    assert letter["Subject"] == "[Обращение № 2026-000001] Re: Не вывозят мусор"
    wire = letter.as_bytes()
    assert wire.isascii()  # RFC 2047 headers, transfer-encoded UTF-8 body
    parsed = BytesParser(policy=policy.default).parsebytes(wire)
    assert isinstance(parsed, EmailMessage)
    assert parsed["From"].addresses[0].display_name == "Приёмная ДГХ"
    assert parsed.get_content_charset() == "utf-8"
    assert parsed.get_content().strip() == "Ответ по обращению."
    assert subject_with_number("Re: [Обращение № 2026-000001] x", "2026-000001") == (
        "Re: [Обращение № 2026-000001] x"
    )


def test_only_the_automatic_acknowledgement_is_marked_auto_submitted() -> None:
    auto = compose(outbound(auto_submitted="auto-replied"), CONFIG, "2026-000001", NOW)
    assert auto["Auto-Submitted"] == "auto-replied"
    assert compose(outbound(), CONFIG, "2026-000001", NOW)["Auto-Submitted"] is None


@pytest.mark.parametrize(
    "to", ["", "not-an-address", "PRIEM@dgh.example", "MAILER-DAEMON@mail.example"]
)
def test_letters_without_a_citizen_address_fail_permanently(to: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        compose(outbound(to=to), CONFIG, None, NOW)
    assert caught.value.permanent


def test_acknowledgement_names_the_number_and_the_local_deadline() -> None:
    due = datetime(2026, 11, 23, 9, 15, tzinfo=UTC)
    text = acknowledgement_text("2026-000123", due, NOW, "Europe/Moscow", "ДГХ")
    assert "№ 2026-000123" in text
    assert "Ответим до 23.11.2026 12:15 по времени Москвы." in text


def test_a_deadline_already_past_is_not_promised() -> None:
    due = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)  # the letter's Date was days ago
    text = acknowledgement_text("2026-000123", due, NOW, "Europe/Moscow", "ДГХ")
    assert "Ответим как можно скорее." in text and "20.11.2026" not in text


def test_a_reply_keeps_only_the_new_text(profile: AgencyProfile) -> None:
    event = parse_email(payload("email", "reply_with_quote.eml"), profile)
    assert event.text == "Добавлю: контейнеры стоят у дома 7, со стороны двора."
    kept = BytesParser(policy=policy.default).parsebytes(raw_bytes(event.raw))
    assert isinstance(kept, EmailMessage)
    assert "Мы получили ваше обращение" in body_text(kept)[0]  # the journal keeps it all


@pytest.mark.parametrize(
    ("text", "fresh"),
    [
        ("Ок\n\n-----Original Message-----\nFrom: Приёмная\nSent: Monday\n\nтекст", "Ок"),
        (
            "Ответ\n\nОт: Приёмная ДГХ <priem@dgh.example>\nОтправлено: 23 ноября 2026 г.\n"
            "Кому: ivanov@mail.example\n\nтекст",
            "Ответ",
        ),
        (
            "Да, верно.\n\nOn Mon, 23 Nov 2026 at 12:15, ДГХ <priem@dgh.example> wrote:\n> x",
            "Да, верно.",
        ),
    ],
)
def test_quoted_letters_of_common_mail_programs_are_cut(text: str, fresh: str) -> None:
    assert strip_quoted_reply(text) == fresh


@pytest.mark.parametrize(
    "text",
    [
        "> вопрос 1\nответ 1\n> вопрос 2\nответ 2",  # answers between quotes stay whole
        "> только цитата",  # never cut down to nothing
        "Пишу вам с просьбой:\nпочините лифт.",
        "Адрес: ул. Гагарина, 7\nEmail: ivanov@mail.example\nТелефон: 8-900-000-00-00",
    ],
)
def test_text_without_a_trailing_quote_is_left_alone(text: str) -> None:
    assert strip_quoted_reply(text) == text
