"""MAX in the operator UI, the dashboard and its CSV, like the other channels."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.normalize import normalize
from core.clock import FrozenClock
from core.config import Settings
from core.events import Channel
from inbox.auth import hash_password
from inbox.models import Operator, Role
from inbox.runtime import Runtime, build_runtime
from otklik.web import create_app
from tests.helpers.payloads import payload

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def rt(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(database_url=db_url, data_dir=tmp_path, secret_key="t" * 40)
    runtime = build_runtime(settings, clock=clock)
    with runtime.factory() as session:
        session.add(
            Operator(login="sveta", display_name="Светлана", role=Role.supervisor.value,
                     password_hash=hash_password("supervisor-pass-1"))
        )  # fmt: skip
        session.commit()
    now_ms = int(clock.now().timestamp() * 1000)
    for name in ("dialog_message.json", "channel_comment.json", "group_chatter.json"):
        update = json.loads(payload("max", name))  # published now, inside the dashboard's days
        update["timestamp"] = update["message"]["timestamp"] = now_ms
        raw = json.dumps(update).encode()
        runtime.inbox.ingest(normalize(Channel.max, raw, runtime.profile))
    yield runtime
    runtime.dispose()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, start_scheduler=False)) as test_client:
        token = CSRF.search(test_client.get("/ui/login").text)
        assert token
        answer = test_client.post(
            "/ui/login",
            data={"login": "sveta", "password": "supervisor-pass-1", "csrf_token": token.group(1)},
        )
        assert answer.status_code == 200
        yield test_client


def _rows(page: str) -> list[str]:
    return re.findall(r"<tr.*?</tr>", page, re.S)


def test_queue_shows_max_with_its_label_and_filters_by_it(client: TestClient) -> None:
    page = client.get("/ui/inbox").text
    assert '<option value="max"' in page
    max_rows = [r for r in _rows(page) if "<td>MAX</td>" in r]
    assert len(max_rows) == 2  # the appeal and the comment; the group chatter needs nothing
    only = client.get("/ui/inbox?channel=max").text
    assert len([r for r in _rows(only) if "<td>MAX</td>" in r]) == 2
    assert client.get("/ui/inbox?channel=telegram").text.count("<td>MAX</td>") == 0


def test_dashboard_and_csv_count_max(client: TestClient, rt: Runtime, clock: FrozenClock) -> None:
    from inbox.scheduler import run_sla_scan

    clock.advance(timedelta(hours=3))  # both deadlines (2 h) passed unanswered
    run_sla_scan(rt)
    page = client.get("/ui/dashboard?days=30").text
    assert page.count("<td>MAX</td>") >= 3  # the share per kind (2) and the breaches (2)
    export = client.get("/ui/dashboard.csv?days=30")
    lines = export.text.lstrip("\ufeff").splitlines()
    assert len([line for line in lines[1:] if ",max," in line]) == 2
