"""The back-office API ``/api/v1/mailings`` over HTTP on SQLite and PostgreSQL: subscribers per
topic, a draft checked for readability as the supervisors' page checks it, scheduling and
cancelling, delivery through the worker's round and the outbox to exactly the subscribers
whose consent is live, scopes, and what an attacker tries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlmodel import col, select

from core.clock import FrozenClock
from inbox import api_tokens, mailings
from inbox.models import ApiToken, Conversation, Mailing, Message
from inbox.runtime import Runtime
from knowledge_base.readability import check_text, load_bar
from otklik.web import create_app
from tests.helpers.api_abuse import (
    assert_ids_refused,
    assert_odd_bodies_refused,
    bearer,
    fuzz_with_token,
)
from tests.helpers.applications_harness import make_token
from tests.helpers.citizen_harness import citizen_bot
from tests.helpers.consent import webchat_subscribe

BASE = "/api/v1/mailings"
PLAIN = "Завтра с 9 до 17 часов не будет горячей воды."
OFFICIALESE = (
    "В целях обеспечения надлежащего функционирования систем водоснабжения в соответствии с "
    "графиком проведения работ по техническому обслуживанию оборудования осуществляется "
    "временное прекращение подачи воды потребителям."
)


@pytest.fixture
def app(runtime: Runtime, clock: FrozenClock):  # type: ignore[no-untyped-def]
    runtime.settings.api_rate_burst = 100_000
    application = create_app(runtime, start_scheduler=False)
    application.state.citizen_bot = citizen_bot(runtime, clock)
    return application


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        yield test_client


def draft(client: TestClient, token: str, **fields: object) -> dict:  # type: ignore[type-arg]
    body = {"topic": "heating_season", "text": PLAIN, **fields}
    answer = client.post(BASE, headers=bearer(token), json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def mailings_count(runtime: Runtime) -> int:
    with runtime.factory() as session:
        return len(session.exec(select(Mailing)).all())


def test_a_mailing_made_and_started_through_the_api_reaches_exactly_the_consenting_subscribers(
    app, client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:  # type: ignore[no-untyped-def]
    """Three citizens subscribe in the web chat; the back office withdraws one's consent on
    the citizen's request; the mailing reaches the other two, once."""
    visitors = [TestClient(app) for _ in range(3)]
    for visitor in visitors:
        webchat_subscribe(visitor)
    token = make_token(runtime, "backoffice", "mailings:write", "consents:write")
    topics = client.get(f"{BASE}/topics", headers=bearer(token)).json()
    heating = next(t for t in topics["topics"] if t["id"] == "heating_season")
    assert heating["subscribers"] == {"now": 3, "daily": 0, "weekly": 0, "total": 3}
    assert next(t for t in topics["topics"] if t["id"] == "outages")["subscribers"]["total"] == 0
    assert {a["id"] for a in topics["areas"]} == {"central", "north", "south"}
    with runtime.factory() as session:
        third = session.exec(select(Conversation).order_by(col(Conversation.id))).all()[2]
    registry = client.get(
        "/api/v1/consents", headers=bearer(token), params={"citizen_id": third.citizen_id}
    ).json()
    gone = client.post(
        f"/api/v1/consents/{registry['consents'][0]['id']}/withdraw", headers=bearer(token),
        json={"citizen_id": third.citizen_id},
    )  # fmt: skip
    assert gone.status_code == 200
    made = draft(client, token)
    assert (made["status"], made["scheduled_at"], made["audience_now"]) == ("draft", None, 2)
    assert made["created_by"] == "api:backoffice" and made["readability"]["ok"] is True
    # A draft is never sent, whatever the worker does.
    assert mailings.run_round(runtime) == 0
    started = client.post(f"{BASE}/{made['id']}/schedule", headers=bearer(token), json={})
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "scheduled"
    # A retry of the start changes nothing.
    again = client.post(f"{BASE}/{made['id']}/schedule", headers=bearer(token), json={})
    assert (
        again.status_code == 200 and again.json()["scheduled_at"] == started.json()["scheduled_at"]
    )
    assert mailings.run_round(runtime) == 2  # the worker's step
    assert mailings.run_round(runtime) == 0
    got = [
        [m["text"] for m in visitor.get("/api/chat/messages").json() if PLAIN in m["text"]]
        for visitor in visitors
    ]
    assert [len(g) for g in got] == [1, 1, 0]
    one = client.get(f"{BASE}/{made['id']}", headers=bearer(token)).json()
    assert one["status"] == "sent"
    progress = one["progress"]
    assert progress["recipients"] == 2 and progress["skipped_without_consent"] == 0
    assert progress["sent"] + progress["queued"] == 2 and progress["withheld"] == 0
    with runtime.factory() as session:
        messages = session.exec(select(Message).where(col(Message.text).contains(PLAIN))).all()
        assert len(messages) == 2
        assert third.id not in {m.conversation_id for m in messages}
    listed = client.get(BASE, headers=bearer(token), params={"status": "sent"}).json()
    assert listed["total"] == 1 and listed["items"][0]["progress"]["recipients"] == 2
    late = client.post(f"{BASE}/{made['id']}/cancel", headers=bearer(token))
    assert late.status_code == 409 and late.json()["code"] == "conflict"
    restart = client.post(f"{BASE}/{made['id']}/schedule", headers=bearer(token), json={})
    assert restart.status_code == 409


def test_a_hard_text_is_refused_with_the_checks_findings_and_the_supervisors_bar_applies(
    client: TestClient, runtime: Runtime
) -> None:
    token = make_token(runtime, "backoffice", "mailings:write")
    refused = client.post(
        BASE, headers=bearer(token), json={"topic": "heating_season", "text": OFFICIALESE}
    )
    assert refused.status_code == 422
    body = refused.json()
    assert body["code"] == "readability" and body["field"] == "text"
    assert body["detail"].startswith("Текст рассылки трудно читать")
    expected = check_text(OFFICIALESE, load_bar())
    assert body["readability"]["ok"] is False
    assert body["readability"]["failures"] == expected.failures
    kinds = {f["kind"] for f in body["readability"]["findings"]}
    assert {"stock_phrase", "verbal_noun"} <= kinds
    assert mailings_count(runtime) == 0
    # The bar supervisors set (data_dir/readability.yaml, as on /ui/settings/readability)
    # is the one the API checks against: a lax bar lets the same text through.
    lax = load_bar().model_copy(
        update={"max_grade": 100.0, "max_kantselyarit_per_100_words": 100.0,
                "max_sentence_words": 100, "max_long_sentences": 10}
    )  # fmt: skip
    (runtime.settings.data_dir / "readability.yaml").write_text(
        yaml.safe_dump(lax.model_dump(), allow_unicode=True), encoding="utf-8"
    )
    made = draft(client, token, text=OFFICIALESE)
    assert made["readability"]["ok"] is True and made["readability"]["findings"]


def test_a_scheduled_mailing_waits_for_its_time_and_a_cancelled_one_is_never_sent(
    app, client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:  # type: ignore[no-untyped-def]
    visitor = TestClient(app)
    webchat_subscribe(visitor)
    token = make_token(runtime, "backoffice", "mailings:write")
    later = draft(client, token)
    at = (clock.now() + timedelta(hours=2)).isoformat()
    scheduled = client.post(
        f"{BASE}/{later['id']}/schedule", headers=bearer(token), json={"scheduled_at": at}
    )
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"
    dropped = draft(client, token, text="Послезавтра воду дадут после 18 часов.")
    cancelled = client.post(f"{BASE}/{dropped['id']}/cancel", headers=bearer(token))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.post(f"{BASE}/{dropped['id']}/cancel", headers=bearer(token)).status_code == 409
    assert mailings.run_round(runtime) == 0  # not yet
    clock.advance(timedelta(hours=2, minutes=1))
    assert mailings.run_round(runtime) == 1
    texts = [m["text"] for m in visitor.get("/api/chat/messages").json()]
    assert sum(PLAIN in x for x in texts) == 1
    assert not any("Послезавтра" in x for x in texts)
    listed = client.get(BASE, headers=bearer(token), params={"status": ["sent", "cancelled"]})
    assert [m["status"] for m in listed.json()["items"]] == ["cancelled", "sent"]


def test_scopes_are_checked_and_a_revoked_token_is_refused(
    client: TestClient, runtime: Runtime
) -> None:
    consents_only = make_token(runtime, "desk", "consents:write")
    reader = make_token(runtime, "reports", "mailings:read")
    writer = make_token(runtime, "boss", "mailings:write")
    assert client.get(BASE).status_code == 401
    assert client.get(f"{BASE}/topics", headers=bearer("otk_" + "x" * 43)).status_code == 401
    assert client.get(BASE, headers=bearer(consents_only)).status_code == 403
    assert client.get(f"{BASE}/topics", headers=bearer(reader)).status_code == 200
    assert client.get(BASE, headers=bearer(writer)).status_code == 200  # implied
    body = {"topic": "heating_season", "text": PLAIN}
    refused = client.post(BASE, headers=bearer(reader), json=body)
    assert refused.status_code == 403 and "mailings:write" in refused.json()["detail"]
    made = draft(client, writer)
    forbidden = client.post(f"{BASE}/{made['id']}/schedule", headers=bearer(reader), json={})
    assert forbidden.status_code == 403
    with runtime.factory() as session:
        token = session.exec(select(ApiToken).where(ApiToken.name == "boss")).one()
        api_tokens.revoke(session, token, runtime.clock.now())
        session.commit()
    assert client.post(BASE, headers=bearer(writer), json=body).status_code == 401
    revoked = client.post(f"{BASE}/{made['id']}/schedule", headers=bearer(writer), json={})
    assert revoked.status_code == 401
    with runtime.factory() as session:
        assert [m.status for m in session.exec(select(Mailing)).all()] == ["draft"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topic": "nothing"}, "topic"),
        ({"topic": "ЖКХ"}, "topic"),
        ({"topic": "x" * 5000}, "topic"),
        ({"area": "central"}, "area"),  # heating_season has no districts
        ({"topic": "outages", "area": "mars"}, "area"),
        ({"text": ""}, "text"),
        ({"text": "   \n\t  "}, "text"),
        ({"text": "Воды не будет.\u202e"}, "text"),
        ({"text": "Воды не будет. " * 250}, "text"),  # 3750 characters: over the limit
        ({"text": "я" * 1_000_000}, None),
        ({"text": ["Воды не будет."]}, "text"),
        ({"scheduled_at": "2026-12-01T09:00:00+03:00"}, "scheduled_at"),  # not on creation
        ({"extra": {"a": [[[[[[[[1]]]]]]]]}}, "extra"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_creates_nothing(
    client: TestClient, runtime: Runtime, body: dict[str, object], field: str | None
) -> None:
    token = make_token(runtime, "backoffice", "mailings:write")
    answer = client.post(
        BASE, headers=bearer(token), json={"topic": "heating_season", "text": PLAIN, **body}
    )
    assert answer.status_code in (413, 422), answer.text
    assert answer.json()["detail"]
    if field:
        assert answer.json()["field"] == field, answer.text
    assert mailings_count(runtime) == 0


def test_others_ids_huge_numbers_bad_times_and_lone_surrogates_get_4xx_not_500(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    token = make_token(runtime, "backoffice", "mailings:write")
    made = draft(client, token)
    auth = bearer(token)
    assert_ids_refused(lambda i: client.get(f"{BASE}/{i}", headers=auth), made["id"])
    for action in ("schedule", "cancel"):
        assert_ids_refused(
            lambda i, action=action: client.post(f"{BASE}/{i}/{action}", headers=auth, json={}),
            made["id"],
        )
    for at, why in (
        ("2026-12-01T09:00:00", "no time zone"),
        ((clock.now() - timedelta(days=1)).isoformat(), "the past"),
        ((clock.now() + timedelta(days=400)).isoformat(), "over a year"),
        ("9999-12-31T23:59:59+14:00", "far future"),
        ("+275760-09-13T00:00:00Z", "out of range"),
        ("2026-13-45T99:00:00+03:00", "no such date"),
        ("1" * 5000, "garbage"),
    ):
        answer = client.post(
            f"{BASE}/{made['id']}/schedule", headers=bearer(token), json={"scheduled_at": at}
        )
        assert answer.status_code == 422, why
        assert answer.json()["field"] == "scheduled_at", why
    raw = '{"topic": "heating_season", "text": "\\ud800 Воды не будет."}'
    assert_odd_bodies_refused(client, BASE, token, raw)
    for params in ({"limit": 0}, {"limit": 10**9}, {"offset": -1}, {"status": "gone"},
                   {"topic": "x" * 100}):  # fmt: skip
        assert client.get(BASE, headers=bearer(token), params=params).status_code == 422, params
    with runtime.factory() as session:
        assert [m.status for m in session.exec(select(Mailing)).all()] == ["draft"]


def test_the_openapi_schema_documents_the_mailings_api(runtime: Runtime) -> None:
    schema = create_app(runtime, start_scheduler=False).openapi()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths[BASE])
    for path in (f"{BASE}/topics", f"{BASE}/{{mailing_id}}"):
        assert paths[path]["get"]["tags"] == ["mailings"]
    create = paths[BASE]["post"]
    assert "ReadabilityErrorOut" in str(create["responses"]["422"])
    assert "MailingCreated" in str(create["responses"]["201"])
    for action in ("schedule", "cancel"):
        answers = paths[f"{BASE}/{{mailing_id}}/{action}"]["post"]["responses"]
        assert {"200", "401", "403", "404", "409", "429"} <= set(answers), action


def test_fuzzed_requests_with_a_valid_token_never_get_a_5xx_and_match_the_schema(
    app, runtime: Runtime
) -> None:  # type: ignore[no-untyped-def]
    """Schemathesis over ``/api/v1/mailings`` and ``/api/v1/consents`` with a live token of
    every scope, real subscribers, consents and mailings (a draft and a sent one)."""
    token = make_token(runtime, "fuzz", "mailings:write", "consents:write")
    visitor = TestClient(app)
    webchat_subscribe(visitor)
    with TestClient(app) as client:
        sent = draft(client, token)
        client.post(f"{BASE}/{sent['id']}/schedule", headers=bearer(token), json={})
        mailings.run_round(runtime)
        draft(client, token)
    fuzz_with_token(app, token, (BASE, "/api/v1/consents"), operations=10, examples=30)
