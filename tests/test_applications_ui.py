"""Applications in the operator UI over HTTP, on both databases: the panel in the conversation
view, the list with filters and paging, the status form (CSRF, stale forms, errors), the
preview of the citizen's message, and the administrators' API tokens page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from core.clock import FrozenClock
from inbox.models import ApiToken, Application, ApplicationStatusChange, AuditEvent, Message
from inbox.runtime import Runtime
from tests.helpers.applications_harness import make_application
from tests.helpers.applications_ui import client, login, rt  # noqa: F401

FLASH = re.compile(r'<p class="flash ([a-z]+)" role="status">([^<]*)</p>')


def flash_of(page_text: str) -> tuple[str, str]:
    found = FLASH.search(page_text)
    assert found, "no flash message"
    return found.group(1), found.group(2)


def changes(rt: Runtime) -> list[ApplicationStatusChange]:
    with rt.factory() as session:
        return list(session.exec(select(ApplicationStatusChange)))


def test_an_operator_refuses_from_the_conversation_view_with_why_and_when(
    client: TestClient,
    rt: Runtime,
) -> None:
    app_id, number, conversation_id = make_application(rt)
    csrf = login(client, "anna", "operator-demo")
    view = client.get(f"/ui/c/{conversation_id}")
    assert "Заявления жителя" in view.text and f"Заявление {number}" in view.text
    assert f'action="/ui/applications/{app_id}/status"' in view.text
    assert 'name="back" value="conversation"' in view.text
    moved = client.post(
        f"/ui/applications/{app_id}/status",
        data={"csrf_token": csrf, "version": "1", "back": "conversation", "status": "refused",
              "reason": "Фонари меняют весной всем районом.", "expected_date": "2027-05-15",
              "internal_note": "план ремонта", "comment": ""},
        follow_redirects=False,
    )  # fmt: skip
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/ui/c/{conversation_id}#application-{app_id}"
    page = client.get(moved.headers["location"])
    assert flash_of(page.text) == (
        "ok",
        "Статус изменён: Отказано. Сообщение жителю поставлено в очередь.",
    )
    assert "Почему: Фонари меняют весной всем районом." in page.text
    assert "Когда будет можно: 15.05.2027" in page.text and "Заметка: план ремонта" in page.text
    [change] = changes(rt)
    assert (change.actor_kind, change.actor, change.to_status) == ("operator", "anna", "refused")
    assert change.operator_id is not None
    with rt.factory() as session:
        message = session.exec(
            select(Message).where(Message.conversation_id == conversation_id)
        ).one()
    assert message.author_kind == "operator" and message.delivery_status == "queued"
    assert "план ремонта" not in message.text


def test_a_status_form_without_its_csrf_token_is_refused(client: TestClient, rt: Runtime) -> None:
    app_id, _, _ = make_application(rt)
    login(client, "anna", "operator-demo")
    refused = client.post(f"/ui/applications/{app_id}/status", data={"status": "done"})
    assert refused.status_code == 403 and changes(rt) == []


def test_pages_need_a_login(client: TestClient, rt: Runtime) -> None:
    app_id, _, _ = make_application(rt)
    for path in ("/ui/applications", f"/ui/applications/{app_id}"):
        assert client.get(path, follow_redirects=False).headers["location"] == "/ui/login"


def test_a_stale_form_does_not_send_a_second_contradicting_message(
    client: TestClient,
    rt: Runtime,
) -> None:
    app_id, _, _ = make_application(rt)
    csrf = login(client, "anna", "operator-demo")
    form = {"csrf_token": csrf, "version": "1", "back": "application"}
    client.post(f"/ui/applications/{app_id}/status", data={**form, "status": "done"})
    late = client.post(
        f"/ui/applications/{app_id}/status",
        data={**form, "status": "info_needed", "comment": "Пришлите фото."},
    )
    level, text = flash_of(late.text)
    assert level == "error" and "изменилось, пока вы его читали" in text
    assert [c.to_status for c in changes(rt)] == ["done"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "refused"}, "Напишите причину отказа"),
        ({"status": "info_needed"}, "Напишите жителю, какие сведения нужны"),
        ({"status": "in_progress", "expected_date": "2020-01-01"}, "Срок уже прошёл"),
        ({"status": "in_progress", "expected_date": "завтра"}, "Дата не распознана"),
        ({"status": "in_progress", "comment": "a\u202eb"}, "недопустимый символ U+202E"),
        ({"status": "submitted"}, "уже в этом статусе"),
        ({"status": "<script>"}, "Неизвестный статус «&lt;script&gt;»"),
    ],
)
def test_a_change_that_cannot_be_made_is_explained_and_changes_nothing(
    client: TestClient,
    rt: Runtime,
    data: dict[str, str],
    message: str,
) -> None:
    app_id, _, _ = make_application(rt)
    csrf = login(client, "anna", "operator-demo")
    page = client.post(f"/ui/applications/{app_id}/status", data={"csrf_token": csrf, **data})
    level, text = flash_of(page.text)
    assert level == "error" and text.startswith("Статус не изменён: ") and message in text
    assert changes(rt) == []


def test_unknown_or_huge_application_ids_are_404(client: TestClient, rt: Runtime) -> None:
    csrf = login(client, "anna", "operator-demo")
    for app_id in ("999", "99999999999999999999", "-1"):
        assert client.get(f"/ui/applications/{app_id}").status_code in (404, 422)
        posted = client.post(
            f"/ui/applications/{app_id}/status", data={"csrf_token": csrf, "status": "done"}
        )
        assert posted.status_code in (404, 422)


def test_the_list_filters_pages_and_escapes(
    client: TestClient,
    rt: Runtime,
    clock: FrozenClock,
) -> None:
    for i in range(52):
        make_application(rt, thread_key=f"tg:{i}", created_at=clock.now() - timedelta(hours=i))
    old_id, old, _ = make_application(rt, created_at=clock.now() - timedelta(days=40),
                                      citizen_name="<script>alert(1)</script>")  # fmt: skip
    vk_id, vk, _ = make_application(
        rt, channel="vk", thread_key="vk:9", service="garbage", title="Вывоз мусора"
    )
    login(client, "anna", "operator-demo")
    first = client.get("/ui/applications")
    assert first.status_code == 200 and "Найдено: 54" in first.text
    assert first.text.count('<tr class="') == 50 and "Страница 1 из 2" in first.text
    second = client.get("/ui/applications?page=2")
    assert second.text.count('<tr class="') == 4 and "З-2026-000001" in second.text
    assert old in first.text and "З-2026-000001" not in first.text  # newest first
    assert "<script>alert(1)</script>" not in first.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in first.text
    overdue = client.get("/ui/applications?overdue=1")
    assert "Найдено: 1" in overdue.text and old in overdue.text and "просрочено" in overdue.text
    assert vk in client.get("/ui/applications?channel=vk").text
    assert "Найдено: 1" in client.get("/ui/applications?service=garbage").text
    assert "Вывоз мусора" in first.text  # the service filter's choices
    dated = client.get("/ui/applications?to=2026-10-20")
    assert "Найдено: 1" in dated.text and old in dated.text
    bad = client.get("/ui/applications?from=вчера&page=1")
    assert bad.status_code == 200 and "Дата «с» не распознана" in bad.text
    assert client.get("/ui/applications?page=0").status_code == 422
    assert old_id and vk_id


def test_the_preview_shows_what_the_citizen_will_read_and_its_verdict(
    client: TestClient,
    rt: Runtime,
) -> None:
    app_id, number, _ = make_application(rt)
    csrf = login(client, "anna", "operator-demo")
    preview = client.post(
        f"/ui/applications/{app_id}/preview",
        data={"csrf_token": csrf, "status": "refused", "reason": "Ремонт будет весной.",
              "expected_date": "2027-05-15"},
    )  # fmt: skip
    assert f"Заявление {number}: сделать это сейчас нельзя." in preview.text
    assert "Когда будет можно: 15.05.2027." in preview.text and "Читается легко" in preview.text
    hard = client.post(
        f"/ui/applications/{app_id}/preview",
        data={"csrf_token": csrf, "status": "refused", "reason": (
            "В целях осуществления мероприятий по обеспечению надлежащего функционирования "
            "системы наружного освещения проводится инвентаризация имущественного комплекса."
        )},
    )  # fmt: skip
    assert "Текст сложный для чтения" in hard.text
    assert changes(rt) == []  # a preview changes nothing


def test_only_administrators_manage_tokens_and_a_token_is_shown_once(
    client: TestClient,
    rt: Runtime,
) -> None:
    login(client, "anna", "operator-demo")
    assert client.get("/ui/admin/tokens").status_code == 403
    client.cookies.clear()
    csrf = login(client, "admin", "admin-demo")
    created = client.post(
        "/ui/admin/tokens",
        data={"csrf_token": csrf, "name": "1С-документооборот", "scope": ["applications:write"]},
    )
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    token = re.search(r"<code>(otk_[A-Za-z0-9_-]{43})</code>", created.text)
    assert token
    secret = token.group(1)
    assert secret not in client.get("/ui/admin/tokens").text  # shown once, never again
    assert all(secret not in value for value in client.cookies.values())
    with rt.factory() as session:
        row = session.exec(select(ApiToken)).one()
        assert row.created_by == "admin" and row.scopes == "applications:write"
        assert session.exec(select(AuditEvent).where(AuditEvent.kind == "api_token_created")).one()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/applications", headers=headers).status_code == 200
    duplicate = client.post(
        "/ui/admin/tokens",
        data={"csrf_token": csrf, "name": "1С-документооборот", "scope": ["applications:read"]},
    )
    assert flash_of(duplicate.text)[0] == "error"
    no_scope = client.post("/ui/admin/tokens", data={"csrf_token": csrf, "name": "other"})
    assert "Укажите права" in flash_of(no_scope.text)[1]
    revoked = client.post(f"/ui/admin/tokens/{row.id}/revoke", data={"csrf_token": csrf})
    assert "отозван" in flash_of(revoked.text)[1]
    assert client.get("/api/v1/applications", headers=headers).status_code == 401
    assert (
        client.post("/ui/admin/tokens/99999/revoke", data={"csrf_token": csrf}).status_code == 404
    )


def test_a_conversation_without_applications_shows_no_panel(
    client: TestClient,
    rt: Runtime,
) -> None:
    app_id, _, conversation_id = make_application(rt)
    with rt.factory() as session:
        session.delete(session.get(Application, app_id))
        session.commit()
    login(client, "anna", "operator-demo")
    page = client.get(f"/ui/c/{conversation_id}")
    assert page.status_code == 200 and "Заявления жителя" not in page.text
