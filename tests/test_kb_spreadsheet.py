"""Issue #13, authoring: the knowledge base as an XLSX or CSV spreadsheet.

Round trip (spreadsheet → KB → spreadsheet is identical), every error named by row and column,
formulas never run, ``otklik kb import --files`` against the agency's directory, which a
running server's provider then serves, and ``otklik kb import --author`` making drafts for review
as the UI's upload does (SQLite and PostgreSQL).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from sqlmodel import select
from typer.testing import CliRunner

from core.config import Settings
from inbox.auth import hash_password
from inbox.db import session_scope
from inbox.kb_workflow import WorkflowError, approve, published
from inbox.models import AuditEvent, KBRevision, Operator, Role
from inbox.runtime import Runtime, build_runtime
from knowledge_base.entries import KBEntry, load_entries
from knowledge_base.spreadsheet import (
    COLUMNS,
    NEW_ENTRIES_FILE,
    SpreadsheetError,
    apply_entries,
    column_letter,
    read_sheet,
    write_csv,
    write_xlsx,
)
from knowledge_base.store import KnowledgeBaseProvider, prepare_writable
from otklik.cli import app
from otklik.web import create_app

HEADERS = [h for _, h in COLUMNS]


@pytest.fixture(scope="module")
def shipped() -> list[KBEntry]:
    return load_entries()


def xlsx_values(data: bytes) -> list[list[str | None]]:
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    return [[c.value for c in row] for row in sheet.iter_rows()]


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def a_row(**changes: str) -> list[str]:
    row = {
        "Код": "test-entry",
        "Тема": "Проверка",
        "Жизненная ситуация": "Дом и ЖКХ",
        "Вопрос": "Как проверить таблицу?",
        "Другие формулировки": "проверка таблицы\nтаблица с ответами",
        "Синонимы": "",
        "Краткий ответ": "Откройте таблицу и проверьте строки.",
        "Полный ответ": "Откройте таблицу, проверьте строки и сохраните файл.",
        "Отдел": "Отдел проверки",
        "Почему нельзя": "",
        "Когда будет": "",
    } | changes
    return [row[h] for h in HEADERS]


def test_column_letters_are_the_spreadsheets() -> None:
    assert [column_letter(i) for i in (0, 3, 25, 26, 27, 701)] == ["A", "D", "Z", "AA", "AB", "ZZ"]


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_every_shipped_entry_survives_the_round_trip(shipped: list[KBEntry], kind: str) -> None:
    data = write_xlsx(shipped) if kind == "xlsx" else write_csv(shipped)
    again = read_sheet(data, kind)
    assert [e.model_dump() for e in again] == [e.model_dump() for e in shipped]


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_spreadsheet_to_kb_to_spreadsheet_is_identical(
    shipped: list[KBEntry], kind: str, tmp_path: Path
) -> None:
    """An agency exports, edits two rows, adds one, deletes one, imports, exports again."""
    first = write_csv(shipped)
    rows = list(csv.reader(io.StringIO(first.decode("utf-8-sig"))))
    rows[1][rows[0].index("Краткий ответ")] = "Новый краткий ответ, проверенный нами."
    rows[5][rows[0].index("Другие формулировки")] += "\nещё одна формулировка"
    removed = rows.pop(9)[0]
    rows.append(a_row())
    edited_entries = read_sheet(csv_bytes(rows), "csv")
    edited = write_xlsx(edited_entries) if kind == "xlsx" else write_csv(edited_entries)

    kb_dir = prepare_writable(tmp_path / "kb")
    changes = apply_entries(kb_dir, read_sheet(edited, kind))
    assert changes.added == ["test-entry"] and changes.removed == [removed]
    assert sorted(changes.changed) == sorted([rows[1][0], rows[5][0]])
    assert (kb_dir / NEW_ENTRIES_FILE).exists()

    loaded = load_entries(kb_dir)
    exported = write_xlsx(loaded) if kind == "xlsx" else write_csv(loaded)
    if kind == "csv":
        assert exported == edited
    else:
        assert xlsx_values(exported) == xlsx_values(edited)
    # and importing it once more changes nothing
    assert not apply_entries(kb_dir, read_sheet(exported, kind)).any


def test_errors_name_the_row_and_the_column() -> None:
    rows = [
        HEADERS,
        a_row(),
        a_row(**{"Код": "second", "Вопрос": "  "}),
        a_row(),  # the same code again
        ["", "", ""],  # an empty row is skipped
        a_row(**{"Код": "third", "Когда будет": "В мае."}),
    ]
    with pytest.raises(SpreadsheetError) as caught:
        read_sheet(csv_bytes(rows), "csv")
    assert [str(e) for e in caught.value.errors] == [
        "строка 3, столбец D (Вопрос): не заполнено",
        "строка 4, столбец A (Код): код «test-entry» уже есть в строке 2",
        "строка 6, столбец K (Когда будет): «Когда будет» без «Почему нельзя»",
    ]


def test_a_sheet_without_required_columns_or_with_unknown_ones_is_refused() -> None:
    rows = [["Код", "Вопрос", "Цвет", "Вопрос"], ["x", "y", "z", "w"]]
    with pytest.raises(SpreadsheetError) as caught:
        read_sheet(csv_bytes(rows), "csv")
    text = [str(e) for e in caught.value.errors]
    assert text[0] == "строка 1, столбец C (Цвет): неизвестный столбец"
    assert text[1] == "строка 1, столбец D (Вопрос): столбец повторяется"
    assert text[2].startswith("строка 1: нет столбцов: Тема, Жизненная ситуация, Краткий ответ")


def test_english_headers_any_order_and_semicolons_are_read() -> None:
    row = a_row()
    names = [f for f, _ in COLUMNS]
    text = ";".join(reversed(names)) + "\r\n" + ";".join(f'"{c}"' for c in reversed(row))
    (entry,) = read_sheet(text.encode("utf-8"), "csv")
    assert entry.id == "test-entry" and entry.phrasings == [
        "проверка таблицы",
        "таблица с ответами",
    ]


@pytest.mark.parametrize(
    "data, kind, message",
    [
        ("Код,Вопрос\r\n".encode("cp1251"), "csv", "не в кодировке UTF-8"),
        (b"PK\x03\x04 not really a zip", "xlsx", "не читается как XLSX"),
        (b"", "csv", "пустой файл"),
    ],
)
def test_unreadable_files_are_one_clear_error(data: bytes, kind: str, message: str) -> None:
    with pytest.raises(SpreadsheetError) as caught:
        read_sheet(data, kind)
    assert message in str(caught.value)


def test_formulas_are_never_run_and_come_back_as_written() -> None:
    risky = '=HYPERLINK("http://evil","жми")'
    row = a_row(**{"Краткий ответ": risky, "Полный ответ": "-1 день до срока. +7 900 000-00-00"})
    (entry,) = read_sheet(csv_bytes([HEADERS, row]), "csv")
    exported = write_csv([entry]).decode("utf-8-sig")
    assert "'=HYPERLINK" in exported and "'-1 день" in exported
    sheet = load_workbook(io.BytesIO(write_xlsx([entry]))).worksheets[0]
    cell = sheet.cell(row=2, column=HEADERS.index("Краткий ответ") + 1)
    assert cell.data_type == "s" and cell.value == risky
    for kind, data in (("csv", exported.encode()), ("xlsx", write_xlsx([entry]))):
        (back,) = read_sheet(data, kind)
        assert back.short_answer == risky


def test_a_typed_xlsx_from_a_spreadsheet_program_is_read(tmp_path: Path) -> None:
    """Numbers and empty cells as a spreadsheet program saves them."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADERS)
    sheet.append([*a_row()[:9], None, None])
    sheet.append([None] * len(HEADERS))
    out = io.BytesIO()
    book.save(out)
    (entry,) = read_sheet(out.getvalue(), "xlsx")
    assert entry.cannot_because is None and entry.synonyms == []


def test_cli_exports_imports_and_the_server_serves_the_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb_dir = tmp_path / "kb"
    monkeypatch.setenv("OTKLIK_KB_DIR", str(kb_dir))
    from core.config import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    sheet = tmp_path / "kb.xlsx"
    done = runner.invoke(app, ["kb", "export", str(sheet)])
    assert done.exit_code == 0, done.output
    server = KnowledgeBaseProvider(kb_dir)
    assert "test-entry" not in server.get().by_id

    entries = read_sheet(sheet.read_bytes(), "xlsx")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([HEADERS, a_row(**{"Отдел": ""})]))
    refused = runner.invoke(app, ["kb", "import", "--files", str(bad)])
    assert refused.exit_code == 2
    assert "bad.csv: строка 2, столбец I (Отдел): не заполнено" in refused.output
    assert not kb_dir.exists()  # nothing written

    good = tmp_path / "good.csv"
    good.write_bytes(write_csv([*entries, *read_sheet(csv_bytes([HEADERS, a_row()]), "csv")]))
    dry = runner.invoke(app, ["kb", "import", "--files", "--dry-run", str(good)])
    assert dry.exit_code == 0 and "1 would be added" in dry.output and not kb_dir.exists()
    done = runner.invoke(app, ["kb", "import", "--files", str(good)])
    assert done.exit_code == 0, done.output
    assert "1 were added, 0 changed, 0 removed" in done.output and "+ test-entry" in done.output
    assert "test-entry" in server.get().by_id  # the running server's next answer
    get_settings.cache_clear()


# -- the admin page ----------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def admin_client(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    settings = Settings(database_url=db_url, data_dir=tmp_path, secret_key="k" * 40)
    rt = build_runtime(settings)
    with session_scope(rt.factory) as session:
        for login, role in (("boss", Role.admin), ("anna", Role.operator)):
            session.add(Operator(login=login, display_name=login, role=role.value,
                                 password_hash=hash_password("long-password")))  # fmt: skip
    with TestClient(create_app(rt, start_scheduler=False)) as client:
        yield client, rt
    rt.dispose()


def log_in(client: TestClient, login: str) -> str:
    token = CSRF.search(client.get("/ui/login").text)
    assert token
    page = client.post(
        "/ui/login",
        data={"login": login, "password": "long-password", "csrf_token": token.group(1)},
    )
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def test_admin_downloads_the_sheet_and_uploads_it_back_with_errors_then_fixed(
    admin_client: tuple[TestClient, Runtime],
) -> None:
    client, rt = admin_client
    token = log_in(client, "boss")
    xlsx = client.get("/ui/admin/kb-sheet.xlsx")
    assert xlsx.status_code == 200 and "attachment" in xlsx.headers["content-disposition"]
    assert read_sheet(xlsx.content, "xlsx")[0].id == rt.kb.get().entries[0].id
    rows = list(
        csv.reader(io.StringIO(client.get("/ui/admin/kb-sheet.csv").content.decode("utf-8-sig")))
    )

    bad = [*rows, a_row(**{"Полный ответ": ""})]
    refused = client.post(
        "/ui/admin/kb-import", data={"csrf_token": token},
        files={"sheet": ("правки.csv", csv_bytes(bad), "text/csv")},
    )  # fmt: skip
    assert refused.status_code == 422
    assert f"строка {len(bad)}, столбец H (Полный ответ): не заполнено" in refused.text
    assert "test-entry" not in rt.kb.get().by_id

    done = client.post(
        "/ui/admin/kb-import", data={"csrf_token": token},
        files={"sheet": ("правки.csv", csv_bytes([*rows, a_row()]), "text/csv")},
    )  # fmt: skip
    # The import makes drafts (issue #13): published after another person's review.
    assert done.status_code == 200 and "черновиков новых записей 1, изменённых 0" in done.text
    assert "test-entry" not in rt.kb.get().by_id
    with rt.factory() as session:
        draft = session.exec(select(KBRevision).where(KBRevision.origin == "sheet")).one()
        assert (draft.entry_id, draft.status, draft.author) == ("test-entry", "draft", "boss")
        reviewer = Operator(login="head", display_name="head", role=Role.supervisor.value)
        session.add(reviewer)
        session.flush()
        approve(session, reviewer, draft.id, rt.clock.now(), None)
        session.commit()
    published(rt.kb)
    assert "test-entry" in rt.kb.get().by_id  # the bot answers with it from the next message
    with rt.factory() as session:
        kinds = [e.kind for e in session.exec(select(AuditEvent))]
    assert "kb_imported" in kinds


def test_only_admins_may_upload_with_a_valid_token_a_spreadsheet_of_sane_size(
    admin_client: tuple[TestClient, Runtime],
) -> None:
    client, rt = admin_client
    sheet = {"sheet": ("kb.csv", csv_bytes([HEADERS, a_row()]), "text/csv")}
    token = log_in(client, "anna")
    assert (
        client.post("/ui/admin/kb-import", data={"csrf_token": token}, files=sheet).status_code
        == 403
    )
    assert client.get("/ui/admin/kb-sheet.xlsx").status_code == 403
    client.cookies.clear()
    token = log_in(client, "boss")
    assert (
        client.post("/ui/admin/kb-import", data={"csrf_token": "forged"}, files=sheet).status_code
        == 403
    )
    wrong = client.post("/ui/admin/kb-import", data={"csrf_token": token},
                        files={"sheet": ("kb.exe", b"MZ", "application/octet-stream")})  # fmt: skip
    assert "Нужен файл .xlsx или .csv" in wrong.text
    huge = client.post(
        "/ui/admin/kb-import", data={"csrf_token": token},
        files={"sheet": ("kb.csv", b"x" * 5_000_001, "text/csv")},
    )  # fmt: skip
    assert huge.status_code in (200, 413) and "test-entry" not in rt.kb.get().by_id
    assert client.get("/ui/admin/kb-sheet.pdf").status_code == 404


def test_cli_export_has_the_published_versions_and_not_the_drafts(
    admin_client: tuple[TestClient, Runtime], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``otklik kb export`` writes what the bot answers with, as the UI's download does."""
    _, rt = admin_client
    from inbox.kb_workflow import save_draft

    changed = "Мебель вывозят по средам. Напишите нам адрес дома."
    with rt.factory() as session:
        author = session.exec(select(Operator).where(Operator.login == "boss")).one()
        reviewer = Operator(login="head", display_name="head", role=Role.supervisor.value)
        session.add(reviewer)
        session.flush()
        base = rt.kb.get().by_id["garbage-bulky"].model_dump()
        row = save_draft(session, rt.kb, author, {**base, "short_answer": changed}, rt.clock.now())
        assert row.id is not None
        approve(session, reviewer, row.id, rt.clock.now(), None)
        new = save_draft(session, rt.kb, author, {**base, "id": "draft-only"}, rt.clock.now())
        assert new.status == "draft"
        session.commit()
    published(rt.kb)
    monkeypatch.setenv("OTKLIK_DATABASE_URL", rt.settings.effective_database_url)
    monkeypatch.setenv("OTKLIK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OTKLIK_SECRET_KEY", "k" * 40)
    from core.config import get_settings

    get_settings.cache_clear()
    try:
        runner = CliRunner()
        sheet, files = tmp_path / "kb.csv", tmp_path / "files.csv"
        done = runner.invoke(app, ["kb", "export", str(sheet)])
        assert done.exit_code == 0, done.output
        assert "(1 published versions)" in done.output
        exported = {e.id: e for e in read_sheet(sheet.read_bytes(), "csv")}
        assert exported["garbage-bulky"].short_answer == changed
        assert "draft-only" not in exported  # drafts are never exported
        alone = runner.invoke(app, ["kb", "export", "--files-only", str(files)])
        assert alone.exit_code == 0, alone.output
        shipped_only = {e.id: e for e in read_sheet(files.read_bytes(), "csv")}
        assert shipped_only["garbage-bulky"].short_answer != changed
        assert set(shipped_only) == set(exported)
    finally:
        get_settings.cache_clear()


def test_cli_import_makes_drafts_by_the_author_for_review(
    admin_client: tuple[TestClient, Runtime], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``otklik kb import --author`` is the UI's upload on the command line: a draft of each new
    or changed row, by a named supervisor or administrator, answered only once another person
    publishes it; any error writes nothing and exits 2."""
    _, rt = admin_client
    for name, value in (("DATABASE_URL", rt.settings.effective_database_url),
                        ("DATA_DIR", str(tmp_path)), ("SECRET_KEY", "k" * 40)):  # fmt: skip
        monkeypatch.setenv(f"OTKLIK_{name}", value)
    from core.config import get_settings

    get_settings.cache_clear()

    def revisions() -> list[KBRevision]:
        with rt.factory() as session:
            return list(session.exec(select(KBRevision)).all())

    runner = CliRunner()
    try:
        sheet = tmp_path / "kb.csv"
        assert runner.invoke(app, ["kb", "export", str(sheet)]).exit_code == 0
        rows = list(csv.reader(io.StringIO(sheet.read_bytes().decode("utf-8-sig"))))
        short = rows[0].index("Краткий ответ")
        changed_id = rows[1][0]
        rows[1][short] = "Позвоните нам. Мы поможем в тот же день."
        good = tmp_path / "good.csv"
        good.write_bytes(csv_bytes([*rows, a_row()]))
        bad = tmp_path / "bad.csv"
        bad.write_bytes(csv_bytes([*rows, a_row(**{"Отдел": ""}), a_row(**{"Код": "x y"})]))

        with rt.factory() as session:  # a supervisor who has left: refused like an operator
            session.add(Operator(login="gone", display_name="gone",
                                 role=Role.supervisor.value, active=False))  # fmt: skip
            session.commit()
        for args, message in (
            ([str(good)], "give --author LOGIN"),
            (["--author", "boss", "--files", str(good)], "not both"),
            (["--author", "nobody", str(good)], "no staff user with the login «nobody»"),
            (["--author", "anna", str(good)], "старший оператор и администратор"),
            (["--author", "gone", str(good)], "старший оператор и администратор"),
        ):
            refused = runner.invoke(app, ["kb", "import", *args])
            assert refused.exit_code == 2 and message in refused.output, refused.output
        wrong = runner.invoke(app, ["kb", "import", "--author", "boss", str(bad)])
        assert wrong.exit_code == 2, wrong.output
        last = len(rows) + 1
        assert f"bad.csv: строка {last}, столбец I (Отдел): не заполнено" in wrong.output
        assert f"bad.csv: строка {last + 1}, столбец A (Код): код «x y»: только" in wrong.output
        dry = runner.invoke(app, ["kb", "import", "--author", "boss", "--dry-run", str(good)])
        assert dry.exit_code == 0 and "drafts would be made by boss: 1 new, 1 changed" in dry.output
        assert revisions() == []  # nothing written by a refusal or a dry run
        assert not (tmp_path / "knowledge_base").exists()  # and never the entry files

        done = runner.invoke(app, ["kb", "import", "--author", "boss", str(good)])
        assert done.exit_code == 0, done.output
        assert "drafts made by boss: 1 new, 1 changed, 0 brought back" in done.output
        assert f"~ {changed_id}" in done.output and "+ test-entry" in done.output
        made = {r.entry_id: r for r in revisions()}
        assert set(made) == {changed_id, "test-entry"}
        assert {(r.status, r.author, r.origin) for r in made.values()} == {
            ("draft", "boss", "sheet")
        }
        assert "test-entry" not in rt.kb.get().by_id  # not answered before review
        with rt.factory() as session:
            event = session.exec(select(AuditEvent).where(AuditEvent.kind == "kb_imported")).one()
            assert event.actor == "boss" and event.data["via"] == "cli"
            boss = session.exec(select(Operator).where(Operator.login == "boss")).one()
            own = made["test-entry"].id
            assert own is not None
            with pytest.raises(WorkflowError, match="автор не может"):
                approve(session, boss, own, rt.clock.now(), None)
            head = Operator(login="head", display_name="head", role=Role.supervisor.value)
            session.add(head)
            session.flush()
            approve(session, head, own, rt.clock.now(), None)
            session.commit()
        published(rt.kb)
        assert "test-entry" in rt.kb.get().by_id
        again = runner.invoke(app, ["kb", "import", "--author", "boss", str(good)])
        assert "0 new, 1 changed" in again.output  # the unpublished draft is not the answer yet
    finally:
        get_settings.cache_clear()
