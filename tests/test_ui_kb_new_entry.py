"""A brand-new KB entry written on «Проверка базы», on SQLite and PostgreSQL: every problem of
the form is listed at once and nothing is saved; a valid entry is a draft the bot does not
answer with until another person publishes it; operators and forged forms are refused."""

from __future__ import annotations

from sqlmodel import select

from inbox.models import KBRevision
from inbox.runtime import Runtime
from tests.helpers.kb import app, chat, publish_as_supervisor  # noqa: F401
from tests.helpers.kb import client_of as _client
from tests.helpers.ui import login, rt  # noqa: F401

QUESTION = "куда сдать новогоднюю ёлку"
FORM = {
    "entry_id": "garbage-new-year-tree",
    "topic": "Мусор",
    "life_situation": "Вывоз мусора",
    "department": "Отдел ЖКХ",
    "question": "Куда сдать новогоднюю ёлку?",
    "phrasings": "куда деть ёлку после праздников\n\n  где принимают ёлки  \n",
    "short_answer": "Ёлки принимают на площадках у каждого двора до 31 января.",
    "full_answer": "Ёлку оставьте рядом с контейнерной площадкой до 31 января. Мы вывезем её.",
}
HARD = (
    "Осуществление вывоза новогодних деревьев производится в соответствии с утверждённым "
    "графиком обслуживания контейнерных площадок в установленном порядке."
)


def _rows(rt: Runtime) -> list[KBRevision]:
    with rt.factory() as session:
        return list(session.exec(select(KBRevision)).all())


def test_a_new_entry_is_a_draft_until_another_supervisor_publishes_it(
    app: object, rt: Runtime
) -> None:
    assert FORM["full_answer"] not in chat(app, QUESTION)
    with _client(app) as admin:
        token = login(admin, "admin", "admin-demo")
        page = admin.get("/ui/kb/review").text
        assert "Новая запись" in page and 'action="/ui/kb/new"' in page
        saved = admin.post("/ui/kb/new", data={**FORM, "csrf_token": token})
        assert "Черновик новой записи «garbage-new-year-tree» сохранён" in saved.text
        assert "+question: Куда сдать новогоднюю ёлку?" in saved.text  # its diff in the queue
    [row] = _rows(rt)
    assert (row.status, row.author, row.origin) == ("draft", "admin", "new")
    assert row.data["phrasings"] == ["куда деть ёлку после праздников", "где принимают ёлки"]
    assert row.base_data is None and row.base_hash is None
    assert FORM["full_answer"] not in chat(app, QUESTION)  # a draft is never answered
    publish_as_supervisor(app, rt, "garbage-new-year-tree")
    assert chat(app, QUESTION).startswith(FORM["full_answer"])
    assert any(e.id == "garbage-new-year-tree" for e in rt.kb.get().entries)
    with _client(app) as admin:  # now it is an entry like any other
        login(admin, "admin", "admin-demo")
        assert admin.get("/ui/admin/kb/garbage-new-year-tree").status_code == 200


def test_every_problem_of_the_form_is_listed_and_nothing_is_saved(app: object, rt: Runtime) -> None:
    with _client(app) as admin:
        token = login(admin, "admin", "admin-demo")
        taken = admin.post(
            "/ui/kb/new",
            data={**FORM, "csrf_token": token, "entry_id": "garbage-bulky", "short_answer": " ",
                  "full_answer": HARD},
        )  # fmt: skip
        assert taken.status_code == 422
        assert "запись «garbage-bulky» уже есть" in taken.text
        assert "Короткий ответ: заполните." in taken.text
        assert "Полный ответ: " in taken.text  # its readability failure
        assert "Куда сдать новогоднюю ёлку?" in taken.text  # what was typed is kept
        for bad in ("Ёлка", "tree_new", "-tree", "a" * 65, "tree\u202e", "дерево"):
            odd = admin.post("/ui/kb/new", data={**FORM, "csrf_token": token, "entry_id": bad})
            assert odd.status_code == 422, bad
            assert "только строчные латинские буквы" in odd.text, bad
        when_only = admin.post(
            "/ui/kb/new", data={**FORM, "csrf_token": token, "available_when": "Завтра."}
        )
        assert "сначала напишите, почему нельзя сейчас" in when_only.text
        huge = admin.post("/ui/kb/new", data={**FORM, "csrf_token": token, "entry_id": "a" * 201})
        assert huge.status_code == 422
        assert admin.post("/ui/kb/new", data=FORM).status_code == 403  # no CSRF token
        # a second new entry with the id of an open draft is refused too
        assert admin.post("/ui/kb/new", data={**FORM, "csrf_token": token}).status_code == 200
        again = admin.post("/ui/kb/new", data={**FORM, "csrf_token": token})
        assert again.status_code == 422 and "уже есть" in again.text
    assert [row.entry_id for row in _rows(rt)] == ["garbage-new-year-tree"]
    with _client(app) as operator:
        token = login(operator, "anna", "operator-demo")
        denied = operator.post(
            "/ui/kb/new", data={**FORM, "csrf_token": token, "entry_id": "anna-entry"}
        )
        assert denied.status_code == 403
    assert len(_rows(rt)) == 1


OLD_QUESTION = "как вывезти старый диван"


def test_an_entry_is_retired_through_a_reviewed_draft_and_can_come_back(
    app: object, rt: Runtime
) -> None:
    old = next(e for e in rt.kb.get().entries if e.id == "garbage-bulky")
    assert chat(app, OLD_QUESTION).startswith(old.full_answer)
    with _client(app) as operator:
        token = login(operator, "anna", "operator-demo")
        assert (
            operator.post("/ui/kb/retire/garbage-bulky", data={"csrf_token": token}).status_code
            == 403
        )
    with _client(app) as admin:
        assert admin.post("/ui/kb/retire/garbage-bulky").status_code == 403  # not logged in
        token = login(admin, "admin", "admin-demo")
        assert admin.post("/ui/kb/retire/garbage-bulky", data={}).status_code == 403  # no CSRF
        assert "Снять с публикации" in admin.get("/ui/admin/kb/garbage-bulky").text
        unknown = admin.post("/ui/kb/retire/no-such-entry\u202e", data={"csrf_token": token})
        assert "Не сохранено: Нет такой записи базы знаний." in unknown.text
        saved = admin.post("/ui/kb/retire/garbage-bulky", data={"csrf_token": token})
        assert "Черновик «снять с публикации» для записи «garbage-bulky» сохранён" in saved.text
        assert "снять с публикации</span>" in saved.text  # the badge in the queue
    assert [r.origin for r in _rows(rt)] == ["retire"]
    assert chat(app, OLD_QUESTION).startswith(old.full_answer)  # a draft is never answered
    publish_as_supervisor(app, rt, "garbage-bulky")
    assert "garbage-bulky" not in {e.id for e in rt.kb.get().entries}
    assert old.full_answer not in chat(app, OLD_QUESTION)
    with _client(app) as admin:
        token = login(admin, "admin", "admin-demo")
        again = admin.post("/ui/kb/retire/garbage-bulky", data={"csrf_token": token})
        assert "уже снята с публикации" in again.text
        # a draft saved from the draft page brings the entry back, after review
        page = admin.get("/ui/kb/draft/garbage-bulky").text
        assert old.question in page
        back = admin.post(
            "/ui/kb/draft/garbage-bulky",
            data={"csrf_token": token, "question": old.question,
                  "short_answer": old.short_answer, "full_answer": old.full_answer},
        )  # fmt: skip
        assert "Черновик записи «garbage-bulky» сохранён" in back.text
    publish_as_supervisor(app, rt, "garbage-bulky")
    assert chat(app, OLD_QUESTION).startswith(old.full_answer)


def test_merge_of_a_shipped_upgrade_leaves_a_retired_entry_retired(rt: Runtime) -> None:
    from inbox.kb_workflow import approve, merge_shipped, retire_draft
    from inbox.models import Operator

    with rt.factory() as session:
        author = session.exec(select(Operator).where(Operator.login == "admin")).one()
        boss = session.exec(select(Operator).where(Operator.login == "svetlana")).one()
        row = retire_draft(session, rt.kb, author, "garbage-bulky", rt.clock.now())
        assert row.id is not None
        approve(session, boss, row.id, rt.clock.now(), None)
        row.base_hash = "an older shipped version"  # as after an upgrade changed the entry
        session.add(row)
        report = merge_shipped(session, rt.kb, rt.clock.now())
        session.commit()
    assert report.up_to_date == ["garbage-bulky"] and not report.merged and not report.conflicts
