"""Shared complaints in the operator UI and on the public tracker page, over HTTP on both
databases: merging appeals by number and from the conversation view, one status change with
one answer to every supporter, bad input refused, and the public page with nothing personal,
unguessable and rate-limited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from core.clock import FrozenClock
from inbox import complaints
from inbox.models import (
    Citizen,
    ComplaintStatusChange,
    Conversation,
    Message,
    SharedComplaint,
)
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.complaints_harness import make_appeal, make_complaint
from tests.helpers.ui import client, login, ui_runtime  # noqa: F401

FLASH = re.compile(r'<p class="flash ([a-z]+)" role="status">([^<]*)</p>')


def make_runtime(db_url: str, clock: FrozenClock, tmp_path: Path, **settings: object) -> Runtime:
    return ui_runtime(db_url, clock, tmp_path, demo=False, secret_key="test-secret" * 4, **settings)


@pytest.fixture
def rt(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(db_url, clock, tmp_path, rate_limit_public_burst=1000)
    yield runtime
    runtime.dispose()


def flash_of(text: str) -> tuple[str, str]:
    found = FLASH.search(text)
    assert found, "no flash message"
    return found.group(1), found.group(2)


def number_of(rt: Runtime, conversation_id: int) -> str:
    with rt.factory() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None and conversation.number is not None
        return conversation.number


def all_complaints(rt: Runtime) -> list[SharedComplaint]:
    with rt.factory() as session:
        return list(session.exec(select(SharedComplaint).order_by(col(SharedComplaint.id))))


def test_an_operator_merges_appeals_by_number_and_answers_everyone_at_once(
    client: TestClient, rt: Runtime
) -> None:
    appeals = [make_appeal(rt, n) for n in (1, 2, 3)]
    csrf = login(client, "anna", "operator-demo")
    listing = client.get("/ui/complaints")
    assert listing.status_code == 200 and 'id="new-complaint"' in listing.text
    numbers = ", ".join(number_of(rt, a) for a in appeals)
    made = client.post(
        "/ui/complaints",
        data={"csrf_token": csrf, "title": "Не горят фонари во дворе", "place": "Ленина, 5",
              "topic": "lighting", "numbers": numbers},
    )  # fmt: skip
    assert made.status_code == 200
    assert flash_of(made.text) == ("ok", "Общая жалоба создана, поддерживают: 3.")
    (complaint,) = all_complaints(rt)
    assert str(made.url).endswith(f"/ui/complaints/{complaint.id}")
    assert '<dd id="complaint-supporters">3</dd>' in made.text
    assert f"/public/complaints/{complaint.slug}" in made.text
    assert "Житель 2" in made.text  # operators see who supports it
    changed = client.post(
        f"/ui/complaints/{complaint.id}/status",
        data={"csrf_token": csrf, "version": "1", "status": "refused",
              "answer": "Опоры меняют весной.", "expected_date": "2027-04-30",
              "internal_note": "ждём подрядчика"},
    )  # fmt: skip
    level, text = flash_of(changed.text)
    assert level == "ok" and "Сообщений жителям в очереди: 3." in text
    assert '<dd id="complaint-status">Отказано</dd>' in changed.text
    with rt.factory() as session:
        news = session.exec(
            select(Message).where(col(Message.idempotency_key).like("complaint-1-%"))
        ).all()
        assert sorted(m.conversation_id for m in news) == sorted(appeals)
        assert all("Ответ ведомства: Опоры меняют весной." in m.text for m in news)
    # The same form again (a stale version, a double click): refused, nobody told twice.
    again = client.post(
        f"/ui/complaints/{complaint.id}/status",
        data={"csrf_token": csrf, "version": "1", "status": "in_progress"},
    )
    assert flash_of(again.text)[0] == "error"
    with rt.factory() as session:
        assert len(session.exec(select(ComplaintStatusChange)).all()) == 1


def test_from_the_conversation_view_an_appeal_starts_or_joins_a_complaint(
    client: TestClient, rt: Runtime
) -> None:
    first, second = make_appeal(rt, 1), make_appeal(rt, 2)
    csrf = login(client, "anna", "operator-demo")
    view = client.get(f"/ui/c/{first}")
    assert f'hx-get="/ui/c/{first}/complaints"' in view.text
    panel = client.get(f"/ui/c/{first}/complaints")
    assert "Новая общая жалоба из этого обращения" in panel.text
    assert 'id="add-to-complaint"' not in panel.text  # none open yet
    made = client.post(
        "/ui/complaints",
        data={"csrf_token": csrf, "conversation_id": str(first), "title": "Яма на дороге",
              "place": "пр. Мира, 12", "topic": "roads"},
    )  # fmt: skip
    assert flash_of(made.text)[0] == "ok"
    (complaint,) = all_complaints(rt)
    assert complaint.conversation_id == first
    panel = client.get(f"/ui/c/{second}/complaints")
    assert f'<option value="{complaint.id}">Яма на дороге — пр. Мира, 12 (1)</option>' in panel.text
    added = client.post(
        f"/ui/c/{second}/complaints", data={"csrf_token": csrf, "complaint_id": complaint.id}
    )
    assert str(added.url).endswith(f"/ui/c/{second}")
    assert flash_of(added.text) == ("ok", "Добавлено жителей: 1.")
    twice = client.post(
        f"/ui/c/{second}/complaints", data={"csrf_token": csrf, "complaint_id": complaint.id}
    )
    assert flash_of(twice.text) == ("ok", "Эти жители уже поддерживают.")
    assert "Поддерживает: " in client.get(f"/ui/c/{second}/complaints").text


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"numbers": "2026-999999"}, "Обращение 2026-999999 не найдено."),
        ({"numbers": "12; DROP TABLE"}, "не номер обращения"),
        ({"numbers": "2026-1 " * 201}, "Не больше 200 номеров"),
        ({"topic": "nope"}, "Выберите тему из списка."),
        ({"title": "Фонари\u202e"}, "недопустимый символ U+202E"),
        ({"place": "!!!"}, "Напишите место"),
    ],
)
def test_bad_input_creates_nothing_and_says_why(
    client: TestClient, rt: Runtime, fields: dict[str, str], said: str
) -> None:
    appeal = make_appeal(rt, 1)
    csrf = login(client, "anna", "operator-demo")
    data = {"csrf_token": csrf, "title": "Фонари", "place": "Ленина 5", "topic": "lighting",
            "numbers": number_of(rt, appeal), **fields}  # fmt: skip
    page = client.post("/ui/complaints", data=data)
    level, text = flash_of(page.text)
    assert level == "error" and said in text
    assert all_complaints(rt) == []


def test_without_login_or_csrf_nothing_changes(client: TestClient, rt: Runtime) -> None:
    complaint_id = make_complaint(rt, [make_appeal(rt, 1)])
    assert client.get("/ui/complaints", follow_redirects=False).status_code == 303
    login(client, "anna", "operator-demo")
    refused = client.post(f"/ui/complaints/{complaint_id}/status", data={"status": "done"})
    assert refused.status_code == 403
    for path in ("/ui/complaints/0", f"/ui/complaints/{2**40}", "/ui/complaints/abc"):
        assert client.get(path).status_code in (404, 422), path
    assert client.get(f"/ui/complaints/{complaint_id + 1}").status_code == 404
    assert all_complaints(rt)[0].status == "submitted"


# -- the public tracker ----------------------------------------------------------------------


def test_the_tracker_shows_the_problem_count_status_answer_and_date_and_nothing_personal(
    client: TestClient, rt: Runtime
) -> None:
    appeals = [make_appeal(rt, n) for n in (1, 2)]
    complaint_id = make_complaint(rt, appeals)
    with rt.factory() as session:
        citizen = session.get(Citizen, 1)
        assert citizen is not None
        citizen.display_name = "Мария Иванова +79001234567"
        session.commit()
    csrf = login(client, "anna", "operator-demo")
    client.post(
        f"/ui/complaints/{complaint_id}/status",
        data={"csrf_token": csrf, "status": "in_progress", "answer": "Бригада придёт в среду.",
              "expected_date": "2026-12-02", "internal_note": "секретная заметка"},
    )  # fmt: skip
    slug = all_complaints(rt)[0].slug
    public = TestClient(client.app)  # no login
    page = public.get(f"/public/complaints/{slug}")
    assert page.status_code == 200
    assert "<h1>Не горят фонари во дворе</h1>" in page.text
    assert '<dd id="supporters">2</dd>' in page.text
    assert '<dd id="status">в работе</dd>' in page.text
    assert '<dd id="expected">02.12.2026</dd>' in page.text
    assert '<p id="answer">Бригада придёт в среду.</p>' in page.text
    for private in ("Мария", "+7900", "Житель", "секретная", number_of(rt, appeals[0]), "anna",
                    "Анна Петрова", "/ui/c/"):  # fmt: skip
        assert private not in page.text, private
    assert 'aria-label="Разделы"' not in page.text  # no operator navigation


@pytest.mark.parametrize(
    "slug",
    ["1", "0", str(2**64), "9" * 400, "..%2F..%2Fui%2Finbox", "%00", "ЖАЛОБА",
     "a" * 22, "\u202e" + "a" * 21, "ａ" * 22, "' OR '1'='1", "a%2F..%2F" + "a" * 14],
)  # fmt: skip
def test_guessed_ids_and_odd_slugs_get_the_same_404(
    client: TestClient, rt: Runtime, slug: str
) -> None:
    make_complaint(rt, [make_appeal(rt, 1)])
    page = TestClient(client.app).get(f"/public/complaints/{slug}")
    assert page.status_code in (400, 404, 422) and "Не горят" not in page.text
    if page.status_code == 404:
        assert "Жалоба не найдена." in page.text or "Not Found" in page.text


def test_the_tracker_is_rate_limited_like_other_public_pages(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    runtime = make_runtime(db_url, clock, tmp_path, rate_limit_public_burst=3,
                           rate_limit_public_per_second=0.01)  # fmt: skip
    try:
        make_complaint(runtime, [make_appeal(runtime, 1)])
        slug = all_complaints(runtime)[0].slug
        public = TestClient(create_app(runtime, start_scheduler=False))
        codes = [public.get(f"/public/complaints/{slug}").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        guesses = [public.get(f"/public/complaints/{'a' * 22}").status_code for _ in range(3)]
        assert guesses == [429, 429, 429]  # guessing burns the same budget
    finally:
        runtime.dispose()


def test_conversations_ticked_in_the_inbox_queue_become_one_complaint(
    client: TestClient, rt: Runtime
) -> None:
    appeals = [make_appeal(rt, n) for n in (1, 2, 3)]
    csrf = login(client, "anna", "operator-demo")
    inbox = client.get("/ui/inbox")
    assert 'hx-get="/ui/complaints/merge-form"' in inbox.text
    for appeal in appeals:
        assert f'name="conversation" value="{appeal}" form="merge-form"' in inbox.text
    form = client.get("/ui/complaints/merge-form")
    assert 'id="merge-form"' in form.text and 'value="lighting"' in form.text
    made = client.post(
        "/ui/complaints",
        data={"csrf_token": csrf, "title": "Не горят фонари", "place": "Ленина 5",
              "topic": "lighting", "conversation": [str(appeals[2]), str(appeals[0])]},
    )  # fmt: skip
    assert flash_of(made.text) == ("ok", "Общая жалоба создана, поддерживают: 2.")
    (complaint,) = all_complaints(rt)
    assert complaint.conversation_id == appeals[2]  # the first ticked keeps its clock
    for forged in (["999999"], [str(2**40)], ["-5"]):
        refused = client.post(
            "/ui/complaints",
            data={"csrf_token": csrf, "title": "x", "place": "Ленина 7", "topic": "lighting",
                  "conversation": forged},
        )  # fmt: skip
        assert flash_of(refused.text)[0] == "error", forged
    assert len(all_complaints(rt)) == 1


def test_an_appeal_merged_by_mistake_is_taken_off_and_told_nothing_more(
    client: TestClient, rt: Runtime
) -> None:
    lead, mistake = make_appeal(rt, 1), make_appeal(rt, 2)
    complaint_id = make_complaint(rt, [lead, mistake])
    other = make_complaint(rt, [make_appeal(rt, 3)], place="ул. Мира, 3")
    csrf = login(client, "anna", "operator-demo")
    page = client.get(f"/ui/complaints/{complaint_id}")
    assert page.text.count(">Убрать</button>") == 1  # not the appeal carrying the clock
    with rt.factory() as session:
        rows = {s.conversation_id: s.id for s in complaints.supporters(session, complaint_id)}
        foreign = complaints.supporters(session, other)[0].id
    for supporter_id, said in ((rows[lead], "по нему идёт её срок"),
                               (foreign, "нет")):  # fmt: skip
        refused = client.post(
            f"/ui/complaints/{complaint_id}/supporters/{supporter_id}/remove",
            data={"csrf_token": csrf},
        )
        level, text = flash_of(refused.text)
        assert level == "error" and said in text
    removed = client.post(
        f"/ui/complaints/{complaint_id}/supporters/{rows[mistake]}/remove",
        data={"csrf_token": csrf},
    )
    assert flash_of(removed.text)[0] == "ok"
    assert '<dd id="complaint-supporters">1</dd>' in removed.text
    client.post(
        f"/ui/complaints/{complaint_id}/status",
        data={"csrf_token": csrf, "status": "done", "answer": "Лампы заменили."},
    )
    with rt.factory() as session:
        told = session.exec(
            select(Message.conversation_id)
            .where(col(Message.idempotency_key).like("complaint-%-%"))
            .where(col(Message.text).contains("Лампы заменили."))
        ).all()
    assert told == [lead]
