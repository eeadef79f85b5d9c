"""Pieces of the citizen bot that need no database: language guess, phone, catalog, links."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.citizen.handlers.application import application_number, normalize_phone
from bot.citizen.language import detect_foreign_language
from bot.citizen.payment import payment_url, qr_png
from bot.citizen.texts import LABELS, MAIN_MENU
from rules.catalog import load_catalog


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hello, when will the hot water be back?", "en"),
        ("Salom, uyimizda suv yo'q, qachon beriladi?", "uz"),
        ("Assalomu alaykum, yordam kerak", "uz"),
        ("Ассалому алейкум, оби гарм кай мешавад? Ман дар ҳамин хона зиндагӣ мекунам", "tg"),
        ("Ўзбекистон фуқаросиман, ёрдам керак", "uz"),
        ("Сәлеметсіз бе, көмек керек", "kk"),
        ("Здравствуйте, когда дадут горячую воду?", None),
        ("zdravstvuyte, kogda dadut vodu?", None),  # Russian in Latin letters
        ("lift ne rabotaet tretiy den", None),
        ("yama na doroge u doma", None),
        ("the bus is late again", "en"),
        ("my water is not working", "en"),
        ("ok", None),
        ("ЖКХ и УК: почему не убирают снег на ул. Lenina?", None),
    ],
)
def test_foreign_language_guess(text: str, language: str | None) -> None:
    assert detect_foreign_language(text) == language


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("+7 900 123-45-67", "+79001234567"),
        ("8 (900) 123-45-67", "+79001234567"),
        ("9001234567", "+79001234567"),
        ("123", None),
        ("+1 202 555 0143 1", None),
    ],
)
def test_phone_numbers_are_normalized(typed: str, normalized: str | None) -> None:
    assert normalize_phone(typed) == normalized


def test_application_number_format() -> None:
    assert application_number(2026, 42) == "З-2026-000042"


def test_payment_link_encodes_every_value() -> None:
    url = payment_url(
        "https://pay.example/?purpose={purpose}&amount={amount}&id={number}",
        purpose="Ордер & выписка",
        amount=1500,
        number="2026-000001-excavation",
    )
    assert url == (
        "https://pay.example/?purpose=%D0%9E%D1%80%D0%B4%D0%B5%D1%80%20%26%20"
        "%D0%B2%D1%8B%D0%BF%D0%B8%D1%81%D0%BA%D0%B0&amount=1500&id=2026-000001-excavation"
    )
    assert qr_png(url).startswith(b"\x89PNG\r\n\x1a\n")


def test_catalog_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text("services:\n  - {id: Bad Id, title: Двор}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"catalog.yaml: services.0.id"):
        load_catalog(bad)
    bad.write_text("services:\n  - {id: a, title: A}\n  - {id: a, title: B}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="repeated id a"):
        load_catalog(bad)


def test_button_ids_fit_telegram_callback_data() -> None:
    catalog = load_catalog()
    ids = (
        [b["id"] for row in MAIN_MENU for b in row]
        + [f"service:{s.id}" for s in catalog.services]
        + [f"fee:{f.id}" for f in catalog.fees]
        + list(LABELS)
    )
    # The status news buttons carry the longest number there can be (the number's own limit).
    from inbox.application_texts import notice_buttons

    longest = "З-9999-999999"
    ids += [
        b["id"] for s in ("info_needed", "done") for row in notice_buttons(longest, s) for b in row
    ]
    assert all(len(i.encode()) <= 64 for i in ids)


@pytest.mark.parametrize(
    ("text", "calls"),
    [
        ("оператор", True),
        ("Позовите специалиста", True),
        ("можно живого человека?", True),
        ("Соедините с оператором, пожалуйста", True),
        ("Человек!", True),
        ("сколько человек можно прописать в квартире", False),
        ("Работает ли оператор связи в праздники и где его офис", False),
    ],
)
def test_typed_call_for_an_operator(text: str, calls: bool) -> None:
    import re

    from bot.citizen.handlers.operator import CALL_OPERATOR

    assert bool(re.search(CALL_OPERATOR, text, re.IGNORECASE)) is calls


def _every_phrase() -> list[tuple[str, str]]:
    from bot.citizen import texts

    values = {
        "number": "З-2026-000042", "service": "Вывоз мусора", "address": "ул. Ленина, д. 5",
        "description": "Не вывозят мусор", "phone": "+79001234567", "created": "23.11.2026",
        "status": "в работе", "title": "Ордер на земляные работы", "amount": 1500,
        "url": "https://pay.example/", "code": "ABCD-EFGH", "minutes": 10,
    }  # fmt: skip
    phrases = [
        (name, value.format(**values))
        for name, value in vars(texts).items()
        if name.isupper() and isinstance(value, str) and " " in value
    ]
    phrases += [(f"FOREIGN_HANDOFF[{k}]", v) for k, v in texts.FOREIGN_HANDOFF.items() if k == "ru"]
    return phrases


@pytest.mark.parametrize(("name", "phrase"), _every_phrase())
def test_every_bot_phrase_passes_the_readability_check(name: str, phrase: str) -> None:
    from knowledge_base.readability import check_text

    report = check_text(phrase)
    assert report.ok, f"{name}: {report.failures}"
