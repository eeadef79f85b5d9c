"""``otklik application`` and ``otklik token`` as real processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from inbox.models import ApiToken, ApplicationStatusChange, AuditEvent, Message
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.applications_harness import make_application
from tests.helpers.cli import otklik, rt  # noqa: F401


def test_set_status_records_the_system_user_and_queues_the_citizens_message(rt: Runtime) -> None:
    _, number, conversation_id = make_application(rt)
    when = (date.today() + timedelta(days=60)).isoformat()
    done = otklik(
        rt, "application", "set-status", number.replace("З", "Z"), "refused",
        "--reason", "Фонари меняют весной.", "--expected-date", when, "--note", "план 2027",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"{number}: submitted -> refused; the citizen's message is queued"
    )
    with rt.factory() as session:
        change = session.exec(select(ApplicationStatusChange)).one()
        message = session.exec(select(Message)).one()
        event = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "application_status_changed")
        ).one()
    assert change.actor_kind == "cli" and change.actor  # the user who ran it
    assert change.internal_note == "план 2027" and change.expected_date == date.fromisoformat(when)
    assert message.conversation_id == conversation_id and "Фонари меняют весной." in message.text
    assert event.actor == f"cli:{change.actor}"
    shown = otklik(rt, "application", "show", number)
    assert shown.returncode == 0
    assert (
        "submitted -> refused  by cli:" in shown.stdout
        and "internal note: план 2027" in shown.stdout
    )
    as_json = json.loads(otklik(rt, "application", "show", number, "--json").stdout)
    assert as_json["history"][0]["reason"] == "Фонари меняют весной."
    assert as_json["history"][0]["message_id"] == message.id


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["З-2026-999999", "done"], "otklik: no application З-2026-999999\n"),
        (["nonsense", "done"],
         "otklik: not an application number: 'nonsense' (like З-2026-000042)\n"),
        (["{number}", "refused"], "otklik: Напишите причину отказа: почему сейчас нельзя.\n"),
        (["{number}", "in_progress", "--expected-date", "31.12.2026"],
         "otklik: --expected-date: a date as YYYY-MM-DD, got '31.12.2026'\n"),
        (["{number}", "in_progress", "--comment", "a\u202eb"],
         "otklik: В тексте есть недопустимый символ U+202E.\n"),
    ],
)  # fmt: skip
def test_a_change_that_cannot_be_made_is_one_line_and_exit_2(
    rt: Runtime,
    args: list[str],
    error: str,
) -> None:
    _, number, _ = make_application(rt)
    result = otklik(rt, "application", "set-status", *(a.format(number=number) for a in args))
    assert (result.returncode, result.stderr, result.stdout) == (2, error, "")
    with rt.factory() as session:
        assert session.exec(select(ApplicationStatusChange)).all() == []


def test_an_unknown_status_is_a_usage_error(rt: Runtime) -> None:
    _, number, _ = make_application(rt)
    result = otklik(rt, "application", "set-status", number, "rejected")
    assert (
        result.returncode == 2 and "rejected" in result.stderr and "Traceback" not in result.stderr
    )


def test_list_filters_and_marks_the_overdue(rt: Runtime) -> None:
    old_id, old, _ = make_application(rt, created_at=rt.clock.now() - timedelta(days=45))
    _, vk, _ = make_application(rt, channel="vk", thread_key="vk:1", service="garbage")
    everything = otklik(rt, "application", "list")
    assert everything.returncode == 0, everything.stderr
    lines = everything.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [vk, old]
    assert lines[1].endswith("\tOVERDUE") and not lines[0].endswith("OVERDUE")
    assert everything.stderr == "2 of 2\n"
    overdue = otklik(rt, "application", "list", "--overdue", "--json")
    assert [json.loads(line)["number"] for line in overdue.stdout.splitlines()] == [old]
    by_channel = otklik(rt, "application", "list", "--channel", "vk", "--status", "submitted")
    assert [line.split("\t")[0] for line in by_channel.stdout.splitlines()] == [vk]
    bad = otklik(rt, "application", "list", "--from", "yesterday")
    assert (
        bad.returncode == 2
        and bad.stderr == "otklik: --from: a date as YYYY-MM-DD, got 'yesterday'\n"
    )
    assert old_id


def test_a_token_is_printed_once_works_and_stops_when_revoked(rt: Runtime) -> None:
    created = otklik(rt, "token", "create", "backoffice-1c", "--scope", "applications:read")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("otk_") and len(token) == 47
    assert "shown only now" in created.stderr
    with rt.factory() as session:
        row = session.exec(select(ApiToken)).one()
    assert token not in (row.token_hash, row.prefix) and row.created_by.startswith("cli:")
    listed = otklik(rt, "token", "list")
    assert listed.stdout.startswith(
        f"backoffice-1c\t{token[:10]}…\tapplications:read\tlast used never"
    )
    assert token not in listed.stdout
    with TestClient(create_app(rt, start_scheduler=False)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/applications", headers=headers).status_code == 200
        assert otklik(rt, "token", "revoke", "backoffice-1c").returncode == 0
        assert client.get("/api/v1/applications", headers=headers).status_code == 401
    again = otklik(rt, "token", "create", "backoffice-1c", "--scope", "applications:read")
    assert again.returncode == 2 and "уже есть" in again.stderr
    wrong = otklik(rt, "token", "create", "x", "--scope", "applications:admin")
    assert wrong.returncode == 2 and "applications:read" in wrong.stderr
    missing = otklik(rt, "token", "revoke", "nobody")
    assert (missing.returncode, missing.stderr) == (2, "otklik: no token named 'nobody'\n")
