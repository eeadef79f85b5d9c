"""The back-office API ``/api/v1/complaints`` over HTTP on SQLite and PostgreSQL: scopes,
creating a complaint from appeals, adding supporters, one status change told to everyone
once, and what an attacker tries (others' ids, huge numbers, odd Unicode)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from inbox.models import ComplaintStatusChange, Message, SharedComplaint
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.api_abuse import (  # noqa: F401
    assert_ids_refused,
    assert_odd_bodies_refused,
    bearer,
    client,
    fuzz_with_token,
)
from tests.helpers.applications_harness import make_token
from tests.helpers.complaints import numbers
from tests.helpers.complaints_harness import make_appeal

BASE = "/api/v1/complaints"


def create(client: TestClient, token: str, appeals: list[str], **fields: object) -> dict:  # type: ignore[type-arg]
    body = {"title": "Не горят фонари во дворе", "place": "ул. Ленина, д. 5",
            "topic": "lighting", "appeals": appeals, **fields}  # fmt: skip
    answer = client.post(BASE, headers=bearer(token), json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_the_back_office_creates_a_complaint_adds_supporters_and_answers_everyone_once(
    client: TestClient, runtime: Runtime
) -> None:
    appeals = numbers(runtime, [make_appeal(runtime, n) for n in (1, 2, 3)])
    writer = make_token(runtime, "backoffice", "complaints:write")
    made = create(client, writer, appeals[:2])
    assert made["supporters"] == 2 and made["status"] == "submitted" and made["version"] == 1
    assert made["tracker_url"].startswith("/public/complaints/")
    assert [s["appeal"] for s in made["supporters_list"]] == appeals[:2]
    added = client.post(
        f"{BASE}/{made['id']}/supporters", headers=bearer(writer),
        json={"appeals": appeals[1:]},
    )  # fmt: skip
    assert added.status_code == 200 and added.json()["added"] == 1
    assert added.json()["complaint"]["supporters"] == 3
    changed = client.post(
        f"{BASE}/{made['id']}/status", headers=bearer(writer),
        json={"status": "in_progress", "answer": "Бригада заменит лампы.",
              "expected_date": "2026-12-01", "internal_note": "наряд 17", "version": 1},
    )  # fmt: skip
    assert changed.status_code == 201, changed.text
    body = changed.json()
    assert body["change"]["notified"] == 3 and body["complaint"]["version"] == 2
    assert body["complaint"]["answer"] == "Бригада заменит лампы."
    # A retry of the same request (the version it read is stale now) tells nobody again.
    retry = client.post(
        f"{BASE}/{made['id']}/status", headers=bearer(writer),
        json={"status": "in_progress", "answer": "Бригада заменит лампы.", "version": 1},
    )  # fmt: skip
    assert retry.status_code == 409 and retry.json()["code"] == "conflict"
    with runtime.factory() as session:
        news = session.exec(
            select(Message).where(col(Message.idempotency_key).like("complaint-1-%"))
        ).all()
        assert len(news) == 3
        assert len(session.exec(select(ComplaintStatusChange)).all()) == 1
    listed = client.get(BASE, headers=bearer(writer), params={"status": "in_progress"})
    assert listed.json()["total"] == 1 and listed.json()["items"][0]["supporters"] == 3
    one = client.get(f"{BASE}/{made['id']}", headers=bearer(writer)).json()
    assert one["history"][0]["internal_note"] == "наряд 17"
    assert one["allowed_moves"] == ["info_needed", "done", "refused"]


def test_scopes_are_checked(client: TestClient, runtime: Runtime) -> None:
    appeals = numbers(runtime, [make_appeal(runtime, 1)])
    applications_only = make_token(runtime, "apps", "applications:write")
    reader = make_token(runtime, "reports", "complaints:read")
    assert client.get(BASE).status_code == 401
    assert client.get(BASE, headers=bearer("otk_" + "x" * 43)).status_code == 401
    assert client.get(BASE, headers=bearer(applications_only)).status_code == 403
    assert client.get(BASE, headers=bearer(reader)).status_code == 200
    refused = client.post(
        BASE, headers=bearer(reader),
        json={"title": "Фонари", "place": "Ленина 5", "topic": "lighting", "appeals": appeals},
    )  # fmt: skip
    assert refused.status_code == 403 and "complaints:write" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"topic": "nope"}, 422, "topic"),
        ({"appeals": ["2026-999999"]}, 404, "appeals"),
        ({"appeals": ["1; DROP TABLE"]}, 422, None),
        ({"appeals": []}, 422, None),
        ({"appeals": ["2026-1"] * 201}, 422, None),
        ({"title": "Фонари\u202e"}, 422, "title"),
        ({"title": "x" * 301}, 422, None),
        ({"place": "!!!"}, 422, "place"),
        ({"extra": {"a": [[[[1]]]]}}, 422, None),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_creates_nothing(
    client: TestClient, runtime: Runtime, body: dict[str, object], status: int, field: str | None
) -> None:
    appeals = numbers(runtime, [make_appeal(runtime, 1)])
    writer = make_token(runtime, "backoffice", "complaints:write")
    sent = {"title": "Фонари", "place": "Ленина 5", "topic": "lighting", "appeals": appeals,
            **body}  # fmt: skip
    answer = client.post(BASE, headers=bearer(writer), json=sent)
    assert answer.status_code == status, answer.text
    if field:
        assert answer.json()["field"] == field
    with runtime.factory() as session:
        assert session.exec(select(SharedComplaint)).all() == []


def test_others_ids_huge_numbers_deep_nesting_and_lone_surrogates_are_refused_without_a_500(
    client: TestClient, runtime: Runtime
) -> None:
    writer = make_token(runtime, "backoffice", "complaints:write")
    made = create(client, writer, numbers(runtime, [make_appeal(runtime, 1)]))
    other = numbers(runtime, [make_appeal(runtime, 3)])
    auth = bearer(writer)
    assert_ids_refused(lambda i: client.get(f"{BASE}/{i}", headers=auth), made["id"])
    assert_ids_refused(
        lambda i: client.post(f"{BASE}/{i}/status", headers=auth, json={"status": "done"}),
        made["id"],
    )
    assert_ids_refused(
        lambda i: client.post(f"{BASE}/{i}/supporters", headers=auth, json={"appeals": other}),
        made["id"],
    )
    raw = '{"status": "refused", "answer": "\\ud800"}'
    assert_odd_bodies_refused(client, f"{BASE}/{made['id']}/status", writer, raw)
    missing = client.post(
        f"{BASE}/{made['id'] + 7}/status", headers=bearer(writer), json={"status": "done"}
    )
    assert missing.status_code == 404
    done = client.post(f"{BASE}/{made['id']}/status", headers=bearer(writer),
                       json={"status": "done"})  # fmt: skip
    assert done.status_code == 201
    late = numbers(runtime, [make_appeal(runtime, 2)])
    closed = client.post(f"{BASE}/{made['id']}/supporters", headers=bearer(writer),
                         json={"appeals": late})  # fmt: skip
    assert closed.status_code == 409 and "закрыта" in closed.json()["detail"]


def test_the_openapi_schema_documents_the_complaints_api(runtime: Runtime) -> None:
    schema = create_app(runtime, start_scheduler=False).openapi()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths[BASE])
    assert "post" in paths[BASE + "/{complaint_id}/status"]
    assert "post" in paths[BASE + "/{complaint_id}/supporters"]


def test_fuzzed_requests_with_a_valid_token_never_get_a_5xx_and_match_the_schema(
    runtime: Runtime,
) -> None:
    """Schemathesis over ``/api/v1/complaints`` with a live write token and real complaints
    (open and closed), as for the applications API."""
    token = make_token(runtime, "fuzz", "complaints:write")
    runtime.settings.api_rate_burst = 100_000
    app = create_app(runtime, start_scheduler=False)
    with TestClient(app) as client:
        for n in (1, 2):
            create(client, token, numbers(runtime, [make_appeal(runtime, n)]))
        client.post(f"{BASE}/2/status", headers=bearer(token), json={"status": "done"})
    fuzz_with_token(app, token, (BASE,), operations=5, examples=40)
