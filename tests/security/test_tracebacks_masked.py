"""Issue #9, item 7: personal data never reaches a log, not even in exception messages and
tracebacks.

A failing request logged the citizen's raw text: the database's error quotes the statement's
parameters (``[parameters: (..., 'Телефон +7 916 …')]``), PostgreSQL's own message may quote
the row. Masking ran on messages and tracebacks, but missed 12-digit INNs, numbers right
after an escape in a quoted literal (``'…\\n+7 916 …'``), and the ``otklik`` commands that
log through ``logging.lastResort`` (``otklik ingest``) or set up their own handler (``otklik
telegram poll``). Here real processes fail on a real database error (a DLP trigger refuses
the row: tests/security/dlp_trigger.py) and what they wrote is read back from their output.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from bot.normalize import normalize
from core.events import Channel, InboundEvent
from inbox.logging import PersonalDataFilter, install, mask
from inbox.models import InboundRecord
from inbox.runtime import Runtime
from tests.helpers.loadgen import Server, WorkerProcess
from tests.helpers.payloads import payload
from tests.security import dlp_trigger

#: Everything a citizen writes into an appeal that the logs must not keep.
TEXT = (
    "Прошу вернуть паспорт 45 10 123456.\n"
    "+7 916 123-45-67 или 8(916)1234567 — мои телефоны,\n"
    "СНИЛС 123-456-789 01, ИНН 7707083893 и 500100732259,\n"
    "почта anna.petrova@example.ru"
)
SECRETS = (
    "45 10 123456", "10 123456", "916 123-45-67", "123-45-67", "8(916)1234567", "(916)1234567",
    "123-456-789 01", "789 01", "7707083893", "500100732259", "anna.petrova",
)  # fmt: skip


def assert_masked(output: str) -> None:
    leaked = [s for s in SECRETS if s in output]
    assert not leaked, f"unmasked in the log: {leaked}"


def env(db_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "OTKLIK_DATABASE_URL": db_url,
        "OTKLIK_DATA_DIR": str(data_dir),
        "OTKLIK_PENDING_INTERVAL": "0.2",
        "OTKLIK_SECRET_KEY": "test-secret-key-for-the-masking-test",
        **extra,
    }


@pytest.fixture
def refusing(runtime: Runtime) -> Iterator[None]:
    with dlp_trigger.refusing(runtime.engine):
        yield


# -- real processes ------------------------------------------------------------------------


@pytest.mark.slow
def test_serve_masks_the_citizens_data_in_a_failed_processing_traceback(
    runtime: Runtime, db_url: str, tmp_path: Path, refusing: None
) -> None:
    log_path = tmp_path / "serve.log"
    server = Server(env(db_url, tmp_path), log_path)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            client.get("/chat")
            sent = client.post("/api/chat/messages", json={"text": TEXT})
            assert sent.status_code == 200  # stored: the failure is processing's
    finally:
        server.stop()
    output = log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback (most recent call last)" in output
    assert "processing inbound event" in output and "DLP" in output
    assert_masked(output)
    with runtime.factory() as session:
        [record] = session.exec(select(InboundRecord)).all()
    assert record.error and "DLP" in record.error
    assert_masked(record.error)  # what admins see is masked too


@pytest.mark.slow
def test_worker_masks_the_citizens_data_in_a_failed_processing_traceback(
    runtime: Runtime, db_url: str, tmp_path: Path, refusing: None
) -> None:
    event = telegram_event(runtime)
    accepted = runtime.inbox.accept(event)
    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(env(db_url, tmp_path), log_path)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while attempts(runtime, accepted.record_id) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        worker.stop()
    assert attempts(runtime, accepted.record_id) >= 2
    output = log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback (most recent call last)" in output and "DLP" in output
    assert_masked(output)


def test_a_cli_command_masks_the_citizens_data_in_its_traceback(
    runtime: Runtime, db_url: str, tmp_path: Path, refusing: None
) -> None:
    """``otklik ingest`` configures no logging: the traceback goes through lastResort."""
    update = json.loads(payload("telegram", "private_message.json"))
    update["message"]["text"] = TEXT
    path = tmp_path / "update.json"
    path.write_text(json.dumps(update), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "otklik.cli", "ingest", "--channel", "telegram", str(path)],
        env={**os.environ, **env(db_url, tmp_path)},
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    stderr = done.stderr.decode("utf-8", errors="replace")
    assert "Traceback (most recent call last)" in stderr and "DLP" in stderr
    assert_masked(stderr)
    assert '"duplicate": false' in done.stdout.decode()


def telegram_event(runtime: Runtime) -> InboundEvent:
    update = json.loads(payload("telegram", "private_message.json"))
    update["message"]["text"] = TEXT
    return normalize(Channel.telegram, json.dumps(update).encode(), runtime.profile)


def attempts(runtime: Runtime, record_id: int) -> int:
    with runtime.factory() as session:
        record = session.get(InboundRecord, record_id)
        return record.attempts if record else 0


# -- the filter on a handler ---------------------------------------------------------------


@pytest.fixture
def handler_output() -> Iterator[io.StringIO]:
    """What a root handler writes, as a log file would hold it (not caplog's records)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    install()
    previous = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.setLevel(previous)
    root.removeHandler(handler)


def test_exception_messages_quoting_the_text_are_masked_in_every_form(
    handler_output: io.StringIO,
) -> None:
    log = logging.getLogger("otklik.test.traceback")
    for quoted in (TEXT, repr(TEXT), json.dumps(TEXT), json.dumps(TEXT, ensure_ascii=False)):
        try:
            try:
                raise ValueError(f"[parameters: ({quoted},)]")
            except ValueError as inner:
                raise RuntimeError(f"while storing {quoted}") from inner
        except RuntimeError:
            log.exception("processing inbound event %s failed: %s", 7, quoted)
    output = handler_output.getvalue()
    assert output.count("Traceback (most recent call last)") == 8  # chained: two each
    assert_masked(output)


def test_a_record_with_a_broken_format_string_is_still_masked(
    handler_output: io.StringIO,
) -> None:
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, f"{TEXT} %d", ("not a number",), None
    )
    PersonalDataFilter().filter(record)
    assert_masked(str(record.msg))


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("ИНН 500100732259", "500100732259"),
        ("ИНН 7707083893", "7707083893"),
        ("'тел.\\n+7 916 123-45-67'", "123-45-67"),
        ("'x\\n8(916)1234567'", "1234567"),
        ('"\\u0418\\u041d\\u041d 500100732259"', "500100732259"),
        ('"\\u0442\\u0435\\u043b89161234567"', "89161234567"),
        ("'\\nул. Ленина'", "Ленина"),
    ],
)
def test_numbers_next_to_escapes_and_inns_are_masked(text: str, secret: str) -> None:
    assert secret not in mask(text)
