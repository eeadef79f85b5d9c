"""Administration: agency profile, response rules, operators, readability bar, KB entries.

Data files are validated by the same loaders the app uses before anything is written, so an
invalid file is rejected with the loader's own error (which names the file and the field).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from core.bounded import DbId
from inbox import audit, operators, throttle
from inbox.demo_accounts import demo_passwords_in_use
from inbox.kb_workflow import (
    SheetDrafts,
    WorkflowError,
    current_data,
    import_drafts,
    open_revision,
    save_draft,
)
from inbox.models import Operator, Role
from inbox.runtime import Runtime
from inbox.web.deps import RuntimeDep
from inbox.web.ui.resources import answer_texts, readability_bar, save_bar
from inbox.web.ui.security import ROLE_RANK, AdminDep, SupervisorDep, verify_csrf
from inbox.web.ui.templating import flash, render
from knowledge_base.datafile import DataFileError
from knowledge_base.entries import KBEntry, KBLoadError
from knowledge_base.readability import ReadabilityBar, check_text
from knowledge_base.spreadsheet import (
    SpreadsheetError,
    read_sheet,
    sheet_kind,
    write_csv,
    write_xlsx,
)
from knowledge_base.store import write_atomically
from rules.engine import ResponseRules
from rules.errors import RulesFileError
from rules.profile import load_profile

router = APIRouter(dependencies=[Depends(verify_csrf)])


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _check_yaml(text: str, real: Path, load: object) -> str | None:
    """Validate ``text`` as the file ``real`` with ``load(dir)`` in a scratch copy; the error."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for sibling in real.parent.glob("*.yaml"):
            shutil.copy(sibling, folder / sibling.name)
        (folder / real.name).write_text(text, encoding="utf-8")
        try:
            load(folder / real.name)  # type: ignore[operator]
        except RulesFileError as exc:
            return str(exc).replace(str(folder / real.name), real.name).replace(scratch, "")
        except RecursionError:
            return f"{real.name}: вложенность слишком глубокая"
    return None


def _audit(rt: Runtime, me: Operator, kind: str, **data: Any) -> None:
    with rt.factory() as session:
        audit.record(session, kind, rt.clock.now(), operator_id=me.id, actor=me.login, **data)
        session.commit()


# -- agency profile and rules ---------------------------------------------------------------


@router.get("/admin")
def admin_home(request: Request, me: AdminDep) -> Response:
    return _redirect("/ui/admin/operators")


def _yaml_page(
    request: Request,
    me: Operator,
    section: str,
    path: Path,
    text: str | None = None,
    error: str | None = None,
) -> Response:
    return render(
        request, "admin_yaml.html", me, section=section, title=YAML_TITLES[section],
        path=path.name, text=path.read_text(encoding="utf-8") if text is None else text,
        error=error, status_code=422 if error else 200,
    )  # fmt: skip


YAML_TITLES = {"profile": "Профиль ведомства", "rules": "Правила и сроки ответа"}


@router.get("/admin/profile")
def profile_page(request: Request, rt: RuntimeDep, me: AdminDep) -> Response:
    return _yaml_page(request, me, "profile", rt.settings.profile)


@router.post("/admin/profile")
def profile_save(
    request: Request, rt: RuntimeDep, me: AdminDep, text: Annotated[str, Form()]
) -> Response:
    path = rt.settings.profile
    error = _check_yaml(text, path, load_profile)
    if error:
        return _yaml_page(request, me, "profile", path, text, error)
    write_atomically(path, text)  # workers reading it see the old file or the new one
    rt.profile_source.reload()
    _audit(rt, me, "profile_changed", file=path.name)
    flash(request, "Профиль сохранён и применён.")
    return _redirect("/ui/admin/profile")


@router.get("/admin/rules")
def rules_page(request: Request, rt: RuntimeDep, me: AdminDep) -> Response:
    return _yaml_page(request, me, "rules", rt.settings.rules_dir / "response.yaml")


@router.post("/admin/rules")
def rules_save(
    request: Request, rt: RuntimeDep, me: AdminDep, text: Annotated[str, Form()]
) -> Response:
    path = rt.settings.rules_dir / "response.yaml"
    error = _check_yaml(text, path, lambda p: ResponseRules.load(p.parent))
    if error:
        return _yaml_page(request, me, "rules", path, text, error)
    write_atomically(path, text)  # workers reading it see the old file or the new one
    rt.rules_source.reload()
    _audit(rt, me, "rules_changed", file=path.name)
    flash(request, "Правила сохранены и применены к новым сообщениям.")
    return _redirect("/ui/admin/rules")


# -- operators ------------------------------------------------------------------------------


@router.get("/admin/operators")
def operators_page(request: Request, rt: RuntimeDep, me: AdminDep) -> Response:
    now = rt.clock.now()
    with rt.factory() as session:
        staff = session.exec(select(Operator).order_by(col(Operator.login))).all()
        locked = {
            o.login: until
            for o in staff
            if (until := throttle.active_lock(session, [_login_subject(o.login)], now))
        }
        demo = demo_passwords_in_use(session)
        addresses = throttle.locked_addresses(session, now)
    return render(
        request, "admin_operators.html", me, section="operators", operators=staff,
        roles=list(ROLE_RANK), flash=request.session.pop("flash", None), locked=locked,
        demo=demo, locked_addresses=addresses,
    )  # fmt: skip


def _operator(session: Session, operator_id: int) -> Operator:
    operator = session.get(Operator, operator_id)
    if operator is None:
        raise HTTPException(404, detail="Оператор не найден.")
    return operator


def _login_subject(login: str) -> throttle.Subject:
    return throttle.Subject(throttle.LOGIN, login[: throttle.KEY_LENGTH], 0)


@router.post("/admin/operators")
def operator_create(
    request: Request,
    rt: RuntimeDep,
    me: AdminDep,
    login: Annotated[str, Form()],
    display_name: Annotated[str, Form()],
    role: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    with rt.factory() as session:
        try:
            operator = operators.create(session, login, display_name, role, password)
        except operators.AccountError as exc:
            flash(request, f"Оператор не создан: {exc}", "error")
            return _redirect("/ui/admin/operators")
        login = operator.login
        session.commit()
    _audit(rt, me, "operator_created", login=login, role=role)
    flash(request, f"Оператор «{login}» создан.")
    return _redirect("/ui/admin/operators")


@router.post("/admin/operators/{operator_id}")
def operator_update(
    request: Request,
    rt: RuntimeDep,
    me: AdminDep,
    operator_id: DbId,
    role: Annotated[str, Form()],
    active: Annotated[str, Form()] = "",
) -> Response:
    if role not in ROLE_RANK:
        raise HTTPException(422, detail="Неизвестная роль.")
    is_active = active == "on"
    if operator_id == me.id and (not is_active or role != Role.admin.value):
        flash(request, "Нельзя отключить себя или снять с себя роль администратора.", "error")
        return _redirect("/ui/admin/operators")
    with rt.factory() as session:
        operator = _operator(session, operator_id)
        operator.role = role
        operator.active = is_active
        login = operator.login
        session.commit()
    _audit(rt, me, "operator_changed", login=login, role=role, active=is_active)
    flash(request, f"Оператор «{login}» изменён.")
    return _redirect("/ui/admin/operators")


@router.post("/admin/operators/{operator_id}/password")
def operator_password_reset(
    request: Request,
    rt: RuntimeDep,
    me: AdminDep,
    operator_id: DbId,
    password: Annotated[str, Form()],
) -> Response:
    """Set a new password (an operator forgot theirs): their sessions end, any login lock on
    their name is lifted."""
    with rt.factory() as session:
        operator = _operator(session, operator_id)
        login = operator.login
        try:
            operators.set_password(session, operator, password, rt.clock.now())
        except operators.AccountError as exc:
            flash(request, f"Пароль не изменён: {exc}", "error")
            return _redirect("/ui/admin/operators")
        session.commit()
    _audit(rt, me, "operator_password_reset", login=login)
    flash(request, f"Пароль сотрудника «{login}» изменён, его сеансы завершены.")
    return _redirect("/ui/admin/operators")


@router.post("/admin/operators/{operator_id}/unlock")
def operator_unlock(request: Request, rt: RuntimeDep, me: AdminDep, operator_id: DbId) -> Response:
    """Lift the lock that failed logins put on this login name (someone guessed at it)."""
    with rt.factory() as session:
        operator = _operator(session, operator_id)
        login = operator.login
        throttle.clear_login(session, login)
        session.commit()
    _audit(rt, me, "login_unlocked", login=login)
    flash(request, f"Вход для «{login}» разблокирован.")
    return _redirect("/ui/admin/operators")


@router.post("/admin/addresses/unlock")
def address_unlock(
    request: Request, rt: RuntimeDep, me: AdminDep, address: Annotated[str, Form(max_length=255)]
) -> Response:
    """Lift the lock that failed logins put on a client address (an office behind one NAT
    where someone mistyped too often, say)."""
    address = address.strip()
    with rt.factory() as session:
        had = throttle.clear_address(session, address)
        session.commit()
    if not had:
        flash(request, f"Адрес «{address}» не заблокирован.", "error")
        return _redirect("/ui/admin/operators")
    _audit(rt, me, "address_unlocked", address=address)
    flash(request, f"Вход с адреса «{address}» разблокирован.")
    return _redirect("/ui/admin/operators")


# -- readability bar (supervisors) ----------------------------------------------------------


@router.get("/settings/readability")
def bar_page(request: Request, me: SupervisorDep) -> Response:
    return render(
        request, "admin_bar.html", me, section="bar", bar=readability_bar(request),
    )  # fmt: skip


@router.post("/settings/readability")
def bar_save(
    request: Request,
    rt: RuntimeDep,
    me: SupervisorDep,
    max_grade: Annotated[float, Form()],
    max_kantselyarit_per_100_words: Annotated[float, Form()],
    max_sentence_words: Annotated[int, Form()],
) -> Response:
    current = readability_bar(request)
    try:
        bar = ReadabilityBar.model_validate(
            {**current.model_dump(), "max_grade": max_grade,
             "max_kantselyarit_per_100_words": max_kantselyarit_per_100_words,
             "max_sentence_words": max_sentence_words}
        )  # fmt: skip
    except ValidationError as exc:
        flash(request, f"Порог не сохранён: {exc.errors()[0]['msg']}", "error")
        return _redirect("/ui/settings/readability")
    if bar.max_grade <= 0 or bar.max_sentence_words <= 0:
        flash(request, "Порог не сохранён: значения должны быть больше нуля.", "error")
        return _redirect("/ui/settings/readability")
    save_bar(request, bar)
    _audit(rt, me, "readability_bar_changed", **bar.model_dump(include={"max_grade"}))
    flash(request, "Порог читаемости сохранён.")
    return _redirect("/ui/settings/readability")


# -- knowledge base ---------------------------------------------------------------------------
#
# The UI never writes the entry files: an edit here, on «Проверка базы» or from a spreadsheet
# is a draft in the database (inbox/kb_workflow.py), and the bot answers with it once another
# person publishes it. The shipped files stay the base, so upgrades reach the agency
# (``otklik kb merge`` brings them to the entries it changed).


@router.get("/admin/kb")
def kb_page(request: Request, rt: RuntimeDep, me: AdminDep) -> Response:
    kb_dir = rt.kb.kb_dir
    return render(
        request, "admin_kb.html", me, section="kb", entries=rt.kb.get().entries,
        kb_dir=kb_dir, own_copy=kb_dir is not None and rt.kb.entries_dir == kb_dir,
    )  # fmt: skip


@router.get("/admin/kb-sheet.{kind}")
def kb_sheet(rt: RuntimeDep, me: AdminDep, kind: str) -> Response:
    """The knowledge base as a spreadsheet (``kind``: xlsx or csv), to edit and import back."""
    if kind not in ("xlsx", "csv"):
        raise HTTPException(404)
    entries = rt.kb.get().entries
    if kind == "xlsx":
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return Response(write_xlsx(entries), media_type=media, headers=_attachment("kb.xlsx"))
    return Response(write_csv(entries), media_type="text/csv; charset=utf-8",
                    headers=_attachment("kb.csv"))  # fmt: skip


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}


@router.post("/admin/kb-import")
async def kb_import(
    request: Request, rt: RuntimeDep, me: AdminDep, sheet: Annotated[UploadFile, File()]
) -> Response:
    """Drafts of the entries the uploaded sheet adds or changes, after every row is checked;
    the errors, each with its row and column, are shown instead when there are any."""
    data = await sheet.read(MAX_SHEET_BYTES + 1)
    try:
        if len(data) > MAX_SHEET_BYTES:
            raise ValueError(f"файл больше {MAX_SHEET_BYTES // 1_000_000} МБ")
        kind = sheet_kind(sheet.filename or "")
        entries = await asyncio.to_thread(read_sheet, data, kind)
    except SpreadsheetError as exc:
        return render(
            request, "admin_kb.html", me, section="kb", entries=rt.kb.get().entries,
            kb_dir=rt.kb.kb_dir, own_copy=rt.kb.entries_dir == rt.kb.kb_dir,
            sheet_errors=exc.errors, sheet_name=sheet.filename, status_code=422,
        )  # fmt: skip
    except ValueError as exc:
        flash(request, f"Не загружено: {exc}. Нужен файл .xlsx или .csv.", "error")
        return _redirect("/ui/admin/kb")

    try:
        made = await asyncio.to_thread(_sheet_drafts, rt, me, entries)
    except (KBLoadError, DataFileError, WorkflowError) as exc:
        flash(request, f"Не загружено: {exc}", "error")
        return _redirect("/ui/admin/kb")
    _audit(rt, me, "kb_imported", file=sheet.filename, added=len(made.added),
           changed=len(made.changed), restored=len(made.restored),
           missing=len(made.missing))  # fmt: skip
    back = f", возвращаемых в публикацию {len(made.restored)}" if made.restored else ""
    flash(request, f"Таблица загружена: черновиков новых записей {len(made.added)}, изменённых "
                   f"{len(made.changed)}{back}. Бот ответит по ним, когда их проверит и "
                   "опубликует другой сотрудник (раздел «Проверка базы»). Записи, которых нет в "
                   f"таблице ({len(made.missing)}), не удалены.")  # fmt: skip
    return _redirect("/ui/admin/kb")


def _sheet_drafts(rt: Runtime, me: Operator, entries: list[KBEntry]) -> SheetDrafts:
    """Spreadsheet rows become drafts (inbox/kb_workflow.py), never published at once."""
    with rt.factory() as session:
        made = import_drafts(session, rt.kb, me, entries, rt.clock.now())
        session.commit()
    return made


MAX_SHEET_BYTES = 5_000_000
MAX_TEXT = 20_000


@router.get("/admin/kb/{entry_id}")
def kb_entry_page(request: Request, rt: RuntimeDep, me: AdminDep, entry_id: str) -> Response:
    """The entry as an editor starts from it: its open draft, else what the bot answers now."""
    with rt.factory() as session:
        try:
            data = current_data(session, rt.kb, entry_id)
        except (KBLoadError, DataFileError) as exc:
            flash(request, f"Запись не открыть: {exc}", "error")
            return _redirect("/ui/admin/kb")
        pending = open_revision(session, entry_id)
    if data is None:
        raise HTTPException(404, detail="Нет такой записи базы знаний.")
    entry = KBEntry.model_validate(data)
    bar = readability_bar(request)
    return render(
        request, "admin_kb_entry.html", me, section="kb", entry=entry, pending=pending,
        short_report=check_text(entry.short_answer, bar),
        full_report=check_text(entry.full_answer, bar),
        why_report=check_text(entry.cannot_because, bar) if entry.cannot_because else None,
        when_report=check_text(entry.available_when, bar) if entry.available_when else None,
    )  # fmt: skip


#: Shown after an edit: the bot keeps its answer until another person publishes the draft.
DRAFT_SAVED = "Черновик сохранён, ответ изменится после проверки."
REVIEW_LINK = ("/ui/kb/review", "Проверка базы")


@router.post("/admin/kb/{entry_id}")
def kb_entry_save(
    request: Request,
    rt: RuntimeDep,
    me: AdminDep,
    entry_id: str,
    question: Annotated[str, Form(max_length=MAX_TEXT)],
    short_answer: Annotated[str, Form(max_length=MAX_TEXT)],
    full_answer: Annotated[str, Form(max_length=MAX_TEXT)],
    why_when: Annotated[bool, Form()] = False,
    cannot_because: Annotated[str | None, Form(max_length=MAX_TEXT)] = None,
    available_when: Annotated[str | None, Form(max_length=MAX_TEXT)] = None,
) -> Response:
    """Save the answer texts as a draft (inbox/kb_workflow.py); nothing is written to files.

    The bot answers with the new text once another supervisor or administrator publishes the
    draft on «Проверка базы» (four eyes, readability checked there). «Почему нельзя» and
    «когда будет» are taken when the form has them (``why_when``: the page's form does; a
    blank field clears it); «когда» without «почему» is refused, as ``otklik kb check`` does.
    """
    texts = answer_texts(question, short_answer, full_answer, cannot_because, available_when)
    if not why_when:
        del texts["cannot_because"], texts["available_when"]
    with rt.factory() as session:
        try:
            data = current_data(session, rt.kb, entry_id)
            if data is None:
                raise HTTPException(404, detail="Нет такой записи базы знаний.")
            row = save_draft(session, rt.kb, me, {**data, **texts}, rt.clock.now(), origin="admin")
        except WorkflowError as exc:
            flash(request, f"Не сохранено: {exc}", "error")
            return _redirect(f"/ui/admin/kb/{entry_id}")
        except (KBLoadError, DataFileError) as exc:  # a hand-edited file of the base is broken
            flash(request, f"Не сохранено: {exc}", "error")
            return _redirect("/ui/admin/kb")
        session.commit()
        revision = row.id
    _audit(rt, me, "kb_draft_saved", entry=entry_id, revision=revision)
    flash(request, f"{DRAFT_SAVED} Запись «{entry_id}».", link=REVIEW_LINK)
    return _redirect(f"/ui/admin/kb/{entry_id}")
