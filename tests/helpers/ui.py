"""Operator UI helpers: a runtime (with the demo data or only its accounts), a client, logging
in, ingesting a private message."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.normalize import normalize
from core.clock import FrozenClock
from core.config import RULES_DIR, Settings
from core.events import Channel
from inbox import operators
from inbox.demo_accounts import DEMO_OPERATORS
from inbox.runtime import Runtime, build_runtime
from otklik.demo import _tg_private, load_demo
from otklik.web import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def ui_runtime(
    db_url: str, clock: FrozenClock, tmp_path: Path, *, demo: bool = True, **overrides: Any
) -> Runtime:
    """A runtime for the operator UI suites. With ``demo``: the demo data and private copies of
    the rules and profile (admin edits them); without: only the demo accounts, no appeals.
    ``overrides`` are settings (the secret key is ``test-secret`` unless one is given)."""
    values: dict[str, Any] = {"secret_key": "test-secret", **overrides}
    if demo:
        rules = tmp_path / "rules"
        shutil.copytree(RULES_DIR, rules, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        values = {"rules_dir": rules, "profile": rules / "agency.example.yaml", **values}
    runtime = build_runtime(Settings(database_url=db_url, data_dir=tmp_path, **values), clock=clock)
    if demo:
        load_demo(runtime)
    else:
        with runtime.factory() as session:
            for login_name, name, role, password in DEMO_OPERATORS:
                operators.create(session, login_name, name, role.value, password)
            session.commit()
    return runtime


@pytest.fixture
def rt(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime with demo data and private copies of the rules and profile (admin edits them)."""
    runtime = ui_runtime(db_url, clock, tmp_path)
    yield runtime
    runtime.dispose()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, start_scheduler=False)) as test_client:
        yield test_client


def login(client: TestClient, name: str, password: str) -> str:
    """Log in; returns the session's CSRF token."""
    token = CSRF.search(client.get("/ui/login").text)
    assert token
    response = client.post(
        "/ui/login", data={"login": name, "password": password, "csrf_token": token.group(1)}
    )
    assert response.status_code == 200, response.text
    page_token = CSRF.search(response.text)
    assert page_token
    return page_token.group(1)


def ingest_private(rt: Runtime, text: str, update_id: int = 990001) -> int:
    raw = json.dumps(_tg_private(update_id, 391999001, "Гость", text, rt.clock.now()))
    _, processed = rt.inbox.ingest(normalize(Channel.telegram, raw.encode(), rt.profile))
    assert processed is not None and processed.conversation_id is not None
    return processed.conversation_id
