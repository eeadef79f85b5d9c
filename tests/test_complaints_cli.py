"""``otklik complaint`` as a real process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from core.clock import FrozenClock
from core.config import Settings
from inbox.models import ComplaintStatusChange, Message, SharedComplaint
from inbox.runtime import Runtime, build_runtime
from tests.helpers.cli import otklik
from tests.helpers.complaints import numbers
from tests.helpers.complaints_harness import make_appeal


@pytest.fixture
def rt(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    clock = FrozenClock(datetime.now(UTC) - timedelta(minutes=5))
    runtime = build_runtime(Settings(database_url=db_url, data_dir=tmp_path), clock=clock)
    yield runtime
    runtime.dispose()


def test_create_add_set_status_list_and_show(rt: Runtime) -> None:
    appeals = numbers(rt, [make_appeal(rt, n) for n in (1, 2, 3)])
    made = otklik(rt, "complaint", "create", *appeals[:2], "--title", "Не горят фонари",
                  "--place", "Ленина 5", "--topic", "lighting")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("1: created with 2 supporters\ntracker: /public/complaints/")
    added = otklik(rt, "complaint", "add", "1", *appeals)
    assert added.returncode == 0 and added.stdout == "1: 1 added, 3 supporters\n"
    when = (date.today() + timedelta(days=30)).isoformat()
    moved = otklik(rt, "complaint", "set-status", "1", "in_progress", "--answer",
                   "Бригада заменит лампы.", "--expected-date", when, "--note", "наряд 5",
                   "--version", "1")  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == "1: submitted -> in_progress; 3 supporters' messages queued\n"
    with rt.factory() as session:
        change = session.exec(select(ComplaintStatusChange)).one()
        assert change.actor_kind == "cli" and change.internal_note == "наряд 5"
        news = session.exec(
            select(Message).where(col(Message.idempotency_key).like(f"complaint-{change.id}-%"))
        ).all()
        assert len(news) == 3
    listed = otklik(rt, "complaint", "list", "--json")
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["supporters"] == 3 and row["status"] == "in_progress"
    assert row["expected_date"] == when
    shown = otklik(rt, "complaint", "show", "1")
    assert "status: in_progress (В работе), version 2" in shown.stdout
    assert "submitted -> in_progress  by cli:" in shown.stdout and "told 3" in shown.stdout


def test_errors_are_one_line_and_exit_code_2(rt: Runtime) -> None:
    appeals = numbers(rt, [make_appeal(rt, 1)])
    for args, said in (
        (("create", "2026-999999", "--title", "x", "--place", "Ленина 5", "--topic",
          "lighting"), "no appeal numbered '2026-999999'"),
        (("create", *appeals, "--title", "x", "--place", "Ленина 5", "--topic", "nope"),
         "unknown topic"),
        (("set-status", "7", "done"), "Жалоба не найдена."),
        (("show", "7"), "no shared complaint 7"),
        (("add", "7", *appeals), "no shared complaint 7"),
    ):  # fmt: skip
        done = otklik(rt, "complaint", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert said in done.stderr and done.stderr.count("\n") == 1, done.stderr
    with rt.factory() as session:
        assert session.exec(select(SharedComplaint)).all() == []
