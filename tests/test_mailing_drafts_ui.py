"""A draft the back office made through ``/api/v1/mailings`` on the supervisors' page: shown
as «черновик», sent from there at once or cancelled, on both databases."""

from __future__ import annotations

from sqlmodel import select

from inbox import mailings
from inbox.models import AuditEvent, Mailing
from inbox.runtime import Runtime
from tests.helpers.applications_harness import make_application, make_token
from tests.helpers.applications_ui import client, login, rt  # noqa: F401
from tests.helpers.mailings import _subscribe

TEXT = "Завтра с 9 до 17 часов на улице Ленина не будет горячей воды."


def test_a_supervisor_sends_the_back_offices_draft_and_an_operator_cannot(
    rt: Runtime,
    client,
) -> None:
    _, _, conversation_id = make_application(rt)
    _subscribe(rt, conversation_id)
    token = make_token(rt, "backoffice", "mailings:write")
    headers = {"Authorization": f"Bearer {token}"}
    made = client.post(
        "/api/v1/mailings", headers=headers, json={"topic": "outages", "text": TEXT}
    ).json()
    kept = client.post(
        "/api/v1/mailings", headers=headers, json={"topic": "outages", "text": TEXT}
    ).json()
    csrf = login(client, "anna", "operator-demo")
    assert (
        client.post(f"/ui/mailings/{made['id']}/start", data={"csrf_token": csrf}).status_code
        == 403
    )
    client.cookies.clear()
    csrf = login(client, "svetlana", "supervisor-demo")
    page = client.get(f"/ui/mailings/{made['id']}")
    assert "черновик" in page.text and f'action="/ui/mailings/{made["id"]}/start"' in page.text
    assert client.post(f"/ui/mailings/{made['id']}/start").status_code == 403  # no CSRF token
    started = client.post(f"/ui/mailings/{made['id']}/start", data={"csrf_token": csrf})
    assert started.status_code == 200 and "запланирована" in started.text
    again = client.post(f"/ui/mailings/{made['id']}/start", data={"csrf_token": csrf})
    assert again.status_code == 409
    for bad in ("99999", "0", "99999999999999999999"):
        answer = client.post(f"/ui/mailings/{bad}/start", data={"csrf_token": csrf})
        assert answer.status_code in (404, 422), bad
    assert mailings.run_round(rt) == 1  # the started one; the other draft waits
    with rt.factory() as session:
        statuses = {m.id: m.status for m in session.exec(select(Mailing)).all()}
        assert statuses == {made["id"]: "sent", kept["id"]: "draft"}
        event = session.exec(select(AuditEvent).where(AuditEvent.kind == "mailing_scheduled")).one()
        assert event.actor == "svetlana"
