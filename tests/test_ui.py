"""The operator web UI over HTTP: login and roles, CSRF, escaping, actions, admin validation."""

from __future__ import annotations

import json
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from bot.normalize import normalize
from core.clock import FrozenClock
from core.events import Channel
from inbox.demo_accounts import demo_passwords_in_use
from inbox.models import (
    AuditEvent,
    Conversation,
    DeliveryStatus,
    KBRevision,
    Message,
    ModerationDecision,
    Operator,
    Rating,
)
from inbox.outbox import DeliveryError, Outbox
from inbox.runtime import Runtime
from knowledge_base.entries import KBEntry
from otklik.demo import _vk_comment
from tests.helpers.ui import CSRF, client, ingest_private, login, rt  # noqa: F401


def test_pages_need_a_login_and_a_wrong_password_is_refused(client: TestClient) -> None:
    assert client.get("/ui/inbox", follow_redirects=False).headers["location"] == "/ui/login"
    token = CSRF.search(client.get("/ui/login").text)
    assert token
    wrong = client.post(
        "/ui/login", data={"login": "anna", "password": "nope", "csrf_token": token.group(1)}
    )
    assert wrong.status_code == 401 and "Неверный логин или пароль" in wrong.text
    assert client.get("/ui/inbox", follow_redirects=False).status_code == 303


def test_a_post_without_the_csrf_token_is_rejected(client: TestClient, rt: Runtime) -> None:
    token = login(client, "anna", "operator-demo")
    cid = ingest_private(rt, "Помогите")
    assert client.post(f"/ui/c/{cid}/take").status_code == 403
    assert client.post(f"/ui/c/{cid}/take", data={"csrf_token": "forged"}).status_code == 403
    no_token = client.post("/ui/login", data={"login": "anna", "password": "operator-demo"})
    assert no_token.status_code == 403
    with rt.factory() as session:
        assert session.get(Conversation, cid).assignee_id is None  # type: ignore[union-attr]
    ok = client.post(f"/ui/c/{cid}/take", headers={"X-CSRF-Token": token})
    assert ok.status_code == 200 and "Вы взяли обращение в работу" in ok.text


def test_each_role_sees_only_what_it_may(client: TestClient) -> None:
    login(client, "anna", "operator-demo")
    assert client.get("/ui/inbox").status_code == 200
    assert client.get("/ui/dashboard").status_code == 403
    assert client.get("/ui/dashboard.csv").status_code == 403
    assert client.get("/ui/admin/operators").status_code == 403
    assert "Показатели" not in client.get("/ui/inbox").text
    login(client, "svetlana", "supervisor-demo")
    assert client.get("/ui/dashboard").status_code == 200
    assert client.get("/ui/settings/readability").status_code == 200
    assert client.get("/ui/admin/rules").status_code == 403
    login(client, "admin", "admin-demo")
    for page in ("/ui/dashboard", "/ui/admin/operators", "/ui/admin/rules", "/ui/admin/profile"):
        assert client.get(page).status_code == 200, page


def test_citizen_html_is_shown_as_text_never_run(client: TestClient, rt: Runtime) -> None:
    cid = ingest_private(rt, "<script>alert('x')</script><img src=x onerror=alert(1)>")
    login(client, "anna", "operator-demo")
    for page in ("/ui/inbox", f"/ui/c/{cid}"):
        html = client.get(page).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    with rt.factory() as session:
        conversation = session.get(Conversation, cid)
        assert conversation is not None
        conversation.source_url = "javascript:alert(1)"
        session.commit()
    assert "javascript:" not in client.get(f"/ui/c/{cid}").text


def test_take_reply_and_the_message_waits_in_the_outbox(client: TestClient, rt: Runtime) -> None:
    cid = ingest_private(rt, "Когда дадут горячую воду?")
    token = login(client, "anna", "operator-demo")
    page = client.get(f"/ui/c/{cid}").text
    assert "Здравствуйте, Гость! Меня зовут Анна Петрова" in page  # templates come filled in
    assert "[не заполнено: адрес]" in page  # and what cannot be filled is marked
    client.post(f"/ui/c/{cid}/take", data={"csrf_token": token})
    page = client.post(
        f"/ui/c/{cid}/reply",
        data={"csrf_token": token, "text": "Воду дадут сегодня к 18:00.", "mode": "private"},
    )
    assert "Ответ поставлен в очередь" in page.text and "в очереди" in page.text
    with rt.factory() as session:
        conversation = session.get(Conversation, cid)
        assert conversation is not None and conversation.status == "answered"
        anna = session.exec(select(Operator).where(Operator.login == "anna")).one()
        assert conversation.assignee_id == anna.id
        out = session.exec(
            select(Message).where(Message.conversation_id == cid, Message.direction == "out")
        ).one()
    assert out.delivery_status == "queued" and out.operator_id == anna.id
    assert out.meta["readability"]["ok"] is True


def test_a_closed_conversation_refuses_a_reply_with_a_clear_message(
    client: TestClient,
    rt: Runtime,
) -> None:
    cid = ingest_private(rt, "Спасибо, вопрос решён")
    token = login(client, "anna", "operator-demo")
    client.post(f"/ui/c/{cid}/close", data={"csrf_token": token, "reason": "решено"})
    page = client.post(f"/ui/c/{cid}/reply", data={"csrf_token": token, "text": "Ещё ответ"})
    assert "закрыто: ответ не отправлен" in page.text


def test_an_operator_cannot_assign_to_someone_else(client: TestClient, rt: Runtime) -> None:
    cid = ingest_private(rt, "Вопрос")
    with rt.factory() as session:
        ivan = session.exec(select(Operator).where(Operator.login == "ivan")).one()
    token = login(client, "anna", "operator-demo")
    denied = client.post(f"/ui/c/{cid}/assign", data={"csrf_token": token, "operator_id": ivan.id})
    assert denied.status_code == 403
    token = login(client, "svetlana", "supervisor-demo")
    client.post(f"/ui/c/{cid}/assign", data={"csrf_token": token, "operator_id": ivan.id})
    with rt.factory() as session:
        assert session.get(Conversation, cid).assignee_id == ivan.id  # type: ignore[union-attr]


def test_readability_verdict_warns_about_bureaucratic_text(client: TestClient) -> None:
    token = login(client, "anna", "operator-demo")
    hard = client.post(
        "/ui/readability",
        data={"text": "В целях осуществления мероприятий по обеспечению надлежащего "
                      "функционирования системы теплоснабжения проводятся работы."},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    easy = client.post(
        "/ui/readability", data={"text": "Воду дадут сегодня."}, headers={"X-CSRF-Token": token}
    )
    assert "Текст сложный для чтения" in hard.text and "канцелярит" in hard.text.lower()
    assert "Читается легко" in easy.text


def test_supervisor_raises_the_bar_and_the_verdict_follows(client: TestClient) -> None:
    token = login(client, "svetlana", "supervisor-demo")
    text = "Оплата производится через портал. Подача заявления осуществляется онлайн."
    before = client.post("/ui/readability", data={"text": text}, headers={"X-CSRF-Token": token})
    client.post(
        "/ui/settings/readability",
        data={"csrf_token": token, "max_grade": 20, "max_kantselyarit_per_100_words": 50,
              "max_sentence_words": 40},
    )  # fmt: skip
    after = client.post("/ui/readability", data={"text": text}, headers={"X-CSRF-Token": token})
    assert "Текст сложный" in before.text
    assert "Читается легко" in after.text


def test_moderation_override_is_recorded_with_its_reason(client: TestClient, rt: Runtime) -> None:
    with rt.factory() as session:
        message = session.exec(
            select(Message).where(col(Message.text).contains("+7 916"))
        ).one()  # the demo comment with a phone number, hidden automatically
    token = login(client, "anna", "operator-demo")
    page = client.get(f"/ui/c/{message.conversation_id}").text
    assert "152-ФЗ" in page
    missing = client.post(
        f"/ui/c/{message.conversation_id}/moderation/{message.id}",
        data={"csrf_token": token, "action": "allow", "reason": " "},
    )
    assert "укажите причину" in missing.text
    client.post(
        f"/ui/c/{message.conversation_id}/moderation/{message.id}",
        data={"csrf_token": token, "action": "allow", "reason": "Это номер аварийной службы"},
    )
    with rt.factory() as session:
        decisions = session.exec(
            select(ModerationDecision).where(ModerationDecision.message_id == message.id)
        ).all()
        review = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "moderation_review")
        ).one()
    assert [(d.action, d.decided_by) for d in decisions] == [("hide", "auto"), ("allow", "anna")]
    assert review.data["previous"] == "hide" and review.actor == "anna"


def test_a_failed_delivery_shows_the_error_and_can_be_retried(
    client: TestClient,
    rt: Runtime,
) -> None:
    cid = ingest_private(rt, "Ответьте, пожалуйста")
    token = login(client, "anna", "operator-demo")
    client.post(f"/ui/c/{cid}/reply", data={"csrf_token": token, "text": "Ответ."})

    async def blocked(_message: Message) -> str:
        raise DeliveryError("Forbidden: bot was blocked by the user", permanent=True)

    import asyncio

    asyncio.run(Outbox(rt.factory, rt.clock, {"telegram": blocked}).deliver_once())
    page = client.get(f"/ui/c/{cid}").text
    assert "не доставлено" in page and "bot was blocked by the user" in page
    message_id = re.search(rf"/ui/c/{cid}/retry/(\d+)", page)
    assert message_id
    retried = client.post(message_id.group(0), data={"csrf_token": token})
    assert "снова поставлено в очередь" in retried.text
    with rt.factory() as session:
        message = session.get(Message, int(message_id.group(1)))
    assert message is not None and message.delivery_status == DeliveryStatus.queued.value


def test_invalid_rules_are_rejected_with_the_engines_error(client: TestClient, rt: Runtime) -> None:
    token = login(client, "admin", "admin-demo")
    path = rt.settings.rules_dir / "response.yaml"
    original = path.read_text(encoding="utf-8")
    bad = original.replace("deadline: {hours: 2}", "deadline: {hours: -2}", 1)
    rejected = client.post("/ui/admin/rules", data={"csrf_token": token, "text": bad})
    assert rejected.status_code == 422
    assert "response.yaml" in rejected.text and "comment-on-official-post" in rejected.text
    assert path.read_text(encoding="utf-8") == original
    faster = original.replace("warn_before_minutes: 30", "warn_before_minutes: 45")
    saved = client.post("/ui/admin/rules", data={"csrf_token": token, "text": faster})
    assert "Правила сохранены" in saved.text
    assert rt.rules.warn_before == timedelta(minutes=45) and rt.inbox.rules is rt.rules


def test_invalid_agency_profile_is_rejected(client: TestClient, rt: Runtime) -> None:
    token = login(client, "admin", "admin-demo")
    rejected = client.post("/ui/admin/profile", data={"csrf_token": token, "text": "names: []\n"})
    assert rejected.status_code == 422 and "names" in rejected.text
    assert rt.profile.names


def test_admin_creates_an_operator_and_deactivates_them(client: TestClient, rt: Runtime) -> None:
    token = login(client, "admin", "admin-demo")
    client.post(
        "/ui/admin/operators",
        data={"csrf_token": token, "login": "olga", "display_name": "Ольга",
              "role": "supervisor", "password": "long-password"},
    )  # fmt: skip
    with rt.factory() as session:
        olga = session.exec(select(Operator).where(Operator.login == "olga")).one()
    assert olga.role == "supervisor" and olga.active
    client.post(
        f"/ui/admin/operators/{olga.id}", data={"csrf_token": token, "role": "operator"}
    )  # no "active": unchecked
    other = TestClient(client.app)
    token = CSRF.search(other.get("/ui/login").text)
    assert token
    refused = other.post(
        "/ui/login",
        data={"login": "olga", "password": "long-password", "csrf_token": token.group(1)},
    )
    assert refused.status_code == 401


def test_accounts_with_published_demo_passwords_are_pointed_out(
    client: TestClient,
    rt: Runtime,
) -> None:
    token = login(client, "admin", "admin-demo")
    demo_warning = "Пароль из демонстрационных данных"
    assert client.get("/ui/admin/operators").text.count(demo_warning) == 4
    with rt.factory() as session:
        anna = session.exec(select(Operator).where(Operator.login == "anna")).one()
        ivan = session.exec(select(Operator).where(Operator.login == "ivan")).one()
    client.post(
        f"/ui/admin/operators/{anna.id}/password",
        data={"csrf_token": token, "password": "not-the-demo-one"},
    )
    client.post(f"/ui/admin/operators/{ivan.id}", data={"csrf_token": token, "role": "operator"})
    with rt.factory() as session:
        assert demo_passwords_in_use(session) == ["admin", "svetlana"]  # ivan is deactivated
    assert client.get("/ui/admin/operators").text.count(demo_warning) == 2


def test_dashboard_shows_breaches_and_exports_csv(
    client: TestClient,
    rt: Runtime,
    clock: FrozenClock,
) -> None:
    from inbox.scheduler import run_sla_scan

    clock.advance(timedelta(hours=3))
    run_sla_scan(rt)
    login(client, "svetlana", "supervisor-demo")
    page = client.get("/ui/dashboard?days=1").text
    assert "Нарушения срока" in page and "ещё нет" in page
    export = client.get("/ui/dashboard.csv?days=1")
    assert export.headers["content-type"].startswith("text/csv")
    lines = export.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("number,channel,kind,status")
    assert len(lines) == 1 + 11  # the demo's conversations
    assert any(",breached," in line for line in lines)


def test_public_ratings_need_no_login_and_show_no_comments(client: TestClient, rt: Runtime) -> None:
    with rt.factory() as session:
        cid = session.exec(select(Conversation.id)).first()
        session.add(Rating(conversation_id=cid, score=5, comment="Иванов, кв. 5, спасибо",
                           rated_at=rt.clock.now()))  # fmt: skip
        session.add(Rating(conversation_id=cid, score=2, rated_at=rt.clock.now()))
        session.commit()
    page = client.get("/public/ratings")
    assert page.status_code == 200
    assert "3.5" in page.text and "50 %" in page.text
    assert "Иванов" not in page.text


def test_event_stream_sends_new_audit_events(client: TestClient, rt: Runtime) -> None:
    login(client, "anna", "operator-demo")
    with rt.factory() as session:
        last = max(e.id or 0 for e in session.exec(select(AuditEvent)).all())
    cid = ingest_private(rt, "Новое обращение")
    with client.stream("GET", f"/ui/events?after={last}") as stream:
        received = []
        for line in stream.iter_lines():
            if line.startswith("data: "):
                received.append(json.loads(line[6:]))
                if received[-1]["kind"] == "ingested":
                    break
    assert {"kind": "ingested", "conversation_id": cid, "alert": None, "number": None} in received


def test_public_comment_offers_to_continue_in_private(client: TestClient, rt: Runtime) -> None:
    raw = json.dumps(_vk_comment("ui-vk-1", 512777001, 1555, "Когда починят лифт?", rt.clock.now()))
    _, processed = rt.inbox.ingest(normalize(Channel.vk, raw.encode(), rt.profile))
    assert processed is not None
    cid = processed.conversation_id
    token = login(client, "anna", "operator-demo")
    page = client.get(f"/ui/c/{cid}").text
    assert "Ответить публично" in page and "Предложить перейти в личные" in page
    assert 'href="https://vk.com/wall-200000001_1555?reply=' in page  # the original comment
    text = re.search(r'name="mode" value="move_private">\s*<input type="hidden" name="text" '
                     r'value="([^"]+)"', page)  # fmt: skip
    assert text and "личные сообщения" in text.group(1)
    client.post(
        f"/ui/c/{cid}/reply",
        data={"csrf_token": token, "mode": "move_private", "text": text.group(1)},
    )
    with rt.factory() as session:
        messages = session.exec(select(Message).where(Message.conversation_id == cid)).all()
    out = [m for m in messages if m.direction == "out"]
    notes = [m for m in messages if m.direction == "note"]
    assert len(out) == 1 and out[0].is_public and "личные сообщения" in out[0].text
    assert notes and "личных сообщениях" in notes[0].text


def test_admin_edits_a_kb_answer_as_a_draft_with_the_readability_check(
    client: TestClient,
    rt: Runtime,
    tmp_path: Path,
) -> None:
    """The entry page saves a draft (no file is written); the readability check is shown on
    the page and enforced when another person publishes it."""
    from knowledge_base.entries import load_entries
    from knowledge_base.store import SEED_DIR
    from tests.helpers.kb import publish_as_supervisor

    shipped = {p.name: p.read_bytes() for p in SEED_DIR.glob("*.yaml")}
    agency = tmp_path / "knowledge_base"  # data_dir/knowledge_base: the default kb_dir
    token = login(client, "admin", "admin-demo")
    assert "«Проверка базы»" in client.get("/ui/admin/kb").text
    page = client.get("/ui/admin/kb/garbage-bulky")
    assert page.status_code == 200 and "Короткий ответ" in page.text
    entry = next(e for e in load_entries(SEED_DIR) if e.id == "garbage-bulky")
    hard = ("Осуществление вывоза крупногабаритных отходов производится в соответствии "
            "с утверждённым графиком обслуживания контейнерных площадок.")  # fmt: skip
    form = {"csrf_token": token, "question": entry.question, "full_answer": entry.full_answer}
    empty = client.post("/ui/admin/kb/garbage-bulky", data={**form, "short_answer": " "})
    assert "Не сохранено" in empty.text and "short_answer" in empty.text
    with rt.factory() as session:
        assert not session.exec(select(KBRevision)).all()  # a refused edit saves nothing
    saved = client.post("/ui/admin/kb/garbage-bulky", data={**form, "short_answer": hard})
    assert "Черновик сохранён, ответ изменится после проверки" in saved.text
    assert '<a href="/ui/kb/review">Проверка базы</a>' in saved.text
    assert "Текст сложный для чтения" in saved.text  # the page shows the draft and its verdict
    assert "ждёт проверки" in saved.text
    assert _live(rt, "garbage-bulky").short_answer == entry.short_answer
    boss = TestClient(client.app)
    boss_token = login(boss, "svetlana", "supervisor-demo")
    with rt.factory() as session:
        draft = session.exec(select(KBRevision)).one()
    assert (draft.author, draft.origin, draft.data["short_answer"]) == ("admin", "admin", hard)
    refused = boss.post(f"/ui/kb/review/{draft.id}/approve", data={"csrf_token": boss_token})
    assert "текст трудно читать" in refused.text
    plain = "Старую мебель оставьте на площадке для крупного мусора."
    client.post("/ui/admin/kb/garbage-bulky", data={**form, "short_answer": plain})
    publish_as_supervisor(client.app, rt, "garbage-bulky")
    assert _live(rt, "garbage-bulky").short_answer == plain
    assert not agency.exists()  # no copy of the entry files
    assert {p.name: p.read_bytes() for p in SEED_DIR.glob("*.yaml")} == shipped
    with rt.factory() as session:
        kinds = [e.kind for e in session.exec(select(AuditEvent)).all()]
    assert kinds.count("kb_draft_saved") == 2 and "kb_entry_changed" not in kinds
    assert client.get("/ui/admin/kb/no-such-entry").status_code == 404


def _live(runtime: Runtime, entry_id: str) -> KBEntry:
    return next(e for e in runtime.kb.get().entries if e.id == entry_id)


def test_a_kb_edit_is_refused_while_a_file_of_the_agency_copy_is_broken(
    client: TestClient,
    rt: Runtime,
    tmp_path: Path,
) -> None:
    from knowledge_base.store import SEED_DIR

    agency = tmp_path / "knowledge_base"  # a legacy copy of the entries, edited by hand
    shutil.copytree(SEED_DIR, agency)
    assert rt.kb.get().entries  # the running server has loaded it; then a file is broken
    (agency / "zhkh.yaml").write_text("- id: [broken\n", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in agency.glob("*.yaml")}
    token = login(client, "admin", "admin-demo")
    answer = "Старую мебель оставьте на площадке для крупного мусора."
    saved = client.post(
        "/ui/admin/kb/garbage-bulky",
        data={"csrf_token": token, "question": "Куда выбросить диван?", "short_answer": answer,
              "full_answer": answer},
    )  # fmt: skip
    assert "Не сохранено" in saved.text and "zhkh.yaml" in saved.text
    assert {p.name: p.read_bytes() for p in agency.glob("*.yaml")} == before
    with rt.factory() as session:
        assert not session.exec(select(KBRevision)).all()


def test_the_admin_entry_page_is_refused_to_an_operator_and_without_csrf(
    client: TestClient,
    rt: Runtime,
) -> None:
    form = {"question": "Вопрос?", "short_answer": "Ответ.", "full_answer": "Ответ."}
    token = login(client, "anna", "operator-demo")
    assert client.get("/ui/admin/kb/garbage-bulky").status_code == 403
    denied = client.post("/ui/admin/kb/garbage-bulky", data={**form, "csrf_token": token})
    assert denied.status_code == 403
    login(client, "admin", "admin-demo")
    assert client.post("/ui/admin/kb/garbage-bulky", data=form).status_code == 403  # no csrf
    token = login(client, "admin", "admin-demo")
    nul = client.post(
        "/ui/admin/kb/garbage-bulky",
        data={**form, "csrf_token": token, "short_answer": "ответ\u0000"},
    )
    assert nul.status_code == 400 and "Traceback" not in nul.text
    odd = "\u202eОтвет 🙂 e\u0301 \U0001d7d8."
    weird = client.post(
        "/ui/admin/kb/garbage-bulky", data={**form, "csrf_token": token, "short_answer": odd}
    )
    assert "Черновик сохранён" in weird.text
    huge = client.post(
        "/ui/admin/kb/garbage-bulky",
        data={**form, "csrf_token": token, "full_answer": "а" * 20_001},
    )
    assert huge.status_code == 422
    with rt.factory() as session:
        rows = session.exec(select(KBRevision)).all()
    assert [(row.author, row.data["short_answer"]) for row in rows] == [("admin", odd)]


def test_event_stream_ends_by_itself_and_resumes_from_last_event_id(
    client: TestClient,
    rt: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inbox.web.ui import inbox_routes

    monkeypatch.setattr(inbox_routes, "STREAM_SECONDS", 1.5)
    login(client, "anna", "operator-demo")
    first = client.get("/ui/events").text  # returns: the stream closed on its own
    resume_at = re.findall(r"^id: (\d+)$", first, re.MULTILINE)[-1]
    cid = ingest_private(rt, "Пока поток был закрыт")
    again = client.get("/ui/events", headers={"Last-Event-ID": resume_at}).text
    assert f'"conversation_id": {cid}' in again and '"kind": "ingested"' in again
    assert "data:" not in first


def test_a_reply_on_a_stale_page_is_refused_so_the_citizen_gets_one_answer(
    client: TestClient,
    rt: Runtime,
) -> None:
    cid = ingest_private(rt, "Куда жаловаться на шум?")
    anna_token = login(client, "anna", "operator-demo")
    ivan = TestClient(client.app)
    ivan_token = login(ivan, "ivan", "operator-demo")
    seen = {
        who: re.search(r'name="version" value="(\d+)"', c.get(f"/ui/c/{cid}").text)
        for who, c in (("anna", client), ("ivan", ivan))
    }
    assert seen["anna"] and seen["ivan"]
    first = client.post(
        f"/ui/c/{cid}/reply",
        data={"csrf_token": anna_token, "text": "Пишите в полицию.",
              "version": seen["anna"].group(1)},
    )  # fmt: skip
    late = ivan.post(
        f"/ui/c/{cid}/reply",
        data={"csrf_token": ivan_token, "text": "Пишите в управу.",
              "version": seen["ivan"].group(1)},
    )  # fmt: skip
    assert "Ответ поставлен в очередь" in first.text
    assert "Обращение изменилось, пока вы его читали" in late.text
    with rt.factory() as session:
        out = session.exec(
            select(Message).where(Message.conversation_id == cid, Message.direction == "out")
        ).all()
    assert [m.text for m in out] == ["Пишите в полицию."]
