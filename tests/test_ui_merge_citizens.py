"""Operators merge two citizen records from the conversation view («Тот же житель»): one
history from then on, audited; others' CSRF, made-up numbers, self-merges refused."""

from __future__ import annotations

from collections.abc import Iterator
from json import dumps

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from bot.normalize import normalize
from core.events import Channel
from inbox.models import AuditEvent, Citizen, Conversation
from inbox.runtime import Runtime
from otklik.demo import _tg_private
from otklik.web import create_app
from tests.helpers.ui import ingest_private, login
from tests.helpers.ui import rt as rt


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, start_scheduler=False)) as test_client:
        yield test_client


def two_citizens(rt: Runtime) -> tuple[Conversation, Conversation]:
    """Two Telegram citizens, one conversation each."""
    first = ingest_private(rt, "Когда починят фонарь?", update_id=990101)
    with rt.factory() as session:
        a = session.get(Conversation, first)
        assert a is not None
    raw = dumps(_tg_private(990102, 391999777, "Другой", "Фонарь не горит", rt.clock.now()))
    _, processed = rt.inbox.ingest(normalize(Channel.telegram, raw.encode(), rt.profile))
    assert processed is not None and processed.conversation_id is not None
    with rt.factory() as session:
        b = session.get(Conversation, processed.conversation_id)
        assert b is not None
    assert a.citizen_id != b.citizen_id
    return a, b


def test_an_operator_merges_two_citizens_and_sees_one_history(
    client: TestClient,
    rt: Runtime,
) -> None:
    a, b = two_citizens(rt)
    token = login(client, "anna", "operator-demo")
    page = client.get(f"/ui/c/{a.id}")
    assert f'action="/ui/c/{a.id}/merge-citizen"' in page.text
    assert b.number not in page.text.split("История жителя")[1]
    done = client.post(
        f"/ui/c/{a.id}/merge-citizen", data={"csrf_token": token, "number": b.number}
    )
    assert done.status_code == 200 and "один житель" in done.text
    assert f"/ui/c/{b.id}" in done.text.split("История жителя")[1]  # one history
    with rt.factory() as session:
        merged = session.get(Citizen, b.citizen_id)
        assert merged is not None and merged.merged_into_id == a.citizen_id
        moved = session.get(Conversation, b.id)
        assert moved is not None and moved.citizen_id == a.citizen_id
        [event] = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "citizens_merged_by_operator")
        ).all()
        assert event.actor == "anna" and event.operator_id is not None
        assert session.exec(select(AuditEvent).where(AuditEvent.kind == "citizens_merged")).one()
    again = client.post(
        f"/ui/c/{b.id}/merge-citizen", data={"csrf_token": token, "number": a.number}
    )
    assert "уже от одного жителя" in again.text


@pytest.mark.parametrize("number", ["", "9999-999999", "' OR 1=1 --", "２０２６", "x" * 32])
def test_a_made_up_number_merges_nothing(
    client: TestClient,
    rt: Runtime,
    number: str,
) -> None:
    a, _ = two_citizens(rt)
    token = login(client, "anna", "operator-demo")
    answer = client.post(
        f"/ui/c/{a.id}/merge-citizen", data={"csrf_token": token, "number": number}
    )
    assert answer.status_code in (200, 422)
    with rt.factory() as session:
        assert session.exec(select(Citizen).where(Citizen.merged_into_id != None)).all() == []  # noqa: E711


def test_without_csrf_or_login_nothing_is_merged(client: TestClient, rt: Runtime) -> None:
    a, b = two_citizens(rt)
    anonymous = client.post(
        f"/ui/c/{a.id}/merge-citizen", data={"number": b.number}, follow_redirects=False
    )
    assert anonymous.status_code in (303, 401, 403)
    login(client, "anna", "operator-demo")
    forged = client.post(
        f"/ui/c/{a.id}/merge-citizen", data={"csrf_token": "x", "number": b.number}
    )
    assert forged.status_code == 403
    with rt.factory() as session:
        assert session.exec(select(Citizen).where(Citizen.merged_into_id != None)).all() == []  # noqa: E711
