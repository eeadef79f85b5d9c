"""KB authoring in the UI: write a draft, review it (four eyes), versions and their diff.

Supervisors and administrators write and review; an author never approves their own draft
(inbox/kb_workflow.py enforces it, whatever the form says). Publishing announces the new
version to every process, so the bot answers with it from the next message on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from core.bounded import DbId
from inbox import audit
from inbox.kb_workflow import (
    FIELD_TITLES,
    RETIRED,
    NotFound,
    WorkflowError,
    approve,
    create_draft,
    current_data,
    diff_versions,
    drafts,
    history,
    latest_published,
    open_revision,
    published,
    readability_failures,
    restore_draft,
    restore_version,
    retire_draft,
    retired_entries,
    return_draft,
    save_draft,
    shipped,
)
from inbox.models import KBRevision, Operator
from inbox.runtime import Runtime
from inbox.web.deps import RuntimeDep
from inbox.web.ui.resources import answer_texts, readability_bar
from inbox.web.ui.security import SupervisorDep, verify_csrf
from inbox.web.ui.templating import flash, render
from knowledge_base.merge import entry_data, unified_diff

router = APIRouter(dependencies=[Depends(verify_csrf)])

MAX_TEXT = 20_000


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _audit(rt: Runtime, me: Operator, kind: str, **data: Any) -> None:
    with rt.factory() as session:
        audit.record(session, kind, rt.clock.now(), operator_id=me.id, actor=me.login, **data)
        session.commit()


@router.get("/kb/review")
def review_page(request: Request, rt: RuntimeDep, me: SupervisorDep) -> Response:
    """The open drafts and conflicts, each with its diff against what the bot answers now;
    and the form of a new entry."""
    return _review(request, rt, me)


def _review(
    request: Request,
    rt: Runtime,
    me: Operator,
    new: dict[str, Any] | None = None,
    new_errors: list[str] | None = None,
) -> Response:
    bar = readability_bar(request)
    rows: list[dict[str, Any]] = []
    with rt.factory() as session:
        files = shipped(rt.kb)
        for row in drafts(session):
            live = latest_published(session, row.entry_id)
            now_data = dict(live.data) if live else (
                entry_data(files[row.entry_id]) if row.entry_id in files else None
            )  # fmt: skip
            if now_data is not None and now_data.get(RETIRED):
                now_data = None  # retired: the bot answers nothing with it now
            rows.append({
                "row": row,
                "diff": unified_diff(now_data, dict(row.data), "сейчас", "черновик"),
                "failures": readability_failures(row.data, bar),
                "mine": row.author_id == me.id,
            })  # fmt: skip
    entries = rt.kb.get().entries
    return render(
        request, "kb_review.html", me, section="kb_review", rows=rows, new=new or {},
        new_errors=new_errors or [], status_code=422 if new_errors else 200,
        topics=sorted({e.topic for e in entries}),
        situations=sorted({e.life_situation for e in entries}),
        departments=sorted({e.department for e in entries}),
    )  # fmt: skip


@router.post("/kb/new")
def new_entry(
    request: Request,
    rt: RuntimeDep,
    me: SupervisorDep,
    entry_id: Annotated[str, Form(max_length=200)] = "",
    topic: Annotated[str, Form(max_length=500)] = "",
    life_situation: Annotated[str, Form(max_length=500)] = "",
    department: Annotated[str, Form(max_length=500)] = "",
    question: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    phrasings: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    short_answer: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    full_answer: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    cannot_because: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    available_when: Annotated[str, Form(max_length=MAX_TEXT)] = "",
) -> Response:
    """The draft of a brand-new entry; every problem is listed above the form, which keeps
    what was typed. Published, like any draft, by another person."""
    data: dict[str, Any] = {
        "id": entry_id.strip(), "topic": topic.strip(), "life_situation": life_situation.strip(),
        "department": department.strip(), "question": question.strip(),
        "phrasings": [line.strip() for line in phrasings.splitlines() if line.strip()][:100],
        "short_answer": short_answer.strip(), "full_answer": full_answer.strip(),
        "cannot_because": cannot_because.strip() or None,
        "available_when": available_when.strip() or None,
    }  # fmt: skip
    errors: list[str] = []
    with rt.factory() as session:
        try:
            row = create_draft(session, rt.kb, me, data, rt.clock.now(), readability_bar(request))
            session.commit()
            row_id = row.id
        except WorkflowError as exc:
            errors = str(exc).splitlines()
    if errors:  # shown after the session is closed (on SQLite it holds the write lock)
        return _review(request, rt, me, new={**data, "phrasings": phrasings}, new_errors=errors)
    _audit(rt, me, "kb_draft_saved", entry=data["id"], revision=row_id, new=True)
    flash(request, f"Черновик новой записи «{data['id']}» сохранён, ответ появится после "
                   "проверки другим сотрудником.")  # fmt: skip
    return _redirect("/ui/kb/review")


@router.get("/kb/draft/{entry_id}")
def draft_page(request: Request, rt: RuntimeDep, me: SupervisorDep, entry_id: str) -> Response:
    with rt.factory() as session:
        data = current_data(session, rt.kb, entry_id)
        open_row = open_revision(session, entry_id)
    if data is None:
        raise HTTPException(404, detail="Нет такой записи базы знаний.")
    return render(
        request, "kb_draft.html", me, section="kb_review", data=data, entry_id=entry_id,
        open_row=open_row, titles=FIELD_TITLES,
    )  # fmt: skip


@router.post("/kb/draft/{entry_id}")
def draft_save(
    request: Request,
    rt: RuntimeDep,
    me: SupervisorDep,
    entry_id: str,
    question: Annotated[str, Form(max_length=MAX_TEXT)],
    short_answer: Annotated[str, Form(max_length=MAX_TEXT)],
    full_answer: Annotated[str, Form(max_length=MAX_TEXT)],
    cannot_because: Annotated[str | None, Form(max_length=MAX_TEXT)] = None,
    available_when: Annotated[str | None, Form(max_length=MAX_TEXT)] = None,
) -> Response:
    """Save the texts as a draft of ``entry_id`` (the other fields stay as they are)."""
    texts = answer_texts(question, short_answer, full_answer, cannot_because, available_when)

    def make(session: Session) -> KBRevision:
        data = current_data(session, rt.kb, entry_id)
        if data is None:
            raise HTTPException(404, detail="Нет такой записи базы знаний.")
        return save_draft(session, rt.kb, me, {**data, **texts}, rt.clock.now())

    return _draft_made(
        request, rt, me, entry_id, make, back=f"/ui/kb/draft/{entry_id}",
        done=f"Черновик записи «{entry_id}» сохранён. Бот ответит новым текстом, когда его "
        "проверит и опубликует другой сотрудник.",
    )  # fmt: skip


@router.post("/kb/retire/{entry_id}")
def retire(request: Request, rt: RuntimeDep, me: SupervisorDep, entry_id: str) -> Response:
    """A draft that withdraws the entry («снять с публикации»), reviewed like any draft."""
    return _draft_made(
        request, rt, me, entry_id,
        lambda session: retire_draft(session, rt.kb, me, entry_id, rt.clock.now()),
        back="/ui/kb/review", retire=True,
        done=f"Черновик «снять с публикации» для записи «{entry_id}» сохранён. Бот перестанет "
        "отвечать ею после проверки другим сотрудником.",
    )  # fmt: skip


@router.post("/kb/review/{revision_id}/approve")
def review_approve(
    request: Request, rt: RuntimeDep, me: SupervisorDep, revision_id: DbId
) -> Response:
    with rt.factory() as session:
        try:
            row = approve(session, me, revision_id, rt.clock.now(), readability_bar(request))
        except WorkflowError as exc:
            flash(request, f"Не опубликовано: {exc}", "error")
            return _redirect("/ui/kb/review")
        session.commit()
        entry_id, version = row.entry_id, row.version
    published(rt.kb)
    _audit(rt, me, "kb_published", entry=entry_id, revision=revision_id, version=version)
    flash(request, f"Запись «{entry_id}» опубликована (версия {version}). Бот уже отвечает "
                   "новым текстом.")  # fmt: skip
    return _redirect("/ui/kb/review")


@router.post("/kb/review/{revision_id}/return")
def review_return(
    request: Request,
    rt: RuntimeDep,
    me: SupervisorDep,
    revision_id: DbId,
    comment: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    with rt.factory() as session:
        try:
            row = return_draft(session, me, revision_id, rt.clock.now(), comment)
        except WorkflowError as exc:
            flash(request, f"Не возвращено: {exc}", "error")
            return _redirect("/ui/kb/review")
        session.commit()
        entry_id = row.entry_id
    _audit(rt, me, "kb_draft_returned", entry=entry_id, revision=revision_id)
    flash(request, f"Черновик «{entry_id}» возвращён автору с комментарием.")
    return _redirect("/ui/kb/review")


@router.get("/kb/history/{entry_id}")
def history_page(
    request: Request,
    rt: RuntimeDep,
    me: SupervisorDep,
    entry_id: str,
    old: DbId | None = None,
    new: DbId | None = None,
) -> Response:
    """The entry's versions; with ``old`` and ``new``, the diff of two (0: as shipped)."""
    diff: str | None = None
    with rt.factory() as session:
        rows: list[KBRevision] = history(session, entry_id)
        versions = [r.version for r in rows if r.status == "published" and r.version]
        if old is None and new is None and versions:
            old, new = (versions[-2] if len(versions) > 1 else 0), versions[-1]
        if old is not None and new is not None:
            try:
                diff = diff_versions(session, rt.kb, entry_id, old, new)
            except WorkflowError as exc:
                flash(request, str(exc), "error")
        in_files = entry_id in shipped(rt.kb)
    return render(
        request, "kb_history.html", me, section="kb_review", entry_id=entry_id, rows=rows,
        diff=diff, old=old, new=new, shipped=in_files, current=versions[-1] if versions else 0,
    )  # fmt: skip


@router.get("/kb/retired")
def retired_page(request: Request, rt: RuntimeDep, me: SupervisorDep) -> Response:
    """«Снятые с публикации»: who retired each entry, who approved it and when; «Вернуть»."""
    with rt.factory() as session:
        found = retired_entries(session)
    return render(request, "kb_retired.html", me, section="kb_review", entries=found)


def _draft_made(
    request: Request,
    rt: Runtime,
    me: Operator,
    entry_id: str,
    make: Callable[[Session], KBRevision],
    *,
    back: str,
    done: str,
    **audit_data: Any,
) -> Response:
    """``make`` a draft and commit, then what every such button does: a refusal shown back on
    ``back``, or the audit record, the ``done`` message and the review page (404 for an entry
    or version that does not exist)."""
    with rt.factory() as session:
        try:
            row = make(session)
        except NotFound as exc:
            raise HTTPException(404, detail=str(exc)) from None
        except WorkflowError as exc:
            flash(request, f"Не сохранено: {exc}", "error")
            return _redirect(back)
        session.commit()
        row_id = row.id
    _audit(rt, me, "kb_draft_saved", entry=entry_id, revision=row_id, **audit_data)
    flash(request, done)
    return _redirect("/ui/kb/review")


@router.post("/kb/restore/{entry_id}")
def restore(request: Request, rt: RuntimeDep, me: SupervisorDep, entry_id: str) -> Response:
    """A draft that brings a retired entry back, reviewed like any draft (four eyes)."""
    return _draft_made(
        request, rt, me, entry_id,
        lambda session: restore_draft(session, rt.kb, me, entry_id, rt.clock.now()),
        back="/ui/kb/retired", restore=True,
        done=f"Черновик «вернуть в публикацию» для записи «{entry_id}» сохранён. Бот снова "
        "ответит ею после проверки другим сотрудником.",
    )  # fmt: skip


@router.post("/kb/history/{entry_id}/restore/{version}")
def restore_version_draft(
    request: Request, rt: RuntimeDep, me: SupervisorDep, entry_id: str, version: DbId
) -> Response:
    """«Вернуть эту версию»: a draft with the content of a published version (0: as shipped),
    e.g. to undo a merge; reviewed like any draft."""
    return _draft_made(
        request, rt, me, entry_id,
        lambda session: restore_version(session, rt.kb, me, entry_id, version, rt.clock.now()),
        back=f"/ui/kb/history/{quote(entry_id, safe='')}", from_version=version,
        done=f"Черновик с текстом версии {version} записи «{entry_id}» сохранён. Бот ответит "
        "им после проверки другим сотрудником.",
    )  # fmt: skip
