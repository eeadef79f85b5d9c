"""Operator login hardening over HTTP, on both databases: throttling and lockout (per login
name and per client address, shared through the database), the audit trail of attempts, no
user enumeration, the session cookie's flags, the session's lifetime and logout."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher, extract_parameters
from sqlmodel import select

from core.clock import FrozenClock
from inbox.auth import _dummy_hash, check_password, hash_password
from inbox.models import AuditEvent, LoginThrottle, Operator
from inbox.runtime import Runtime
from tests.helpers.login import (
    CSRF,
    IP_A,
    IP_B,
    RIGHT,
    ClientFor,
    admin_client,
    attempt,
    client_for,  # noqa: F401
    events,
    logged_in,
    make_runtime,
    rt,  # noqa: F401
)

ERROR = re.compile(r'<p class="flash error" role="alert">([^<]*)</p>')
WRONG = "Неверный логин или пароль."
LOCKED = "Слишком много неудачных попыток входа"


def error_text(response: httpx.Response) -> str:
    found = ERROR.search(response.text)
    assert found, response.text
    return found.group(1)


def test_n_failures_lock_the_login_even_for_the_right_password_until_the_lock_ends(
    rt: Runtime,
    clock: FrozenClock,
    client_for: ClientFor,
) -> None:
    client = client_for()
    for _ in range(2):
        wrong = attempt(client, "anna", "guess")
        assert wrong.status_code == 401 and error_text(wrong) == WRONG
    third = attempt(client, "anna", "guess")
    assert third.status_code == 429 and third.headers["retry-after"] == "900"
    assert error_text(third).startswith(LOCKED) and "через 15 мин" in error_text(third)

    refused = attempt(client, "anna", RIGHT)
    assert refused.status_code == 429 and LOCKED in error_text(refused)
    assert not logged_in(client)
    clock.advance(timedelta(minutes=14))
    still = attempt(client, "anna", RIGHT)
    assert still.status_code == 429 and still.headers["retry-after"] == "60"
    assert "через 1 мин" in error_text(still)
    assert not logged_in(client)

    clock.advance(timedelta(minutes=1))
    ok = attempt(client, "anna", RIGHT)
    assert ok.status_code == 303 and ok.headers["location"] == "/ui/inbox"
    assert logged_in(client)

    failed = events(rt, "login_failed")
    expected = {"login": "anna", "ip": IP_A, "reason": "wrong_password"}
    assert [e.data for e in failed] == [expected] * 3
    assert all(e.actor == "anonymous" and e.operator_id is None for e in failed)
    (locked,) = events(rt, "login_locked")
    assert locked.data["locked"] == "login" and locked.data["login"] == "anna"
    assert locked.data["ip"] == IP_A and locked.data["until"].startswith("2026-11-23T09:15")
    refused_events = events(rt, "login_refused")
    assert [(e.data["login"], e.data["ip"]) for e in refused_events] == [("anna", IP_A)] * 2
    assert len(events(rt, "logged_in")) == 1
    with rt.factory() as session:
        everything = json.dumps([e.data for e in session.exec(select(AuditEvent)).all()])
    assert "guess" not in everything and RIGHT not in everything


def test_an_unknown_login_is_answered_and_locked_exactly_like_a_real_one(
    rt: Runtime,
    client_for: ClientFor,
) -> None:
    real, ghost = client_for(IP_A), client_for(IP_B)
    real_answers = [attempt(real, "anna", "guess") for _ in range(4)]
    ghost_answers = [attempt(ghost, "nobody", "guess") for _ in range(4)]
    assert [r.status_code for r in real_answers] == [401, 401, 429, 429]
    for mine, theirs in zip(real_answers, ghost_answers, strict=True):
        assert mine.status_code == theirs.status_code
        assert mine.headers.get("retry-after") == theirs.headers.get("retry-after")
        assert error_text(mine) == error_text(theirs)
    assert [e.data["reason"] for e in events(rt, "login_failed")] == (
        ["wrong_password"] * 3 + ["unknown_login"] * 3
    )
    with rt.factory() as session:
        keys = sorted(row.key for row in session.exec(select(LoginThrottle)).all())
    assert keys == sorted(["anna", "nobody", IP_A, IP_B])


def test_a_successful_login_resets_the_login_counter(client_for: ClientFor) -> None:
    client = client_for()
    assert [attempt(client, "anna", "guess").status_code for _ in range(2)] == [401, 401]
    assert attempt(client, "anna", RIGHT).status_code == 303
    token = CSRF.search(client.get("/ui/inbox").text)
    assert token
    client.post("/ui/logout", data={"csrf_token": token.group(1)})
    # Without the reset the third failure in the window would lock "anna".
    assert [attempt(client, "anna", "guess").status_code for _ in range(2)] == [401, 401]
    assert attempt(client, "anna", RIGHT).status_code == 303


def test_failures_outside_the_window_start_a_new_count(
    clock: FrozenClock,
    client_for: ClientFor,
) -> None:
    client = client_for()
    assert [attempt(client, "anna", "guess").status_code for _ in range(2)] == [401, 401]
    clock.advance(timedelta(minutes=15))
    assert [attempt(client, "anna", "guess").status_code for _ in range(2)] == [401, 401]
    assert attempt(client, "anna", RIGHT).status_code == 303


def test_one_address_trying_many_logins_is_locked_and_others_are_not(
    rt: Runtime,
    clock: FrozenClock,
    client_for: ClientFor,
) -> None:
    attacker, colleague = client_for(IP_A), client_for(IP_B)
    answers = [attempt(attacker, name, "guess").status_code for name in "abcde"]
    assert answers == [401, 401, 401, 401, 429]  # five names, one failure each
    refused = attempt(attacker, "anna", RIGHT)
    assert refused.status_code == 429 and LOCKED in error_text(refused)
    assert attempt(colleague, "anna", RIGHT).status_code == 303  # another address is not locked
    assert attempt(attacker, "anna", RIGHT).status_code == 429  # nor is this one unlocked by it
    (locked,) = events(rt, "login_locked")
    assert locked.data == {
        "login": "e", "ip": IP_A, "locked": "ip", "until": locked.data["until"]
    }  # fmt: skip
    clock.advance(timedelta(minutes=15))
    assert attempt(attacker, "anna", RIGHT).status_code == 303


def test_the_counters_are_shared_by_processes_on_one_database(
    db_url: str,
    rt: Runtime,
    clock: FrozenClock,
    tmp_path: Path,
    client_for: ClientFor,
) -> None:
    """Two apps with their own runtimes and engines stand for two web processes."""
    other = make_runtime(db_url, clock, tmp_path)
    try:
        first, second = client_for(IP_A), client_for(IP_A, other)
        assert attempt(first, "anna", "guess").status_code == 401
        assert attempt(second, "anna", "guess").status_code == 401
        assert attempt(first, "anna", "guess").status_code == 429
        assert attempt(second, "anna", RIGHT).status_code == 429
    finally:
        other.dispose()


def test_every_login_attempt_costs_one_argon2_verification(
    client_for: ClientFor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unknown, deactivated and password-less logins are not answered faster (enumeration)."""
    calls: list[str] = []
    verify = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        calls.append(str(hash))
        return verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    for number, name in enumerate(["anna", "nobody", "retired", "nohash"]):
        calls.clear()
        client = client_for(f"192.0.2.{number + 1}")
        assert attempt(client, name, "guess").status_code == 401
        assert len(calls) == 1, name
    calls.clear()
    assert not check_password("not-an-argon2-hash", "guess")
    assert calls == ["not-an-argon2-hash", _dummy_hash()]  # refused unparsed, then a real one
    assert extract_parameters(_dummy_hash()) == extract_parameters(hash_password("x"))


@pytest.mark.parametrize("secure", [False, True])
def test_the_secure_cookies_setting_marks_the_session_cookie(
    db_url: str,
    clock: FrozenClock,
    tmp_path: Path,
    client_for: ClientFor,
    secure: bool,
) -> None:
    runtime = make_runtime(db_url, clock, tmp_path, secure_cookies=secure)
    try:
        cookie = client_for(IP_A, runtime).get("/ui/login").headers["set-cookie"]
    finally:
        runtime.dispose()
    assert cookie.startswith("otklik_session=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", f"max-age={12 * 3600}", "path=/"} <= flags
    assert ("secure" in flags) is secure


def test_a_login_lasts_the_session_max_age_at_most(
    clock: FrozenClock,
    client_for: ClientFor,
) -> None:
    client = client_for()
    assert attempt(client, "anna", RIGHT).status_code == 303
    clock.advance(timedelta(hours=11, minutes=59))
    assert logged_in(client)
    clock.advance(timedelta(minutes=1))
    expired = client.get("/ui/inbox", follow_redirects=False)
    assert expired.status_code == 303 and expired.headers["location"] == "/ui/login"
    assert not logged_in(client)


def test_logout_clears_the_session(rt: Runtime, client_for: ClientFor) -> None:
    client = client_for()
    assert attempt(client, "anna", RIGHT).status_code == 303
    token = CSRF.search(client.get("/ui/inbox").text)
    assert token
    out = client.post("/ui/logout", data={"csrf_token": token.group(1)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert out.headers["set-cookie"].startswith("otklik_session=null;")
    assert "expires=thu, 01 jan 1970" in out.headers["set-cookie"].lower()
    assert not logged_in(client)
    (event,) = events(rt, "logged_out")
    assert event.actor == "anna"


def test_logout_ends_a_copy_of_the_session_cookie(
    clock: FrozenClock,
    client_for: ClientFor,
) -> None:
    client = client_for()
    assert attempt(client, "anna", RIGHT).status_code == 303
    copied = client.cookies["otklik_session"]
    clock.advance(timedelta(minutes=5))
    token = CSRF.search(client.get("/ui/inbox").text)
    assert token
    client.post("/ui/logout", data={"csrf_token": token.group(1)})
    thief = client_for(IP_B)
    thief.cookies.set("otklik_session", copied)
    assert not logged_in(thief), "a copy of the cookie outlived the logout"
    assert attempt(client, "anna", RIGHT).status_code == 303
    assert logged_in(client)


def anna_id(rt: Runtime) -> int:
    with rt.factory() as session:
        anna = session.exec(select(Operator).where(Operator.login == "anna")).one()
        assert anna.id
        return anna.id


def test_an_admin_password_reset_ends_sessions_and_lifts_the_lock(
    rt: Runtime,
    clock: FrozenClock,
    client_for: ClientFor,
) -> None:
    anna = client_for()
    assert attempt(anna, "anna", RIGHT).status_code == 303
    guesser = client_for("192.0.2.7")
    assert [attempt(guesser, "anna", "guess").status_code for _ in range(3)] == [401, 401, 429]
    clock.advance(timedelta(minutes=1))
    admin, token = admin_client(rt, client_for)
    url = f"/ui/admin/operators/{anna_id(rt)}/password"
    short = admin.post(url, data={"csrf_token": token, "password": "short"})
    assert "не короче 8 символов" in short.text
    assert logged_in(anna)
    done = admin.post(url, data={"csrf_token": token, "password": "new-password-42"})
    assert "Пароль сотрудника «anna» изменён" in done.text
    assert not logged_in(anna), "the old session survived the password reset"
    assert attempt(anna, "anna", RIGHT).status_code == 401
    assert attempt(anna, "anna", "new-password-42").status_code == 303
    (event,) = events(rt, "operator_password_reset")
    assert event.actor == "root" and "new-password" not in json.dumps(event.data)


def test_an_admin_sees_a_locked_login_and_unlocks_it(rt: Runtime, client_for: ClientFor) -> None:
    guesser = client_for()
    assert [attempt(guesser, "anna", "guess").status_code for _ in range(3)] == [401, 401, 429]
    admin, token = admin_client(rt, client_for)
    page = admin.get("/ui/admin/operators").text
    assert page.count("Вход заблокирован до") == 1
    unlocked = admin.post(f"/ui/admin/operators/{anna_id(rt)}/unlock", data={"csrf_token": token})
    assert "Вход для «anna» разблокирован" in unlocked.text
    assert "Вход заблокирован до" not in unlocked.text
    assert attempt(client_for("192.0.2.8"), "anna", RIGHT).status_code == 303
    assert [e.actor for e in events(rt, "login_unlocked")] == ["root"]


def test_an_operator_changes_their_own_password_and_other_sessions_end(
    rt: Runtime,
    clock: FrozenClock,
    client_for: ClientFor,
) -> None:
    desk = client_for()
    assert attempt(desk, "anna", RIGHT).status_code == 303
    clock.advance(timedelta(minutes=1))
    laptop = client_for(IP_B)
    assert attempt(laptop, "anna", RIGHT).status_code == 303
    clock.advance(timedelta(minutes=1))
    token = CSRF.search(laptop.get("/ui/account").text)
    assert token

    def change(current: str, new: str, repeat: str) -> httpx.Response:
        data = {"csrf_token": token.group(1), "current": current, "new": new, "repeat": repeat}
        return laptop.post("/ui/account/password", data=data, follow_redirects=False)

    assert error_text(change("guess", "brand-new-pass", "brand-new-pass")).startswith(
        "Текущий пароль указан неверно"
    )
    assert "не короче 8" in error_text(change(RIGHT, "short", "short"))
    assert "не совпадают" in error_text(change(RIGHT, "brand-new-pass", "brand-new-pas"))
    assert logged_in(desk)
    assert change(RIGHT, "brand-new-pass", "brand-new-pass").status_code == 303
    assert "Пароль изменён" in laptop.get("/ui/inbox").text
    assert logged_in(laptop), "the session that changed the password goes on"
    assert not logged_in(desk), "the other session survived the password change"
    assert attempt(desk, "anna", RIGHT).status_code == 401
    assert attempt(desk, "anna", "brand-new-pass").status_code == 303
    (event,) = events(rt, "password_changed")
    assert event.actor == "anna" and "brand-new" not in json.dumps(event.data)
    assert client_for().get("/ui/account", follow_redirects=False).status_code == 303
