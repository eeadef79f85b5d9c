"""Retired KB entries and restoring versions, over HTTP on SQLite and PostgreSQL (issue #13).

«Снятые с публикации» lists who retired each entry, who approved it and when; «Вернуть» brings
one back through a draft another person publishes (four eyes), as does «Вернуть эту версию» on
the history page for any published version. Abuse: an operator gets 403, a forged or missing
CSRF token 403, unknown ids 404, restoring what is not retired a clear refusal. Also
``otklik kb retired`` and ``otklik kb restore``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from inbox.kb_workflow import open_revision
from inbox.models import AuditEvent, KBRevision
from inbox.runtime import Runtime
from tests.helpers.kb import app, chat, publish_as_supervisor  # noqa: F401
from tests.helpers.kb import client_of as _client
from tests.helpers.ui import login, rt  # noqa: F401

ENTRY = "garbage-bulky"
OTHER = "zhkh-capital-repair"
QUESTION = "как вывезти старый диван"
NEW_SHORT = "Старую мебель забирают по средам. Напишите нам адрес дома."


def _cli(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str, exit_code: int = 0
) -> str:
    from core.config import get_settings
    from otklik.cli import app as cli_app

    monkeypatch.setenv("OTKLIK_DATABASE_URL", rt.settings.effective_database_url)
    monkeypatch.setenv("OTKLIK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OTKLIK_SECRET_KEY", "k" * 40)
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(cli_app, list(args))
    finally:
        get_settings.cache_clear()
    assert done.exit_code == exit_code, done.output
    return done.output


def _open_draft(rt: Runtime, entry_id: str) -> KBRevision:
    with rt.factory() as session:
        row = open_revision(session, entry_id)
    assert row is not None and row.status == "draft", row
    return row


def test_retired_list_and_restore_through_review(
    app: object, rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert OTHER in rt.kb.get().by_id
    answered = rt.kb.get().by_id[ENTRY].model_dump()
    before = chat(app, QUESTION)
    with _client(app) as admin:
        token = login(admin, "admin", "admin-demo")
        empty = admin.get("/ui/kb/retired")
        assert empty.status_code == 200 and "Снятых с публикации записей нет" in empty.text
        admin.post(f"/ui/kb/retire/{ENTRY}", data={"csrf_token": token})
    publish_as_supervisor(app, rt, ENTRY)
    assert ENTRY not in rt.kb.get().by_id and chat(app, QUESTION) != before

    shown = _cli(rt, tmp_path, monkeypatch, "kb", "retired")
    assert shown.startswith(f"{ENTRY}  retired v1 ") and "by admin, approved by svetlana" in shown
    (item,) = json.loads(_cli(rt, tmp_path, monkeypatch, "kb", "retired", "--json"))
    assert (item["entry_id"], item["retired_by"], item["approved_by"]) == (
        ENTRY, "admin", "svetlana"
    )  # fmt: skip
    assert item["retired_at"] and item["pending_draft"] is None

    with _client(app) as operator:
        token = login(operator, "anna", "operator-demo")
        assert operator.get("/ui/kb/retired").status_code == 403
        refused = operator.post(f"/ui/kb/restore/{ENTRY}", data={"csrf_token": token})
        assert refused.status_code == 403
    with _client(app) as boss:
        token = login(boss, "svetlana", "supervisor-demo")
        page = boss.get("/ui/kb/retired")
        assert page.status_code == 200
        row = page.text[page.text.index(f'data-entry="{ENTRY}"') :]
        row = row[: row.index("</tr>")]
        assert "admin" in row and "svetlana" in row and "(версия 1)" in row
        assert f'action="/ui/kb/restore/{ENTRY}"' in row and "Вернуть" in row
        assert 'href="/ui/kb/retired"' in boss.get("/ui/kb/review").text
        for forged in ({"csrf_token": "forged"}, {}):
            assert boss.post(f"/ui/kb/restore/{ENTRY}", data=forged).status_code == 403
        for unknown in ("nope-not-here", "nope-\u202e", "x" * 300, "%27%20or%201%3D1"):
            gone = boss.post(f"/ui/kb/restore/{unknown}", data={"csrf_token": token})
            assert gone.status_code == 404, unknown
        live = boss.post(f"/ui/kb/restore/{OTHER}", data={"csrf_token": token})
        assert live.status_code == 200
        assert f"Запись «{OTHER}» не снята с публикации" in live.text
        with rt.factory() as session:
            assert (
                session.exec(select(KBRevision).where(KBRevision.origin == "restore")).all() == []
            )

        done = boss.post(f"/ui/kb/restore/{ENTRY}", data={"csrf_token": token})
        assert "Черновик «вернуть в публикацию»" in done.text
        assert "вернуть в публикацию</span>" in done.text  # the badge in the queue
        draft = _open_draft(rt, ENTRY)
        assert (draft.author, draft.origin, draft.data.get("retired")) == (
            "svetlana",
            "restore",
            None,
        )
        assert ENTRY not in rt.kb.get().by_id  # not answered before review
        waiting = boss.get("/ui/kb/retired").text
        assert "черновик ждёт проверки" in waiting and f"/ui/kb/restore/{ENTRY}" not in waiting
        own = boss.post(f"/ui/kb/review/{draft.id}/approve", data={"csrf_token": token})
        assert "автор не может опубликовать свой" in own.text
    with _client(app) as admin:
        token = login(admin, "admin", "admin-demo")
        published = admin.post(f"/ui/kb/review/{draft.id}/approve", data={"csrf_token": token})
        assert f"Запись «{ENTRY}» опубликована (версия 2)" in published.text
        assert rt.kb.get().by_id[ENTRY].model_dump() == answered  # the text it had
        assert chat(app, QUESTION) == before
        assert "Снятых с публикации записей нет" in admin.get("/ui/kb/retired").text
        again = admin.post(f"/ui/kb/restore/{ENTRY}", data={"csrf_token": token})
        assert f"Запись «{ENTRY}» не снята с публикации" in again.text
        # the retiring version cannot be "restored" as a text
        retired_v1 = admin.post(f"/ui/kb/history/{ENTRY}/restore/1", data={"csrf_token": token})
        assert "Версия 1 снимала запись с публикации" in retired_v1.text
    assert _cli(rt, tmp_path, monkeypatch, "kb", "retired") == "no retired entries\n"


def test_a_published_version_is_restored_through_review(app: object, rt: Runtime) -> None:
    """«Вернуть эту версию» undoes a publish (or a merge): a draft with the old text."""
    shipped_short = rt.kb.get().by_id[ENTRY].short_answer
    with _client(app) as admin:
        token = login(admin, "admin", "admin-demo")
        page = admin.get(f"/ui/kb/draft/{ENTRY}").text
        question = page.split('name="question" value="', 1)[1].split('"', 1)[0]
        full = rt.kb.get().by_id[ENTRY].full_answer
        admin.post(f"/ui/kb/draft/{ENTRY}", data={"csrf_token": token, "question": question,
                   "short_answer": NEW_SHORT, "full_answer": full})  # fmt: skip
    publish_as_supervisor(app, rt, ENTRY)
    assert rt.kb.get().by_id[ENTRY].short_answer == NEW_SHORT
    with _client(app) as operator:
        token = login(operator, "anna", "operator-demo")
        refused = operator.post(f"/ui/kb/history/{ENTRY}/restore/0", data={"csrf_token": token})
        assert refused.status_code == 403
    with _client(app) as boss:
        token = login(boss, "svetlana", "supervisor-demo")
        history = boss.get(f"/ui/kb/history/{ENTRY}").text
        assert f'action="/ui/kb/history/{ENTRY}/restore/0"' in history
        assert f"/ui/kb/history/{ENTRY}/restore/1" not in history  # the one answered now
        url = f"/ui/kb/history/{ENTRY}/restore"
        assert boss.post(f"{url}/0", data={"csrf_token": "forged"}).status_code == 403
        assert boss.post(f"{url}/7", data={"csrf_token": token}).status_code == 404
        assert boss.post(f"{url}/-1", data={"csrf_token": token}).status_code == 422
        huge = boss.post(f"{url}/99999999999999999999", data={"csrf_token": token})
        assert huge.status_code == 422
        unknown = boss.post("/ui/kb/history/nope-x/restore/0", data={"csrf_token": token})
        assert unknown.status_code == 404
        same = boss.post(f"{url}/1", data={"csrf_token": token})
        assert "Бот уже отвечает текстом версии 1" in same.text
        done = boss.post(f"{url}/0", data={"csrf_token": token})
        assert f"Черновик с текстом версии 0 записи «{ENTRY}» сохранён" in done.text
        assert (
            "возврат прежней версии</span>" in done.text
            and f"+short_answer: {shipped_short}" in done.text
        )
        draft = _open_draft(rt, ENTRY)
        assert (draft.author, draft.origin) == ("svetlana", "version")
        assert rt.kb.get().by_id[ENTRY].short_answer == NEW_SHORT  # until reviewed
        own = boss.post(f"/ui/kb/review/{draft.id}/approve", data={"csrf_token": token})
        assert "автор не может опубликовать свой" in own.text
    with _client(app) as admin:
        token = login(admin, "admin", "admin-demo")
        done = admin.post(f"/ui/kb/review/{draft.id}/approve", data={"csrf_token": token})
        assert "опубликована (версия 2)" in done.text
    assert rt.kb.get().by_id[ENTRY].short_answer == shipped_short


def test_the_cli_restores_through_review(
    app: object, rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``otklik kb restore`` is «Вернуть» (and, with --version, «Вернуть эту версию») on the
    command line: a draft by a named supervisor or administrator, published by another person;
    a refusal is one line and exit 2, with nothing written."""
    answered = rt.kb.get().by_id[ENTRY].model_dump()
    with _client(app) as admin:
        admin.post(
            f"/ui/kb/retire/{ENTRY}", data={"csrf_token": login(admin, "admin", "admin-demo")}
        )
    publish_as_supervisor(app, rt, ENTRY)
    assert ENTRY not in rt.kb.get().by_id

    def refused(*args: str) -> str:
        return _cli(rt, tmp_path, monkeypatch, "kb", "restore", *args, exit_code=2)

    assert "no staff user with the login «nobody»" in refused(ENTRY, "--author", "nobody")
    assert "старший оператор и администратор" in refused(ENTRY, "--author", "anna")
    assert f"Запись «{OTHER}» не снята с публикации" in refused(OTHER, "--author", "svetlana")
    assert "Нет такой записи" in refused("nope-not-here", "--author", "svetlana")
    assert f"У записи «{ENTRY}» нет версии 7" in refused(
        ENTRY, "--author", "svetlana", "--version", "7"
    )
    assert "Usage" in refused(ENTRY, "--author", "svetlana", "--version", "-1")
    with rt.factory() as session:
        assert session.exec(select(KBRevision).where(KBRevision.status == "draft")).all() == []

    made = _cli(rt, tmp_path, monkeypatch, "kb", "restore", ENTRY, "--author", "svetlana")
    draft = _open_draft(rt, ENTRY)
    assert made.startswith(f"draft #{draft.id} of {ENTRY} made by svetlana")
    assert (draft.author, draft.origin, draft.data.get("retired")) == ("svetlana", "restore", None)
    assert ENTRY not in rt.kb.get().by_id  # not answered before review
    with rt.factory() as session:
        event = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "kb_draft_saved")
            .where(AuditEvent.actor == "svetlana")
        ).one()  # fmt: skip
        assert event.data == {"entry": ENTRY, "revision": draft.id, "via": "cli", "restore": True}
    with _client(app) as admin:
        token = login(admin, "admin", "admin-demo")
        published = admin.post(f"/ui/kb/review/{draft.id}/approve", data={"csrf_token": token})
        assert f"Запись «{ENTRY}» опубликована (версия 2)" in published.text
    assert rt.kb.get().by_id[ENTRY].model_dump() == answered

    # --version: version 1 retired the entry (no text to take), version 0 is as shipped
    assert "Версия 1 снимала запись" in refused(ENTRY, "--author", "svetlana", "--version", "1")
    assert "Бот уже отвечает текстом версии" in refused(
        ENTRY, "--author", "svetlana", "--version", "2"
    )
