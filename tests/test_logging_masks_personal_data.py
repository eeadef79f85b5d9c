"""Personal data is masked in logs: phones, e-mails, passports, SNILS, addresses."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from inbox.logging import PersonalDataFilter, install, mask


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("звоните +7 (912) 345-67-89 вечером", "345-67-89"),
        ("мой телефон 8 912 345 67 89", "345 67 89"),
        ("тел. 89123456789", "89123456789"),
        ("номер +375 29 123 45 67", "123 45 67"),
        ("пишите на ivan.petrov+gov@mail.ru", "ivan.petrov"),
        ("паспорт 45 06 123456 выдан", "123456"),
        ("паспорт 4506№123456", "123456"),
        ("СНИЛС 123-456-789 01", "789 01"),
        ("снилс 12345678901", "12345678901"),
        ("живу: ул. Ленина, д. 5, кв. 12", "Ленина"),
        ("г. Тверь, проспект Победы д.14 кв 3", "Победы"),
    ],
)
def test_personal_data_is_masked(text: str, secret: str) -> None:
    masked = mask(text)
    assert secret not in masked
    assert "***" in masked


def test_address_numbers_are_masked_too() -> None:
    masked = mask("ул. Ленина, д. 5, кв. 12")
    assert "5" not in masked and "12" not in masked
    assert masked.startswith("ул.")


@pytest.mark.parametrize(
    "text",
    [
        "conversation 2026-000123 opened, rule comment_official",
        "processed 500 events in 2.5 s",
        "GET /api/queue?limit=100 HTTP/1.1 200",
        "жители дома просят убрать двор",
    ],
)
def test_ordinary_log_lines_stay_readable(text: str) -> None:
    assert mask(text) == text


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    install()
    child = logging.getLogger("otklik.test.child")
    previous = root.level
    root.setLevel(logging.INFO)
    yield child, stream
    root.setLevel(previous)
    root.removeHandler(handler)


def test_installed_filter_masks_arguments_of_child_loggers(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = captured
    log.info("citizen %s wrote from %s", "+7 912 345-67-89", "anna@example.ru")
    output = stream.getvalue()
    assert "345-67-89" not in output and "anna@example.ru" not in output
    assert "citizen *** wrote from ***" in output


def test_installed_filter_masks_tracebacks(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    try:
        raise ValueError("bad passport 45 06 123456")
    except ValueError:
        log.exception("processing failed")
    output = stream.getvalue()
    assert "Traceback" in output and "ValueError" in output
    assert "123456" not in output


def test_install_twice_adds_one_filter(captured: tuple[logging.Logger, io.StringIO]) -> None:
    install()
    install()
    for handler in logging.getLogger().handlers:
        assert sum(isinstance(f, PersonalDataFilter) for f in handler.filters) <= 1


def test_a_broken_format_string_does_not_lose_the_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items", ("many",), None)
    assert PersonalDataFilter().filter(record)


def test_uvicorn_access_log_records_keep_their_arguments() -> None:
    """uvicorn's access formatter unpacks ``record.args``: they must stay a 5-tuple."""
    from uvicorn.logging import AccessFormatter

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/c?email=anna@example.ru", "1.1", 200), None,
    )  # fmt: skip
    assert PersonalDataFilter().filter(record)
    line = AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s").format(record)
    assert "anna@example.ru" not in line and "GET /c?email=*** HTTP/1.1" in line


def test_personal_data_built_from_numbers_is_masked_too() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "call from %d", (89123456789,), None)
    PersonalDataFilter().filter(record)
    assert "89123456789" not in record.getMessage()
