"""Operator login helpers: clients from given addresses, attempts, the audit events."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from core.clock import FrozenClock
from core.config import Settings
from inbox.auth import hash_password
from inbox.db import session_scope
from inbox.models import AuditEvent, Operator
from inbox.runtime import Runtime, build_runtime
from otklik.web import create_app

IP_A, IP_B = "203.0.113.10", "198.51.100.20"


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


RIGHT = "correct-horse-battery"


ClientFor = Callable[..., TestClient]


def make_runtime(db_url: str, clock: FrozenClock, tmp_path: Path, **overrides: Any) -> Runtime:
    settings = Settings(
        database_url=db_url, data_dir=tmp_path, secret_key="test-secret",
        login_max_failures=3, login_ip_max_failures=5,
        # the in-memory burst limit in front must not answer before the lockout does
        rate_limit_public_burst=1000,
        **overrides,
    )  # fmt: skip
    return build_runtime(settings, clock=clock)


@pytest.fixture
def rt(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(db_url, clock, tmp_path)
    with session_scope(runtime.factory) as session:
        session.add(Operator(login="anna", display_name="Анна", password_hash=hash_password(RIGHT)))
        session.add(
            Operator(
                login="retired", display_name="Бывший", password_hash=hash_password(RIGHT),
                active=False,
            )
        )  # fmt: skip
        session.add(Operator(login="nohash", display_name="Без пароля"))
    yield runtime
    runtime.dispose()


@pytest.fixture
def client_for(rt: Runtime) -> Iterator[ClientFor]:
    """Clients of one app (or of ``runtime``'s own app), each from its own address."""
    with ExitStack() as stack:

        def open_client(ip: str = IP_A, runtime: Runtime | None = None) -> TestClient:
            app = create_app(runtime or rt, start_scheduler=False)
            return stack.enter_context(TestClient(app, client=(ip, 50000)))

        yield open_client


def attempt(client: TestClient, name: str, password: str) -> httpx.Response:
    token = CSRF.search(client.get("/ui/login").text)
    assert token
    return client.post(
        "/ui/login",
        data={"login": name, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )


def logged_in(client: TestClient) -> bool:
    return client.get("/ui/inbox", follow_redirects=False).status_code == 200


def events(rt: Runtime, kind: str) -> list[AuditEvent]:
    with rt.factory() as session:
        query = select(AuditEvent).where(AuditEvent.kind == kind).order_by(col(AuditEvent.id))
        return list(session.exec(query).all())


def admin_client(rt: Runtime, client_for: ClientFor) -> tuple[TestClient, str]:
    with session_scope(rt.factory) as session:
        session.add(
            Operator(
                login="root", display_name="Админ", role="admin",
                password_hash=hash_password(RIGHT),
            )
        )  # fmt: skip
    client = client_for(IP_B)
    assert attempt(client, "root", RIGHT).status_code == 303
    token = CSRF.search(client.get("/ui/admin/operators").text)
    assert token
    return client, token.group(1)
