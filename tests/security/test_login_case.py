"""Issue #9, should-fix: logins are case-insensitive.

Stored in lower case, compared in lower case: «Anna» logs in as anna, and guesses at «ANNA»,
«Anna» and «anna» count against one login (before, each spelling had its own counter, so an
attacker got the limit once per spelling). ``otklik operator add`` and the admin page store
lower case; a migration lowercases existing logins and refuses, naming them, when two
accounts differ only in letter case.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select
from typer.testing import CliRunner

from core.clock import FrozenClock
from core.config import get_settings
from inbox.auth import hash_password
from inbox.db import make_engine, session_scope, upgrade
from inbox.models import LoginThrottle, Operator
from inbox.runtime import Runtime
from otklik.cli import app as cli
from tests.helpers.login import RIGHT, ClientFor, admin_client, attempt, logged_in, make_runtime
from tests.helpers.payloads import PG_URL

LOCKED = 429


@pytest.fixture
def rt(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(db_url, clock, tmp_path)
    with session_scope(runtime.factory) as session:
        session.add(Operator(login="anna", display_name="Анна", password_hash=hash_password(RIGHT)))
        session.add(
            Operator(login="ольга", display_name="Ольга", password_hash=hash_password(RIGHT))
        )
    yield runtime
    runtime.dispose()


@pytest.mark.parametrize("typed", ["Anna", "ANNA", "  anna ", "AnNa"])
def test_a_login_is_accepted_in_any_letter_case(client_for: ClientFor, typed: str) -> None:
    client = client_for()
    assert attempt(client, typed, RIGHT).status_code == 303
    assert logged_in(client)


def test_a_cyrillic_login_is_accepted_in_any_letter_case(client_for: ClientFor) -> None:
    assert attempt(client_for(), "ОЛЬГА", RIGHT).status_code == 303
    assert attempt(client_for("192.0.2.3"), "Ольга", RIGHT).status_code == 303


def test_guesses_in_different_letter_cases_count_against_one_login(
    rt: Runtime, client_for: ClientFor
) -> None:
    codes = [
        attempt(client_for(f"192.0.2.{n}"), name, "guess").status_code
        for n, name in enumerate(["Anna", "ANNA", "aNNa"], start=1)
    ]
    assert codes == [401, 401, LOCKED]
    assert attempt(client_for("192.0.2.9"), "anna", RIGHT).status_code == LOCKED
    with rt.factory() as session:
        keys = {r.key for r in session.exec(select(LoginThrottle)).all() if r.scope == "login"}
    assert keys == {"anna"}


def test_the_admin_page_and_the_command_line_store_logins_in_lower_case(
    rt: Runtime, client_for: ClientFor, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, token = admin_client(rt, client_for)
    form = {"csrf_token": token, "display_name": "Пётр", "role": "operator", "password": RIGHT}
    created = admin.post("/ui/admin/operators", data={**form, "login": "Petr"})
    assert "Оператор «petr» создан" in created.text
    again = admin.post("/ui/admin/operators", data={**form, "login": "PETR"})
    assert "Логин «petr» уже занят" in again.text
    monkeypatch.setenv("OTKLIK_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            cli, ["operator", "add", "Boris", "--name", "Борис", "--password-stdin"],
            input=RIGHT + "\n",
        )  # fmt: skip
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0 and result.stdout.strip() == "created operator boris"
    with rt.factory() as session:
        logins = sorted(o.login for o in session.exec(select(Operator)).all())
    assert logins == ["anna", "boris", "petr", "root", "ольга"]
    assert attempt(client_for("192.0.2.5"), "BORIS", RIGHT).status_code == 303


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all (the migrations are run step by step)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    name = f"otklik_case_{uuid.uuid4().hex[:10]}"
    server = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        server.dispose()
        if os.environ.get("OTKLIK_REQUIRE_PG"):
            raise
        pytest.skip("PostgreSQL unreachable")
    yield sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with server.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


def _accounts(url: str, *logins: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for login in logins:
            conn.execute(
                sa.text(
                    "INSERT INTO operator (login, display_name, role, password_hash, active) "
                    "VALUES (:login, :login, 'operator', '', true)"
                ),
                {"login": login},
            )
        conn.execute(
            sa.text(
                "INSERT INTO login_throttle (scope, key, failures) "
                "VALUES ('login', 'Anna', 2), ('login', 'boris', 1)"
            )
        )
    engine.dispose()


def _logins(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        found = sorted(conn.execute(sa.text("SELECT login FROM operator")).scalars())
        counters = sorted(conn.execute(sa.text("SELECT key FROM login_throttle")).scalars())
    engine.dispose()
    return [*found, "|", *counters]


def test_the_migration_lowercases_existing_logins_and_reports_each(
    empty_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(empty_url, "webchat_quota")
    _accounts(empty_url, "Anna", "boris", "ОЛЬГА")
    with caplog.at_level(logging.WARNING, logger="inbox.migrations"):
        upgrade(empty_url)
    assert _logins(empty_url) == ["anna", "boris", "ольга", "|", "boris"]
    assert "operator login 'Anna' is now 'anna'" in caplog.text
    assert "'ОЛЬГА' is now 'ольга'" in caplog.text


def test_the_migration_refuses_logins_that_differ_only_in_case_and_changes_nothing(
    empty_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from inbox.db import MigrationRefused

    upgrade(empty_url, "webchat_quota")
    _accounts(empty_url, "Anna", "anna", "boris")
    with pytest.raises(MigrationRefused, match="'Anna' and 'anna'"):
        upgrade(empty_url)
    assert _logins(empty_url) == ["Anna", "anna", "boris", "|", "Anna", "boris"]
    monkeypatch.setenv("OTKLIK_DATABASE_URL", empty_url)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("otklik: logins become case-insensitive") and "'Anna' and 'anna'" in line
    assert "Traceback" not in result.output
    # renamed by the administrator, the upgrade goes through
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE operator SET login = 'anna.old' WHERE login = 'Anna'"))
    engine.dispose()
    upgrade(empty_url)
    assert _logins(empty_url)[:3] == ["anna", "anna.old", "boris"]
