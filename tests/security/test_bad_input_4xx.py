"""Issue #9, item 8: bad input gets a 4xx with a JSON detail, never a 500 or a traceback.

Deep nesting is refused by the JSON guard (``inbox/web/limits.py``) before any parser sees
the body, whatever the endpoint and its declared content type; huge numbers in ids and
timestamps are bounded where they are read (``core/bounded.py``), before they reach float
arithmetic or a BIGINT column. On SQLite and PostgreSQL (their drivers overflow differently).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.vk.parse import parse_vk
from inbox.runtime import Runtime
from inbox.web.limits import too_deep
from otklik.demo import load_demo
from otklik.web import create_app
from tests.helpers.payloads import payload

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HUGE = "1" + "0" * 30  # a 31-digit number: no BIGINT holds it
TELEGRAM_SECRET = "telegram-webhook-secret"
DEEP = b"[" * 100_000


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    settings = runtime.settings.model_copy(
        update={
            "vk_token": "vk1.a.group-token", "vk_group_id": 200000001,
            "vk_confirmation": "3f2a9c1b", "vk_secret": "vk-secret",
            "phone_secret": "phone-secret",
            "telegram_token": "123456:test-token", "telegram_webhook_secret": TELEGRAM_SECRET,
            "rate_limit_public_burst": 10_000, "rate_limit_webhooks_burst": 10_000,
        }
    )  # fmt: skip
    rt = dataclasses.replace(runtime, settings=settings)
    load_demo(rt)
    return rt


@pytest.fixture
def client(rt: Runtime, caplog: pytest.LogCaptureFixture) -> Iterator[TestClient]:
    app = create_app(rt, start_scheduler=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        token = CSRF.search(test_client.get("/ui/login").text)
        assert token
        test_client.post(
            "/ui/login",
            data={"login": "admin", "password": "admin-demo", "csrf_token": token.group(1)},
        )
        test_client.get("/chat")  # a web-chat visitor's cookie too
        caplog.clear()
        with caplog.at_level(logging.INFO):
            yield test_client
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]


def _csrf(client: TestClient) -> str:
    token = CSRF.search(client.get("/ui/account").text)
    assert token
    return token.group(1)


def _json(*chunks: bytes) -> dict[str, Any]:
    return {"content": b"".join(chunks), "headers": {"content-type": "application/json"}}


#: (what, method, url, request keyword arguments, expected status)
BAD_INPUT: list[tuple[str, str, str, dict[str, Any], int]] = [
    ("100k nested [ to VK", "POST", "/webhooks/vk", {"content": DEEP}, 400),
    ("100k nested [ to VK, as JSON", "POST", "/webhooks/vk", _json(DEEP), 400),
    ("nested JSON to Telegram", "POST", "/webhooks/telegram",
     {"content": b'{"update_id": 1, "message": ' + b"{\"a\": " * 5000 + b"1" + b"}" * 5001,
      "headers": {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}}, 400),
    ("nested JSON to the phone robot", "POST", "/webhooks/phone",
     _json(b'{"event_id": "x", "data": ', b"[" * 5000, b"]" * 5000, b"}"), 400),
    ("nested JSON to the web chat", "POST", "/api/chat/messages",
     _json(b'{"text": ', b"[" * 5000, b"]" * 5000, b"}"), 400),
    ("a 400-digit phone timestamp", "POST", "/webhooks/phone",
     {"content": b"{}", "headers": {"X-Otklik-Timestamp": "1" + "0" * 400,
                                    "X-Otklik-Signature": "sha256=00"}}, 401),
    ("a 30-digit ?after= on the event stream", "GET", f"/ui/events?after={HUGE}", {}, 422),
    ("a 30-digit Last-Event-ID", "GET", "/ui/events", {"headers": {"Last-Event-ID": HUGE}}, 400),
    ("a 30-digit ?after= in the web chat", "GET", f"/api/chat/messages?after={HUGE}", {}, 422),
    ("a 30-digit payment QR id", "GET", f"/api/chat/qr/{HUGE}.png", {}, 422),
    ("a 30-digit conversation id", "GET", f"/ui/c/{HUGE}", {}, 422),
]  # fmt: skip


def test_the_reported_bad_inputs_are_4xx_with_a_json_detail(client: TestClient) -> None:
    wrong = []
    for what, method, url, kwargs, status in BAD_INPUT:
        answer = client.request(method, url, **kwargs)
        is_json = answer.headers.get("content-type", "").startswith("application/json")
        if answer.status_code != status or not is_json or not answer.json().get("detail"):
            wrong.append((what, answer.status_code, answer.text[:120]))
    assert wrong == []


def test_the_same_shapes_elsewhere_are_4xx_or_harmless(client: TestClient) -> None:
    """Other places where a client's number or nesting reached a parser or the database."""
    token = _csrf(client)
    for url, form in [
        (f"/ui/c/1/retry/{HUGE}", {}),
        ("/ui/c/1/assign", {"operator_id": HUGE}),
        (f"/ui/admin/operators/{HUGE}", {"role": "operator"}),
        (f"/ui/admin/operators/{HUGE}/unlock", {}),
    ]:
        answer = client.post(url, data={**form, "csrf_token": token})
        assert answer.status_code == 422 and answer.json()["detail"], url
    # A number of 5000 digits: Python's int() refuses it with a ValueError, not a JSON error.
    answer = client.post("/webhooks/vk", content=b'{"group_id": ' + b"9" * 5000 + b"}")
    assert answer.status_code == 400
    # A forged rating button for a conversation id no BIGINT holds.
    answer = client.post("/api/chat/messages", json={"button": f"rate:{HUGE}:1"})
    assert answer.status_code == 200
    # YAML nested too deeply for PyYAML's recursive parser, from the admin's rules page.
    answer = client.post("/ui/admin/rules", data={"text": "[" * 20_000, "csrf_token": token})
    assert answer.status_code < 500 and "вложенность слишком глубокая" in answer.text


def test_a_deeply_nested_vk_button_payload_is_no_button(rt: Runtime) -> None:
    data = json.loads(payload("vk", "message_new.json"))
    data["object"]["message"]["payload"] = "[" * 100_000
    event = parse_vk(data, rt.profile)
    assert event.text  # parsed as a plain message, no RecursionError


def test_deeply_nested_yaml_from_the_admin_page_is_an_error_message(client: TestClient) -> None:
    answer = client.post(
        "/ui/admin/rules", data={"text": "[" * 20_000, "csrf_token": _csrf(client)}
    )
    assert answer.status_code in (200, 400, 422)
    assert "вложенность слишком глубокая" in answer.text


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b"[" * 64 + b"]" * 64, False),
        (b"[" * 65 + b"]" * 65, True),
        (b'{"a":' * 64 + b"1" + b"}" * 64, False),
        (b'{"a":' * 65 + b"1" + b"}" * 65, True),
        (json.dumps({"text": "[" * 1000, "list": [[1]] * 100}).encode(), False),
        (json.dumps({"text": '\\"[[[' * 100, "list": [[1]] * 100}).encode(), False),
        (b'"' + b'\\"' * 50_000, False),  # an unterminated string: linear, not too deep
        (b"  \n" + b"[" * 100, True),
        (b"not json " + b"[" * 100, False),
    ],
)
def test_the_nesting_guard_counts_brackets_outside_strings(body: bytes, deep: bool) -> None:
    assert too_deep(body, 64) is deep
