"""Issue #9, should-fix: an administrator can lift a per-address login lock.

An office behind one NAT is locked out when its address collects too many failed logins.
The admin's staff page lists locked addresses with a button, and ``otklik operator unlock
--address IP`` does the same from the command line (next to ``otklik operator unlock
LOGIN``); each is an audit event.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from core.clock import FrozenClock
from core.config import get_settings
from inbox.auth import hash_password
from inbox.db import session_scope
from inbox.models import LoginThrottle, Operator
from inbox.runtime import Runtime
from otklik.cli import app as cli
from tests.helpers.login import (
    CSRF,
    IP_A,
    IP_B,
    RIGHT,
    ClientFor,
    admin_client,
    attempt,
    events,
    make_runtime,
)


@pytest.fixture
def rt(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(db_url, clock, tmp_path)  # 3 per login, 5 per address
    with session_scope(runtime.factory) as session:
        session.add(Operator(login="anna", display_name="Анна", password_hash=hash_password(RIGHT)))
    yield runtime
    runtime.dispose()


def lock_address(client_for: ClientFor, ip: str = IP_A) -> None:
    office = client_for(ip)
    codes = [attempt(office, name, "guess").status_code for name in "abcde"]
    assert codes == [401, 401, 401, 401, 429]
    assert attempt(office, "anna", RIGHT).status_code == 429


def otklik(db_url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("OTKLIK_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, list(args))
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.stdout, result.stderr


def test_an_admin_sees_a_locked_address_and_unlocks_it(rt: Runtime, client_for: ClientFor) -> None:
    lock_address(client_for)
    admin, token = admin_client(rt, client_for)  # from IP_B
    page = admin.get("/ui/admin/operators").text
    assert "Заблокированные адреса" in page
    assert re.search(rf"<td>{re.escape(IP_A)}</td><td>23\.11 \d\d:15</td>", page)
    refused = admin.post("/ui/admin/addresses/unlock", data={"address": IP_A})
    assert refused.status_code == 403  # no CSRF token
    done = admin.post("/ui/admin/addresses/unlock", data={"csrf_token": token, "address": IP_A})
    assert f"Вход с адреса «{IP_A}» разблокирован" in done.text
    assert "Сейчас ни один адрес не заблокирован" in done.text
    assert attempt(client_for(IP_A), "anna", RIGHT).status_code == 303
    [event] = events(rt, "address_unlocked")
    assert event.actor == "root" and event.data == {"address": IP_A}
    unknown = admin.post(
        "/ui/admin/addresses/unlock", data={"csrf_token": token, "address": "192.0.2.200"}
    )
    assert "Адрес «192.0.2.200» не заблокирован" in unknown.text
    assert len(events(rt, "address_unlocked")) == 1


def test_an_operator_cannot_unlock_an_address(rt: Runtime, client_for: ClientFor) -> None:
    lock_address(client_for)
    operator = client_for(IP_B)
    assert attempt(operator, "anna", RIGHT).status_code == 303
    token = CSRF.search(operator.get("/ui/inbox").text)
    assert token
    answer = operator.post(
        "/ui/admin/addresses/unlock",
        data={"csrf_token": token.group(1), "address": IP_A},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    with rt.factory() as session:
        assert session.exec(select(LoginThrottle).where(LoginThrottle.key == IP_A)).one()


def test_the_command_line_unlocks_an_address_or_a_login(
    rt: Runtime, client_for: ClientFor, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_address(client_for)
    guesser = client_for("192.0.2.50")
    assert [attempt(guesser, "anna", "guess").status_code for _ in range(3)] == [401, 401, 429]

    code, out, err = otklik(db_url, monkeypatch, "operator", "unlock", "--address", IP_A)
    assert (code, out.strip()) == (0, f"logins from {IP_A} unlocked"), err
    code, _, err = otklik(db_url, monkeypatch, "operator", "unlock", "--address", IP_A)
    assert code == 2 and err.strip() == f"otklik: address '{IP_A}' has no failed logins or lock"
    assert attempt(client_for(IP_A), "anna", RIGHT).status_code == 429  # the login is locked

    code, out, _ = otklik(db_url, monkeypatch, "operator", "unlock", "ANNA")
    assert (code, out.strip()) == (0, "login anna unlocked")
    assert attempt(client_for(IP_A), "anna", RIGHT).status_code == 303

    code, _, err = otklik(db_url, monkeypatch, "operator", "unlock")
    assert code == 2 and err.strip() == "otklik: give a LOGIN or --address IP (one of them)"
    code, _, _ = otklik(db_url, monkeypatch, "operator", "unlock", "anna", "--address", IP_A)
    assert code == 2
    assert [(e.actor, e.data) for e in events(rt, "address_unlocked")] == [
        ("cli", {"address": IP_A})
    ]
    assert [(e.actor, e.data) for e in events(rt, "login_unlocked")] == [("cli", {"login": "anna"})]
