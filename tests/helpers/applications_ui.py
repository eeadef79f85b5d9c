"""Applications UI fixtures: a runtime, a client, logging in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.clock import FrozenClock
from core.config import Settings
from inbox import operators
from inbox.demo_accounts import DEMO_OPERATORS
from inbox.runtime import Runtime, build_runtime
from otklik.web import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def rt(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(database_url=db_url, data_dir=tmp_path, secret_key="test-secret")
    runtime = build_runtime(settings, clock=clock)
    with runtime.factory() as session:  # the demo accounts, without the demo's appeals
        for login_name, name, role, password in DEMO_OPERATORS:
            operators.create(session, login_name, name, role.value, password)
        session.commit()
    yield runtime
    runtime.dispose()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, start_scheduler=False)) as test_client:
        yield test_client


def login(client: TestClient, name: str, password: str) -> str:
    token = CSRF.search(client.get("/ui/login").text)
    assert token
    page = client.post(
        "/ui/login", data={"login": name, "password": password, "csrf_token": token.group(1)}
    )
    found = CSRF.search(page.text)
    assert page.status_code == 200 and found
    return found.group(1)
