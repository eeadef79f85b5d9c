"""The back-office API ``/api/v1/applications`` over HTTP, on SQLite and PostgreSQL: tokens and
scopes, idempotent status changes that tell the citizen once, and what an attacker tries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from core.clock import FrozenClock
from inbox.models import ApiToken, Application, ApplicationStatusChange, Message
from inbox.runtime import Runtime
from otklik.demo import load_demo
from otklik.web import create_app
from tests.helpers.api_abuse import (  # noqa: F401
    DEEP,
    JSON,
    assert_unauthorised,
    bearer,
    client,
    fuzz_with_token,
)
from tests.helpers.applications_harness import make_application, make_token

BASE = "/api/v1/applications"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def count(runtime: Runtime, model) -> int:  # type: ignore[no-untyped-def]
    with runtime.factory() as session:
        return len(session.exec(select(model)).all())


def test_a_read_token_lists_and_reads_an_application_with_its_history(
    client: TestClient, runtime: Runtime
) -> None:
    app_id, number, _ = make_application(runtime)
    writer = make_token(runtime, "backoffice", "applications:write")
    reader = make_token(runtime, "reports", "applications:read")
    changed = client.post(
        f"{BASE}/{number}/status", headers=bearer(writer),
        json={"status": "in_progress", "comment": "Бригада приедет в среду.",
              "expected_date": "2026-12-01", "internal_note": "наряд 17"},
    )  # fmt: skip
    assert changed.status_code == 201, changed.text
    listed = client.get(BASE, headers=bearer(reader))
    assert listed.status_code == 200
    page = listed.json()
    assert page["total"] == 1 and page["limit"] == 50 and page["offset"] == 0
    [item] = page["items"]
    assert item["number"] == number and item["status"] == "in_progress"
    assert item["channel"] == "telegram" and item["expected_date"] == "2026-12-01"
    assert item["overdue"] is False and item["version"] == 2
    assert "fields" not in item  # personal data only when one application is asked for
    one = client.get(f"{BASE}/{number}", headers=bearer(reader)).json()
    assert one["fields"]["address"] == "ул. Ленина, д. 5"
    assert one["allowed_moves"] == ["info_needed", "done", "refused"]
    [entry] = one["history"]
    assert entry["from_status"] == "submitted" and entry["to_status"] == "in_progress"
    assert entry["actor_kind"] == "api" and entry["actor"] == "backoffice"
    assert entry["internal_note"] == "наряд 17" and entry["notification"] == "queued"
    assert entry["at"].endswith("Z") or entry["at"].endswith("+00:00")
    # the ASCII spelling of the number is the same application
    assert client.get(f"{BASE}/Z-2026-{app_id:06d}", headers=bearer(reader)).json() == one


def test_a_status_change_is_applied_once_whatever_the_back_office_retries(
    client: TestClient, runtime: Runtime
) -> None:
    _, number, conversation_id = make_application(runtime)
    token = make_token(runtime, "backoffice", "applications:write")
    body = {"status": "refused", "reason": "Фонари меняют весной всем районом.",
            "expected_date": "2027-05-15"}  # fmt: skip
    headers = {**bearer(token), "Idempotency-Key": "c0ffee-1"}
    first = client.post(f"{BASE}/{number}/status", headers=headers, json=body)
    again = client.post(f"{BASE}/{number}/status", headers=headers, json=body)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["change"] == first.json()["change"] and again.json()["replayed"] is True
    other = client.post(f"{BASE}/{number}/status", headers=headers, json={"status": "in_progress"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency"
    assert count(runtime, ApplicationStatusChange) == 1
    with runtime.factory() as session:
        [message] = session.exec(select(Message)).all()
    assert message.conversation_id == conversation_id
    assert "Почему: Фонари меняют весной всем районом." in message.text
    assert "Когда будет можно: 15.05.2027." in message.text
    # without a key, the same request is a new change: here not allowed from «refused»
    repeat = client.post(f"{BASE}/{number}/status", headers=bearer(token), json=body)
    assert repeat.status_code == 409 and repeat.json()["code"] == "conflict"


def test_a_token_works_only_in_the_header_and_stops_when_revoked(
    client: TestClient, runtime: Runtime
) -> None:
    token = make_token(runtime, "backoffice", "applications:read")
    assert client.get(BASE, headers=bearer(token)).status_code == 200
    assert client.get(f"{BASE}?access_token={token}").status_code == 401
    client.cookies.set("access_token", token)
    assert client.get(BASE).status_code == 401
    client.cookies.clear()
    with runtime.factory() as session:
        row = session.exec(select(ApiToken)).one()
        row.revoked_at = runtime.clock.now()
        session.commit()
    assert_unauthorised(client.get(BASE, headers=bearer(token)))


def test_an_operators_session_does_not_open_the_api(client: TestClient, runtime: Runtime) -> None:
    load_demo(runtime)
    login_page = CSRF.search(client.get("/ui/login").text)
    assert login_page
    logged_in = client.post(
        "/ui/login",
        data={"login": "admin", "password": "admin-demo", "csrf_token": login_page.group(1)},
    )
    assert logged_in.status_code == 200 and client.get("/ui/applications").status_code == 200
    assert client.get(BASE).status_code == 401  # no CSRF through a browser's cookie


def test_scopes_read_cannot_write_and_write_includes_read(
    client: TestClient, runtime: Runtime
) -> None:
    _, number, _ = make_application(runtime)
    reader = make_token(runtime, "reports", "applications:read")
    writer = make_token(runtime, "backoffice", "applications:write")
    refused = client.post(
        f"{BASE}/{number}/status", headers=bearer(reader), json={"status": "done"}
    )
    assert refused.status_code == 403
    assert refused.json() == {"detail": "this token lacks the scope applications:write"}
    assert count(runtime, ApplicationStatusChange) == 0
    assert client.get(f"{BASE}/{number}", headers=bearer(writer)).status_code == 200


def test_the_last_use_of_a_token_is_recorded_at_most_once_a_minute(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    token = make_token(runtime, "backoffice", "applications:read")

    def last_used():  # type: ignore[no-untyped-def]
        with runtime.factory() as session:
            return session.exec(select(ApiToken)).one().last_used_at

    assert last_used() is None
    client.get(BASE, headers=bearer(token))
    first = last_used()
    assert first is not None
    clock.advance(timedelta(seconds=30))
    client.get(BASE, headers=bearer(token))
    assert last_used() == first
    clock.advance(timedelta(seconds=31))
    client.get(BASE, headers=bearer(token))
    assert last_used() != first


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("З-2026-999999", 404),
        ("Z-2027-000001", 404),
        ("З-2026-99999999999999999999", 422),
        ("1", 422),
        ("-1", 422),
        ("%ED%A0%80", 422),
        ("%E2%80%AEЗ-2026-000001", 422),
        ("x" * 41, 422),
    ],
)
def test_unknown_numbers_are_404_and_malformed_or_huge_ones_422(
    client: TestClient, runtime: Runtime, path: str, status: int
) -> None:
    make_application(runtime)
    token = make_token(runtime, "backoffice", "applications:write")
    assert client.get(f"{BASE}/{path}", headers=bearer(token)).status_code == status
    changed = client.post(f"{BASE}/{path}/status", headers=bearer(token), json={"status": "done"})
    assert changed.status_code == status
    assert count(runtime, ApplicationStatusChange) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"status": "in_progress", "comment": "a\\ud800b"}', "comment"),
        (b'{"status": "\\ud800"}', "status"),
        (b'{"status": "in_progress", "\\udfff": 1}', None),
        ('{"status": "in_progress", "comment": "оплата \u202eвозврат"}'.encode(), "comment"),
        ('{"status": "in_progress", "comment": "звонок\\u0007"}'.encode(), "comment"),
        (b'{"status": "in_progress", "comment": "' + "я".encode() * 1001 + b'"}', "comment"),
        (b'{"status": "refused", "reason": "' + b"a" * 1001 + b'"}', "reason"),
        (b'{"status": "in_progress", "internal_note": "' + b"a" * 2001 + b'"}', "internal_note"),
        (b'{"status": "refused"}', "reason"),
        (b'{"status": "info_needed"}', "comment"),
        (b'{"status": "in_progress", "expected_date": "2026-01-01"}', "expected_date"),
        (b'{"status": "in_progress", "expected_date": "9999-12-31"}', "expected_date"),
        (b'{"status": "in_progress", "expected_date": "99999-01-01"}', "expected_date"),
        (b'{"status": "in_progress", "version": 1' + b"0" * 40 + b"}", "version"),
        (b'{"status": "in_progress", "version": -1}', "version"),
        (b'{"status": "in_progress", "admin": true}', "admin"),
        (b'{"status": 5}', "status"),
        (b"[" * 200 + b"]" * 200, None),
        (DEEP, None),
        (b"not json", None),
        (b"", None),
    ],
)
def test_bad_input_is_422_and_never_a_500(
    client: TestClient, runtime: Runtime, body: bytes, field: str | None
) -> None:
    _, number, _ = make_application(runtime)
    token = make_token(runtime, "backoffice", "applications:write")
    answer = client.post(
        f"{BASE}/{number}/status",
        headers={**bearer(token), **JSON},
        content=body,
    )
    assert answer.status_code in (400, 422), answer.text
    if answer.status_code == 422:
        assert answer.json()["code"] == "invalid"
        if field:
            assert answer.json()["field"] == field
    assert count(runtime, ApplicationStatusChange) == 0


@pytest.mark.parametrize("key", ["ключ", "a" * 101, "with space", ""])
def test_a_malformed_idempotency_key_is_422(client: TestClient, runtime: Runtime, key: str) -> None:
    _, number, _ = make_application(runtime)
    token = make_token(runtime, "backoffice", "applications:write")
    answer = client.post(
        f"{BASE}/{number}/status",
        headers=[*bearer(token).items(), ("Idempotency-Key", key.encode())],
        json={"status": "done"},
    )
    assert answer.status_code == 422 and answer.json()["field"] == "Idempotency-Key"


def test_a_move_that_is_not_allowed_and_a_stale_version_are_409(
    client: TestClient, runtime: Runtime
) -> None:
    _, number, _ = make_application(runtime, status="done")
    token = make_token(runtime, "backoffice", "applications:write")
    refused = client.post(
        f"{BASE}/{number}/status",
        headers=bearer(token),
        json={"status": "refused", "reason": "Нет."},
    )
    assert refused.status_code == 409 and refused.json()["field"] == "status"
    stale = client.post(
        f"{BASE}/{number}/status",
        headers=bearer(token),
        json={"status": "in_progress", "version": 7},
    )
    assert stale.status_code == 409 and stale.json()["field"] == "version"
    ok = client.post(
        f"{BASE}/{number}/status",
        headers=bearer(token),
        json={"status": "in_progress", "version": 1},
    )
    assert ok.status_code == 201 and ok.json()["application"]["version"] == 2


def test_each_token_has_its_own_rate(client: TestClient, runtime: Runtime) -> None:
    runtime.settings.api_rate_per_second = 0.01
    runtime.settings.api_rate_burst = 3
    busy = make_token(runtime, "busy", "applications:read")
    calm = make_token(runtime, "calm", "applications:read")
    answers = [client.get(BASE, headers=bearer(busy)).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = client.get(BASE, headers=bearer(busy))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert client.get(BASE, headers=bearer(calm)).status_code == 200


def test_list_filters_and_pages_over_http(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    token = make_token(runtime, "reports", "applications:read")
    old, _, _ = make_application(runtime, created_at=clock.now() - timedelta(days=40))
    vk, _, _ = make_application(runtime, channel="vk", thread_key="vk:1", service="garbage")
    done, _, _ = make_application(runtime, status="done", thread_key="tg:2")

    def numbers(query: str) -> list[str]:
        answer = client.get(f"{BASE}?{query}", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        return [i["number"] for i in answer.json()["items"]]

    def number(app_id: int) -> str:
        with runtime.factory() as session:
            found = session.get(Application, app_id)
            assert found is not None and found.number is not None
            return found.number

    assert numbers("") == [number(done), number(vk), number(old)]
    assert numbers("status=done&status=submitted") == [number(done), number(vk), number(old)]
    assert numbers("status=done") == [number(done)]
    assert numbers("overdue=true") == [number(old)]
    assert numbers("channel=vk") == [number(vk)]
    assert numbers("service=garbage") == [number(vk)]
    assert numbers("created_to=2026-11-01") == [number(old)]
    assert numbers("limit=1&offset=1") == [number(vk)]
    for bad in ("limit=0", "limit=201", "offset=-1", "offset=99999999999999999999",
                "status=nope", "channel=VK%00", "created_from=32.13.2026"):  # fmt: skip
        answer = client.get(f"{BASE}?{bad}", headers=bearer(token))
        assert answer.status_code in (400, 422), bad


def test_statuses_describe_the_lifecycle(client: TestClient, runtime: Runtime) -> None:
    token = make_token(runtime, "reports", "applications:read")
    lifecycle = {
        s["status"]: s for s in client.get(f"{BASE}/statuses", headers=bearer(token)).json()
    }
    assert lifecycle["refused"]["needs_reason"] and lifecycle["refused"]["takes_expected_date"]
    assert lifecycle["info_needed"]["needs_comment"]
    assert lifecycle["done"]["moves"] == ["in_progress"]


def test_openapi_documents_the_api_with_its_auth_and_errors(client: TestClient) -> None:
    # /openapi.json is served only with OTKLIK_API_DOCS=on; the schema is the app's all the same.
    spec = client.app.openapi()  # type: ignore[attr-defined]
    assert spec["components"]["securitySchemes"]["ApiToken"] == {
        "type": "http", "scheme": "bearer",
        "description": "A token from `otklik token create` or the admin page «Токены API»",
    }  # fmt: skip
    change = spec["paths"]["/api/v1/applications/{number}/status"]["post"]
    assert change["tags"] == ["applications"] and change["security"] == [{"ApiToken": []}]
    for status in ("200", "201", "401", "403", "404", "409", "422", "429"):
        assert status in change["responses"], status
    assert change["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
    headers = [p["name"] for p in change["parameters"] if p["in"] == "header"]
    assert headers == ["Idempotency-Key"]
    listing = spec["paths"]["/api/v1/applications"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "status", "service", "channel", "created_from", "created_to", "overdue", "limit", "offset",
    }  # fmt: skip
    assert "ApplicationDetail" in spec["components"]["schemas"]


def test_nothing_is_created_by_reads(client: TestClient, runtime: Runtime) -> None:
    _, number, _ = make_application(runtime)
    token = make_token(runtime, "reports", "applications:read")
    for _ in range(3):
        client.get(f"{BASE}/{number}", headers=bearer(token))
    with runtime.factory() as session:
        assert session.exec(select(col(Message.id))).all() == []


def test_fuzzed_requests_with_a_valid_token_never_get_a_5xx_and_match_the_schema(
    runtime: Runtime,
) -> None:
    """Schemathesis over ``/api/v1/applications`` with a live write token."""
    for i in range(3):
        make_application(runtime, thread_key=f"tg:{i}", status=["submitted", "done", "refused"][i])
    token = make_token(runtime, "fuzz", "applications:write")
    runtime.settings.api_rate_burst = 100_000
    app = create_app(runtime, start_scheduler=False)
    fuzz_with_token(app, token, (BASE,), operations=4, examples=40)


def test_dates_at_the_ends_of_the_calendar_filter_without_a_500(
    client: TestClient, runtime: Runtime
) -> None:
    """0001-01-01 in the agency's zone (east of UTC) is before year 1 in UTC: it was a 500,
    found by the fuzz test."""
    make_application(runtime)
    token = make_token(runtime, "reports", "applications:read")
    for params, total in (
        ({"created_from": "0001-01-01"}, 1),
        ({"created_to": "9999-12-31"}, 1),
        ({"created_from": "0001-01-01", "created_to": "0001-01-01"}, 0),
        ({"created_from": "9999-12-31"}, 0),
    ):
        listed = client.get(BASE, headers=bearer(token), params=params)
        assert listed.status_code == 200, (params, listed.text)
        assert listed.json()["total"] == total, params
