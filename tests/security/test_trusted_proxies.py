"""Issue #9, item 5: a client cannot choose its own address with ``X-Forwarded-For``.

A real ``otklik serve`` on loopback, as a client on the same host would reach it. With the
defaults nobody is a trusted proxy, so a spoofed header changes nothing: the rate limiter
and the login throttle still see 127.0.0.1. Only with ``OTKLIK_TRUSTED_PROXIES=127.0.0.1``
(a proxy on this host) does the header name the client.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from core.config import Settings
from inbox.models import AuditEvent
from inbox.runtime import build_runtime
from tests.helpers.loadgen import Server

pytestmark = pytest.mark.slow

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SPOOFED = "203.0.113.77"


@pytest.fixture(params=["default", "trusted"])
def server(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[Server]:
    env = {
        "OTKLIK_DATABASE_URL": db_url,
        "OTKLIK_DATA_DIR": str(tmp_path / "data"),
        "OTKLIK_BACKGROUND": "off",
        # The rate limit on /public only (two requests, then 429 for a long while), so that
        # the login attempts below meet the login throttle alone: two failures lock an address.
        "OTKLIK_RATE_LIMIT_PUBLIC_PREFIXES": '["/public"]',
        "OTKLIK_RATE_LIMIT_PUBLIC_PER_SECOND": "0.001",
        "OTKLIK_RATE_LIMIT_PUBLIC_BURST": "2",
        "OTKLIK_LOGIN_IP_MAX_FAILURES": "2",
        "OTKLIK_LOGIN_MAX_FAILURES": "0",
        "OTKLIK_TRUSTED_PROXIES": "127.0.0.1" if request.param == "trusted" else "",
    }
    srv = Server(env=env, log_path=tmp_path / "serve.log")
    srv.start()
    yield srv
    srv.stop()


def _fail_login(client: httpx.Client, login: str, headers: dict[str, str]) -> httpx.Response:
    token = CSRF.search(client.get("/ui/login").text)
    assert token
    return client.post(
        "/ui/login",
        data={"login": login, "password": "wrong", "csrf_token": token.group(1)},
        headers=headers,
    )


def test_only_a_trusted_proxy_may_name_the_client_address(
    server: Server, db_url: str, tmp_path: Path
) -> None:
    trusted = server.env["OTKLIK_TRUSTED_PROXIES"] != ""
    spoof = {"X-Forwarded-For": SPOOFED}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        # The rate limiter: 127.0.0.1 has used its two requests.
        assert [client.get("/public/ratings").status_code for _ in range(3)] == [200, 200, 429]
        limited = client.get("/public/ratings", headers=spoof)
        # The login throttle: the second failure locks 127.0.0.1.
        failures = [_fail_login(client, f"guess{n}", {}).status_code for n in range(2)]
        login = _fail_login(client, "guess-spoofed", spoof)
    assert failures == [401, 429]
    rt = build_runtime(Settings(database_url=db_url, data_dir=tmp_path / "data"))
    with rt.factory() as session:
        seen = session.exec(
            select(AuditEvent).where(col(AuditEvent.kind).in_(["login_failed", "login_refused"]))
        ).all()
    rt.dispose()
    login_ip = next(e.data["ip"] for e in seen if e.data["login"] == "guess-spoofed")
    if trusted:  # from a trusted proxy the header names another client, with its own counts
        assert (limited.status_code, login.status_code, login_ip) == (200, 401, SPOOFED)
    else:  # the header is ignored: still 127.0.0.1, still limited and locked
        assert (limited.status_code, login.status_code, login_ip) == (429, 429, "127.0.0.1")
