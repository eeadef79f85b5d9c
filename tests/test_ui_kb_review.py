"""KB review in the UI over HTTP, on SQLite and PostgreSQL: a draft is not answered, the author
cannot approve it, an operator cannot write or approve, another supervisor publishes and the
web chat answers with the new text; versions and their diff; odd input.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import select

from inbox.models import KBRevision, Operator
from inbox.runtime import Runtime
from knowledge_base.store import SEED_DIR
from tests.helpers.kb import app, chat  # noqa: F401
from tests.helpers.kb import client_of as _client
from tests.helpers.ui import login, rt  # noqa: F401

ENTRY = "garbage-bulky"
QUESTION = "как вывезти старый диван"
NEW_FULL = "Старую мебель забирают по средам с 8 до 12 часов от каждой площадки."


def _form(client: TestClient, token: str, **changes: str) -> dict[str, str]:
    page = client.get(f"/ui/kb/draft/{ENTRY}")
    assert page.status_code == 200
    question = re.search(r'name="question" value="([^"]*)"', page.text)
    assert question
    return {"csrf_token": token, "question": question.group(1), "short_answer": "Звоните нам.",
            "full_answer": NEW_FULL, **changes}  # fmt: skip


def _draft_id(rt: Runtime) -> int:
    with rt.factory() as session:
        row = session.exec(select(KBRevision).where(KBRevision.status == "draft")).one()
        assert row.id is not None
        return row.id


def test_review_flow_four_eyes_and_the_bot_answers_once_published(app: object, rt: Runtime) -> None:
    before = chat(app, QUESTION)
    with _client(app) as admin:
        token = login(admin, "admin", "admin-demo")
        saved = admin.post(f"/ui/kb/draft/{ENTRY}", data=_form(admin, token))
        assert "Черновик записи" in saved.text
        assert chat(app, QUESTION) == before  # a draft is never answered
        draft = _draft_id(rt)
        own = admin.post(f"/ui/kb/review/{draft}/approve", data={"csrf_token": token})
        assert "автор не может опубликовать свой" in own.text
    with _client(app) as operator:
        token = login(operator, "anna", "operator-demo")
        for path in (f"/ui/kb/review/{draft}/approve", f"/ui/kb/draft/{ENTRY}"):
            form = {"csrf_token": token, "question": "x", "short_answer": "x", "full_answer": "x"}
            refused = operator.post(path, data=form)
            assert refused.status_code == 403
        assert operator.get("/ui/kb/review").status_code == 403
    assert chat(app, QUESTION) == before
    with _client(app) as boss:
        token = login(boss, "svetlana", "supervisor-demo")
        queue = boss.get("/ui/kb/review")
        assert f"+full_answer: {NEW_FULL}" in queue.text
        done = boss.post(f"/ui/kb/review/{draft}/approve", data={"csrf_token": token})
        assert "опубликована (версия 1)" in done.text
        assert chat(app, QUESTION).startswith(NEW_FULL)
        versions = boss.get(f"/ui/kb/history/{ENTRY}")
        assert "svetlana" in versions.text and "+full_answer: " in versions.text
        assert boss.get(f"/ui/kb/history/{ENTRY}?old=0&new=7").status_code == 200  # no v7
        assert (
            boss.get(f"/ui/kb/history/{ENTRY}?old=-1&new=99999999999999999999").status_code == 422
        )
    with rt.factory() as session:
        row = session.get(KBRevision, draft)
        assert row is not None and (row.author, row.reviewer) == ("admin", "svetlana")


def test_returned_with_a_comment_and_odd_input_is_refused_cleanly(app: object, rt: Runtime) -> None:
    with _client(app) as admin:
        token = login(admin, "admin", "admin-demo")
        blank = admin.post(f"/ui/kb/draft/{ENTRY}", data=_form(admin, token, short_answer="  "))
        assert "Не сохранено" in blank.text
        huge = admin.post(
            f"/ui/kb/draft/{ENTRY}", data=_form(admin, token, full_answer="я" * 30_000)
        )
        assert huge.status_code == 422
        odd = "Звоните \u202e нам 🙂 z\u0301 <b>сейчас</b>."
        admin.post(f"/ui/kb/draft/{ENTRY}", data=_form(admin, token, short_answer=odd))
        assert admin.get("/ui/kb/draft/nope-\u202e").status_code == 404
        draft = _draft_id(rt)
    with _client(app) as boss:
        token = login(boss, "svetlana", "supervisor-demo")
        queue = boss.get("/ui/kb/review")
        assert "<b>сейчас</b>" not in queue.text and "&lt;b&gt;сейчас&lt;/b&gt;" in queue.text
        empty = boss.post(f"/ui/kb/review/{draft}/return", data={"csrf_token": token})
        assert "Напишите автору" in empty.text
        back = boss.post(f"/ui/kb/review/{draft}/return",
                         data={"csrf_token": token, "comment": "Без смайликов"})  # fmt: skip
        assert "возвращён автору" in back.text
        other = boss.post("/ui/kb/review/999999/approve", data={"csrf_token": token})
        assert "Нет такого черновика" in other.text
        again = boss.post(f"/ui/kb/review/{draft}/approve", data={"csrf_token": token})
        assert "уже проверен" in again.text
        no_csrf = boss.post(f"/ui/kb/review/{draft}/approve", data={})
        assert no_csrf.status_code in (400, 403)


def test_a_merge_conflict_waits_in_the_review_queue_until_resolved(
    app: object, rt: Runtime, tmp_path: Path
) -> None:
    from inbox.kb_workflow import approve, merge_shipped, published, save_draft
    from tests.helpers.kb import upgrade_shipped as _upgrade

    rt.kb.kb_dir = tmp_path / "kb"  # the files an upgrade replaces
    shutil.copytree(SEED_DIR, rt.kb.kb_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    with rt.factory() as session:
        admin, boss = (session.exec(select(Operator).where(Operator.login == name)).one()
                       for name in ("admin", "svetlana"))  # fmt: skip
        data = rt.kb.get().by_id[ENTRY].model_dump(mode="json")
        mine = save_draft(session, rt.kb, admin, {**data, "short_answer": "Звоните нам."},
                          rt.clock.now())  # fmt: skip
        approve(session, boss, mine.id or 0, rt.clock.now(), None)
        session.commit()
    _upgrade(rt.kb.kb_dir, ENTRY, short_answer="Поставка: пишите в чат.")
    with rt.factory() as session:
        assert merge_shipped(session, rt.kb, rt.clock.now()).conflicts
        session.commit()
    published(rt.kb)
    assert rt.kb.get().by_id[ENTRY].short_answer == "Звоните нам."  # ours until resolved
    with _client(app) as boss_client:
        login(boss_client, "svetlana", "supervisor-demo")
        queue = boss_client.get("/ui/kb/review").text
        assert "конфликт с новой поставкой" in queue and "Поставка: пишите в чат." in queue
        assert "/approve" not in queue  # a conflict is resolved by writing a draft
        page = boss_client.get(f"/ui/kb/draft/{ENTRY}").text
        assert "Новая поставка изменила те же поля" in page
