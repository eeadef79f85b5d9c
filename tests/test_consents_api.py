"""The back-office API ``/api/v1/consents`` over HTTP on SQLite and PostgreSQL: recording a
consent on the citizen's request with the catalogue's wording, the registry and its audit
history, withdrawal (which stops a message already in the outbox), scopes, and what an
attacker tries (others' ids, huge numbers, odd Unicode, deep nesting)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from bot.citizen import mailing_texts as t
from core.clock import FrozenClock
from inbox import api_tokens, mailings
from inbox.models import ApiToken, Citizen, Consent, Conversation, Message, Subscription
from inbox.runtime import Runtime
from otklik.web import create_app
from rules.proactive import SHIPPED, load_proactive_rules
from tests.helpers.api_abuse import (
    assert_ids_refused,
    assert_odd_bodies_refused,
    bearer,
)
from tests.helpers.applications_harness import make_token
from tests.helpers.citizen_harness import TelegramChat
from tests.helpers.complaints_harness import make_appeal
from tests.helpers.consent import mail, subscribe

BASE = "/api/v1/consents"
RULES = load_proactive_rules(SHIPPED)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.settings.api_rate_burst = 100_000
    with TestClient(create_app(runtime, start_scheduler=False)) as test_client:
        yield test_client


def citizen_of(runtime: Runtime, n: int) -> int:
    """Citizen ``n`` with an appeal; the citizen's id."""
    conversation_id = make_appeal(runtime, n)
    with runtime.factory() as session:
        found = session.get(Conversation, conversation_id)
        assert found is not None
        return found.citizen_id


def record(client: TestClient, token: str, citizen_id: int, kind: str, scope_id: str) -> dict:  # type: ignore[type-arg]
    answer = client.post(
        BASE, headers=bearer(token),
        json={"citizen_id": citizen_id, "scope_kind": kind, "scope_id": scope_id},
    )  # fmt: skip
    assert answer.status_code in (200, 201), answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_the_back_office_records_lists_and_withdraws_a_consent_with_its_wording_and_history(
    client: TestClient, runtime: Runtime
) -> None:
    citizen = citizen_of(runtime, 1)
    writer = make_token(runtime, "backoffice-1c", "consents:write")
    made = client.post(
        BASE, headers=bearer(writer),
        json={"citizen_id": citizen, "scope_kind": "situation", "scope_id": "housing"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["created"] is True
    given = body["consent"]
    assert given["wording"] == RULES.consent_text("situation", "housing")
    assert "«Проблемы в доме и квартире»" in given["wording"]
    assert (given["given_via"], given["given_by"], given["live"]) == ("api", "backoffice-1c", True)
    # A retry of the same request records nothing new (200, the same consent).
    again = client.post(
        BASE, headers=bearer(writer),
        json={"citizen_id": citizen, "scope_kind": "situation", "scope_id": "housing"},
    )  # fmt: skip
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["consent"]["id"] == given["id"]
    service = record(client, writer, citizen, "service", "child_benefits")["consent"]
    listed = client.get(BASE, headers=bearer(writer), params={"citizen_id": citizen}).json()
    assert [c["id"] for c in listed["consents"]] == [service["id"], given["id"]]
    assert [(e["kind"], e["actor"]) for e in listed["history"]] == [
        ("consent_given", "api:backoffice-1c"), ("consent_given", "api:backoffice-1c"),
    ]  # fmt: skip
    assert listed["history"][1]["wording"] == given["wording"]
    gone = client.post(
        f"{BASE}/{given['id']}/withdraw", headers=bearer(writer), json={"citizen_id": citizen}
    )
    assert gone.status_code == 200, gone.text
    out = gone.json()["consent"]
    assert (out["live"], out["withdrawn_via"], out["withdrawn_by"]) == (
        False, "api", "backoffice-1c",
    )  # fmt: skip
    twice = client.post(
        f"{BASE}/{given['id']}/withdraw", headers=bearer(writer), json={"citizen_id": citizen}
    )
    assert twice.status_code == 409 and twice.json()["code"] == "conflict"
    assert "уже отозвано" in twice.json()["detail"]
    after = client.get(BASE, headers=bearer(writer), params={"citizen_id": citizen}).json()
    assert after["history"][0]["kind"] == "consent_withdrawn"
    assert [c["live"] for c in after["consents"]] == [True, False]
    with runtime.factory() as session:
        rows = session.exec(select(Consent)).all()
        assert len(rows) == 2 and {r.given_via for r in rows} == {"api"}
    # A new consent to the withdrawn scope is a new record; the old one stays in the history.
    renewed = record(client, writer, citizen, "situation", "housing")
    assert renewed["created"] is True and renewed["consent"]["id"] != given["id"]
    scopes = client.get(f"{BASE}/scopes", headers=bearer(writer)).json()
    housing = next(s for s in scopes if s["id"] == "housing")
    assert [s["id"] for s in housing["services"]] == ["outages", "heating_season"]
    assert housing["wording"] == given["wording"]


async def test_a_consent_withdrawn_through_the_api_stops_the_next_proactive_message(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """The citizen subscribed in Telegram; a mailing is in the outbox; the back office
    withdraws the consent on the citizen's request: the outbox withholds the message."""
    chat = TelegramChat(runtime, clock)
    await subscribe(chat)
    citizen = chat.conversation().citizen_id
    first = mail(runtime, clock, "Завтра с 9 до 17 часов на улице Ленина не будет воды.")
    await chat.deliver()
    assert chat.sent_texts()[-1].startswith("Завтра с 9 до 17 часов")
    second = mail(runtime, clock, "В пятницу с 10 до 12 часов не будет света.")
    writer = make_token(runtime, "backoffice", "consents:write")
    runtime.settings.api_rate_burst = 100_000
    api = TestClient(chat.app)
    listed = api.get(BASE, headers=bearer(writer), params={"citizen_id": citizen}).json()
    [live] = [c for c in listed["consents"] if c["live"]]
    assert live["given_via"] == "bot" and listed["subscriptions"][0]["topic"] == "outages"
    gone = api.post(
        f"{BASE}/{live['id']}/withdraw", headers=bearer(writer), json={"citizen_id": citizen}
    )
    assert gone.status_code == 200, gone.text
    assert [s["topic"] for s in gone.json()["cancelled_subscriptions"]] == ["outages"]
    before = len(chat.sent_texts())
    report = await chat.deliver()
    assert report.sent == [] and chat.sent_texts()[before:] == []
    with runtime.factory() as session:
        assert mailings.figures(session, first).sent == 1
        figures = mailings.figures(session, second)
        assert (figures.withheld, figures.sent) == (1, 0)
        withheld = session.exec(select(Message).where(Message.delivery_status == "withheld")).one()
        assert withheld.meta["mailing_id"] == second
        assert session.exec(select(Subscription)).one().cancelled_at is not None
    assert t.STOPPED not in chat.sent_texts()  # the citizen did not write «стоп»


def test_scopes_are_checked_and_a_revoked_token_is_refused(
    client: TestClient, runtime: Runtime
) -> None:
    citizen = citizen_of(runtime, 1)
    mailer = make_token(runtime, "mailer", "mailings:write")
    reader = make_token(runtime, "reports", "consents:read")
    writer = make_token(runtime, "desk", "consents:write")
    params = {"citizen_id": citizen}
    assert client.get(BASE, params=params).status_code == 401
    assert client.get(BASE, params=params, headers=bearer("otk_" + "x" * 43)).status_code == 401
    assert client.get(BASE, params=params, headers=bearer(mailer)).status_code == 403
    assert client.get(BASE, params=params, headers=bearer(reader)).status_code == 200
    assert client.get(BASE, params=params, headers=bearer(writer)).status_code == 200  # implied
    body = {"citizen_id": citizen, "scope_kind": "service", "scope_id": "outages"}
    refused = client.post(BASE, headers=bearer(reader), json=body)
    assert refused.status_code == 403 and "consents:write" in refused.json()["detail"]
    assert client.post(BASE, headers=bearer(writer), json=body).status_code == 201
    with runtime.factory() as session:
        token = session.exec(select(ApiToken).where(ApiToken.name == "desk")).one()
        api_tokens.revoke(session, token, runtime.clock.now())
        session.commit()
    assert client.get(BASE, params=params, headers=bearer(writer)).status_code == 401
    [consent_id] = [c.id for c in _consents(runtime)]
    revoked = client.post(
        f"{BASE}/{consent_id}/withdraw", headers=bearer(writer), json={"citizen_id": citizen}
    )
    assert revoked.status_code == 401
    assert all(c.withdrawn_at is None for c in _consents(runtime))


def _consents(runtime: Runtime) -> list[Consent]:
    with runtime.factory() as session:
        return list(session.exec(select(Consent)).all())


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"citizen_id": 999_999}, 404, "citizen_id"),
        ({"citizen_id": 0}, 422, "citizen_id"),
        ({"citizen_id": -1}, 422, "citizen_id"),
        ({"citizen_id": 2**31}, 422, "citizen_id"),
        ({"citizen_id": 2**63 + 7}, 422, "citizen_id"),
        ({"citizen_id": 1.5}, 422, "citizen_id"),
        ({"citizen_id": True}, 422, None),
        ({"citizen_id": "1"}, 422, "citizen_id"),
        ({"scope_id": "nothing_here"}, 422, "scope_id"),
        ({"scope_kind": "situation", "scope_id": "outages"}, 422, "scope_id"),
        ({"scope_kind": "everything"}, 422, "scope_kind"),
        ({"scope_id": "ЖКХ"}, 422, "scope_id"),
        ({"scope_id": "outages\u202e"}, 422, "scope_id"),
        ({"scope_id": "x" * 10_000}, 422, "scope_id"),
        ({"scope_id": ["outages"]}, 422, "scope_id"),
        ({"wording": "Я согласен на всё"}, 422, "wording"),
        ({"extra": {"a": [[[[[[[[1]]]]]]]]}}, 422, "extra"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_records_nothing(
    client: TestClient, runtime: Runtime, body: dict[str, object], status: int, field: str | None
) -> None:
    citizen = citizen_of(runtime, 1)
    writer = make_token(runtime, "desk", "consents:write")
    sent = {"citizen_id": citizen, "scope_kind": "service", "scope_id": "outages", **body}
    answer = client.post(BASE, headers=bearer(writer), json=sent)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]
    if field:
        assert answer.json()["field"] == field
    assert _consents(runtime) == []


def test_others_ids_huge_numbers_deep_nesting_and_lone_surrogates_get_4xx_not_500(
    client: TestClient, runtime: Runtime
) -> None:
    anna, boris = citizen_of(runtime, 1), citizen_of(runtime, 2)
    writer = make_token(runtime, "desk", "consents:write")
    annas = record(client, writer, anna, "service", "outages")["consent"]["id"]
    # Boris's id with Anna's consent: not found, and Anna's consent stays.
    other = client.post(
        f"{BASE}/{annas}/withdraw", headers=bearer(writer), json={"citizen_id": boris}
    )
    assert other.status_code == 404 and other.json()["field"] == "consent_id"
    assert all(c.withdrawn_at is None for c in _consents(runtime))
    assert_ids_refused(
        lambda i: client.post(
            f"{BASE}/{i}/withdraw", headers=bearer(writer), json={"citizen_id": anna}
        ),
        annas,
    )
    for value in ("0", "-5", str(2**63), "abc", "١", ""):
        answer = client.get(BASE, headers=bearer(writer), params={"citizen_id": value})
        assert answer.status_code == 422, value
    assert client.get(BASE, headers=bearer(writer)).status_code == 422  # no citizen named
    missing = client.get(BASE, headers=bearer(writer), params={"citizen_id": 2**31 - 1})
    assert missing.status_code == 404
    raw = '{"citizen_id": ANNA, "scope_kind": "service", "scope_id": "\\ud800"}'
    assert_odd_bodies_refused(client, BASE, writer, raw.replace("ANNA", str(anna)))
    assert len(_consents(runtime)) == 1


def test_a_merged_citizen_record_is_refused_with_the_id_to_use(
    client: TestClient, runtime: Runtime
) -> None:
    old, new = citizen_of(runtime, 1), citizen_of(runtime, 2)
    with runtime.factory() as session:
        citizen = session.get(Citizen, old)
        assert citizen is not None
        citizen.merged_into_id = new
        session.commit()
    writer = make_token(runtime, "desk", "consents:write")
    answer = client.post(
        BASE, headers=bearer(writer),
        json={"citizen_id": old, "scope_kind": "service", "scope_id": "outages"},
    )  # fmt: skip
    assert answer.status_code == 409 and str(new) in answer.json()["detail"]


def test_the_scopes_are_described_in_russian_and_the_schema_documents_the_api(
    runtime: Runtime,
) -> None:
    for scope in ("consents:read", "consents:write", "mailings:read", "mailings:write"):
        assert any("а" <= ch <= "я" for ch in api_tokens.SCOPES[scope]), scope
    assert api_tokens.IMPLIES["consents:write"] == {"consents:read"}
    assert api_tokens.IMPLIES["mailings:write"] == {"mailings:read"}
    schema = create_app(runtime, start_scheduler=False).openapi()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths[BASE])
    withdraw = paths[BASE + "/{consent_id}/withdraw"]["post"]
    assert withdraw["tags"] == ["consents"]
    assert {"200", "401", "403", "404", "409", "422", "429"} <= set(withdraw["responses"])
    assert "WithdrawOut" in str(withdraw["responses"]["200"])
    assert paths[BASE + "/scopes"]["get"]["tags"] == ["consents"]


def test_the_admin_page_offers_the_new_scopes_and_its_token_opens_the_api(
    runtime: Runtime,
) -> None:
    from inbox import operators
    from tests.helpers.applications_ui import login

    runtime.settings.secret_key = "test-secret"
    with runtime.factory() as session:
        operators.create(session, "admin", "Админ", "admin", "admin-demo-password-1")
        session.commit()
    citizen = citizen_of(runtime, 1)
    with TestClient(create_app(runtime, start_scheduler=False)) as client:
        csrf = login(client, "admin", "admin-demo-password-1")
        page = client.get("/ui/admin/tokens").text
        for scope in ("consents:read", "consents:write", "mailings:read", "mailings:write"):
            assert f'value="{scope}"' in page and api_tokens.SCOPES[scope] in page, scope
        created = client.post(
            "/ui/admin/tokens",
            data={"csrf_token": csrf, "name": "desk", "scope": ["consents:write"]},
        )
        secret = re.search(r"otk_[A-Za-z0-9_-]{43}", created.text)
        assert secret, created.text
        client.cookies.clear()
        answer = client.get(BASE, headers=bearer(secret.group(0)), params={"citizen_id": citizen})
        assert answer.status_code == 200
        assert client.get("/api/v1/mailings", headers=bearer(secret.group(0))).status_code == 403
