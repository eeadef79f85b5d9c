"""Issue #9, should-fix: web-chat session fixation.

The chat session id is the visitor's identity: whoever holds it reads their conversation.
Only ids the server issued, signed with the secret key, are accepted; a made-up, copied
unsigned, foreign-signed, tampered or expired cookie is ignored and the visitor gets a fresh
signed session (decision: no 4xx, so a visitor whose cookie expired just starts again).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlmodel import select

from bot.webchat.routes import COOKIE
from core.clock import FrozenClock
from core.config import Settings
from inbox.models import Conversation
from inbox.runtime import Runtime, build_runtime
from otklik.web import create_app
from tests.helpers.citizen_harness import citizen_bot

SECRET = "test-secret"
MAX_AGE = 30 * 24 * 3600  # bot.webchat.session.MAX_AGE
SALT = "otklik.webchat.session"  # bot.webchat.session.SALT
MADE_UP = "attacker-chosen-session-id-0001"


@pytest.fixture
def rt(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(database_url=db_url, data_dir=tmp_path, secret_key=SECRET)
    runtime = build_runtime(settings, clock=clock)
    yield runtime
    runtime.dispose()


@pytest.fixture
def app(rt: Runtime, clock: FrozenClock) -> FastAPI:
    app = create_app(rt, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(rt, clock)
    return app


def plant(client: TestClient, value: str) -> None:
    """Put a cookie in the client's jar as the server's own would be (same domain)."""
    client.cookies.set(COOKIE, value, domain="testserver.local")


def threads(rt: Runtime) -> list[str]:
    with rt.factory() as session:
        return [c.thread_key for c in session.exec(select(Conversation)).all()]


def test_a_made_up_session_id_is_replaced_by_a_signed_one_of_the_server(
    app: FastAPI, rt: Runtime
) -> None:
    client = TestClient(app)
    plant(client, MADE_UP)
    sent = client.post("/api/chat/messages", json={"text": "Во дворе не вывозят мусор"})
    assert sent.status_code == 200
    issued = client.cookies[COOKIE]
    assert issued != MADE_UP and issued.count(".") == 2  # id.time.signature
    [thread] = threads(rt)
    assert thread != f"web:{MADE_UP}"
    assert issued.startswith(thread.removeprefix("web:") + ".")
    planted = TestClient(app)  # the attacker who planted the made-up id reads nothing
    plant(planted, MADE_UP)
    assert planted.get("/api/chat/messages").json() == []


@pytest.mark.parametrize("kind", ["unsigned", "other key", "tampered", "expired", "huge"])
def test_a_cookie_the_server_did_not_sign_or_that_expired_reads_nothing(
    app: FastAPI, rt: Runtime, kind: str
) -> None:
    citizen = TestClient(app)
    citizen.get("/chat")
    assert citizen.post("/api/chat/messages", json={"text": "Где мой паспорт"}).status_code == 200
    session_id = threads(rt)[0].removeprefix("web:")
    assert len(citizen.get("/api/chat/messages").json()) == 2
    forged = {
        "unsigned": session_id,
        "other key": _signed_at(session_id, time.time(), "another-secret"),
        "tampered": _signed_at(session_id, time.time())[:-2] + "xx",
        "expired": _signed_at(session_id, time.time() - MAX_AGE - 60),
        "huge": _signed_at(session_id, time.time()) + "A" * 5000,
    }[kind]
    thief = TestClient(app)
    plant(thief, forged)
    assert thief.get("/api/chat/messages").json() == []
    thief.post("/api/chat/messages", json={"text": "Я тоже тут"})
    assert len(citizen.get("/api/chat/messages").json()) == 2  # nothing joined their chat
    assert len(set(threads(rt))) == 2


def _signed_at(session_id: str, moment: float, secret: str = SECRET) -> str:
    """The cookie the server would have set at ``moment`` (``bot.webchat.session.signed``)."""

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(moment)

    return Then(secret, salt=SALT).sign(session_id).decode("ascii")


def test_the_server_signs_as_the_tests_expect() -> None:
    from bot.webchat import session

    assert (session.MAX_AGE, session.SALT) == (MAX_AGE, SALT)
    cookie = session.signed(SECRET, "x" * 24)
    assert TimestampSigner(SECRET, salt=SALT).unsign(cookie, max_age=60) == b"x" * 24


def test_the_chat_page_keeps_a_valid_session_and_signs_it_anew(app: FastAPI) -> None:
    client = TestClient(app)
    client.get("/chat")
    first = client.cookies[COOKIE]
    an_hour_ago = _signed_at(first.split(".")[0], time.time() - 3600)
    plant(client, an_hour_ago)
    client.get("/chat")
    again = client.cookies[COOKIE]
    assert again.split(".")[0] == first.split(".")[0]  # the same chat...
    assert again.split(".")[1] != an_hour_ago.split(".")[1]  # ...signed now: 30 days from now
    page = client.get("/chat")
    assert f"Max-Age={MAX_AGE}" in page.headers["set-cookie"]
    assert "HttpOnly" in page.headers["set-cookie"]
