"""KB authoring: drafts, four-eyes review, published versions and the merge of shipped upgrades.

Why the database. The shipped entries are files of the package and are replaced by every
upgrade; the agency's versions must outlive upgrades, carry who wrote and who approved them,
keep every published version, and be shared by all server processes. A table (``kb_revision``)
gives all of it with the backups the agency already makes of its database, and the rows of one
entry are its history. The files stay the shipped base; the published rows are laid over them
(``knowledge_base.store.Overlay``), so the bot, the phone robot and the suggestions answer with
published text only: a draft is never seen by a citizen.

The life of a row: an editor (supervisor or administrator) saves an entry → ``draft``, the
author recorded; another supervisor or administrator (never the author: four eyes) approves
it → ``published`` with a version number, the approver and the time, once the readability
check passes; or returns it with a comment → ``returned``. Saving again replaces the open
draft of the entry (``discarded``). ``merge_shipped`` (``otklik kb merge``) brings changes of
the shipped entries to the overrides: clean merges are published, conflicts become a
``conflict`` row for a person to resolve in the UI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select

from inbox.db import READ_ONLY
from inbox.models import KBRevision, Operator, Role
from knowledge_base.entries import ENTRY_ID, MAX_ID, KBEntry, load_entries
from knowledge_base.merge import EntryMerge, content_hash, entry_data, merge_entry, unified_diff
from knowledge_base.readability import ReadabilityBar, check_text
from knowledge_base.store import RETIRED, KnowledgeBaseProvider

#: Who may write drafts and review them.
EDITORS = (Role.supervisor.value, Role.admin.value)
OPEN = ("draft", "returned", "conflict")
#: The author and reviewer of what ``otklik kb merge`` publishes by itself.
MERGE_ACTOR = "otklik kb merge"
#: Fields whose text a citizen reads: the readability check must pass before publishing.
READ_FIELDS = ("short_answer", "full_answer", "cannot_because", "available_when")
FIELD_TITLES = {
    "question": "Вопрос", "short_answer": "Короткий ответ", "full_answer": "Полный ответ",
    "cannot_because": "Почему нельзя сейчас", "available_when": "Когда будет",
}  # fmt: skip


class WorkflowError(ValueError):
    """Refused, with the reason in Russian (shown to the person as is)."""


class Forbidden(WorkflowError):
    pass


class NotFound(WorkflowError):
    """No such entry or version (the UI answers 404)."""


# -- reading --------------------------------------------------------------------------------


def shipped(provider: KnowledgeBaseProvider) -> dict[str, KBEntry]:
    """The entries of the files (the package's, or an agency's legacy copy of them)."""
    return {entry.id: entry for entry in load_entries(provider.entries_dir)}


def latest_published(session: Session, entry_id: str) -> KBRevision | None:
    return session.exec(
        select(KBRevision)
        .where(KBRevision.entry_id == entry_id, KBRevision.status == "published")
        .order_by(col(KBRevision.version).desc())
        .limit(1)
    ).first()


def open_revision(session: Session, entry_id: str) -> KBRevision | None:
    return session.exec(
        select(KBRevision)
        .where(KBRevision.entry_id == entry_id, col(KBRevision.status).in_(OPEN))
        .order_by(col(KBRevision.id).desc())
        .limit(1)
    ).first()


def published_items(session: Session) -> list[dict[str, Any]]:
    """The newest published version of each entry (what the bot answers with)."""
    return [dict(row.data) for row in newest_published(session)]


def newest_published(session: Session) -> list[KBRevision]:
    """The newest published row of each entry, oldest row first."""
    newest = (
        select(KBRevision.entry_id, func.max(KBRevision.version).label("v"))
        .where(KBRevision.status == "published")
        .group_by(KBRevision.entry_id)
        .subquery()
    )
    rows = session.exec(
        select(KBRevision)
        .join(
            newest,
            (col(KBRevision.entry_id) == newest.c.entry_id)
            & (col(KBRevision.version) == newest.c.v),
        )
        .where(KBRevision.status == "published")
        .order_by(col(KBRevision.id))
    ).all()
    return list(rows)


def history(session: Session, entry_id: str) -> list[KBRevision]:
    """Every row of the entry, oldest first (published versions and drafts)."""
    return list(
        session.exec(
            select(KBRevision).where(KBRevision.entry_id == entry_id).order_by(col(KBRevision.id))
        ).all()
    )


def version_data(
    session: Session, provider: KnowledgeBaseProvider, entry_id: str, version: int
) -> dict[str, Any] | None:
    """Published version ``version`` of the entry; 0 is the entry as shipped now."""
    if version == 0:
        entry = shipped(provider).get(entry_id)
        return entry_data(entry) if entry else None
    row = session.exec(
        select(KBRevision).where(
            KBRevision.entry_id == entry_id,
            KBRevision.status == "published",
            KBRevision.version == version,
        )
    ).first()
    return dict(row.data) if row else None


def diff_versions(
    session: Session, provider: KnowledgeBaseProvider, entry_id: str, old: int, new: int
) -> str:
    a, b = (version_data(session, provider, entry_id, v) for v in (old, new))
    for number, data in ((old, a), (new, b)):
        if data is None:
            raise WorkflowError(f"У записи «{entry_id}» нет версии {number}.")
    return unified_diff(a, b, f"{entry_id} v{old}", f"{entry_id} v{new}")


class DatabaseOverlay:
    """``knowledge_base.store.Overlay`` over ``kb_revision``: the published versions.

    Its key is a stamp file's modification time, not a query: the provider checks it before
    answering, and on SQLite every transaction takes the write lock. Whatever publishes calls
    ``changed()`` after its commit (``published``); processes sharing the data directory see
    the new stamp within a second.
    """

    def __init__(self, factory: Any, stamp: Path | None = None) -> None:
        self._factory = factory
        self.stamp = stamp

    def key(self) -> object:
        if self.stamp is None:
            return None
        try:
            return self.stamp.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def entries(self) -> list[dict[str, Any]]:
        if self.stamp is not None and not self.stamp.exists():
            return []  # nothing was ever published: no need to ask the database
        with self._factory() as session:
            session.connection(execution_options=READ_ONLY)  # never waits for a writer
            return published_items(session)

    def changed(self) -> None:
        if self.stamp is not None:
            self.stamp.parent.mkdir(parents=True, exist_ok=True)
            self.stamp.write_text(str(time.time_ns()), encoding="utf-8")


def published(provider: KnowledgeBaseProvider) -> None:
    """After a commit that published something: every process answers with it from now on."""
    if isinstance(provider.overlay, DatabaseOverlay):
        provider.overlay.changed()
    provider.reload()


# -- writing --------------------------------------------------------------------------------


def _require_editor(me: Operator) -> None:
    if me.role not in EDITORS or not me.active:
        raise Forbidden(
            "Писать и проверять записи базы знаний могут старший оператор и администратор."
        )


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The entry's fields checked by the schema (the error names the field, in Russian)."""
    try:
        return entry_data(KBEntry.model_validate(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise WorkflowError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from exc


def current_data(
    session: Session, provider: KnowledgeBaseProvider, entry_id: str
) -> dict[str, Any] | None:
    """What an editor starts from: the open draft, else the published version, else shipped."""
    row = open_revision(session, entry_id) or latest_published(session, entry_id)
    if row is not None:
        return dict(row.data)
    entry = shipped(provider).get(entry_id)
    return entry_data(entry) if entry else None


def save_draft(
    session: Session,
    provider: KnowledgeBaseProvider,
    me: Operator,
    data: dict[str, Any],
    now: datetime,
    *,
    origin: str = "ui",
) -> KBRevision:
    """A new draft of ``data['id']`` by ``me``; an open draft of the entry is replaced.

    The draft remembers the shipped version it is based on: that of the conflict it resolves,
    else that of the published override it edits, else the entry as shipped now.
    """
    _require_editor(me)
    clean = validate(data)
    if clean.get("available_when") and not clean.get("cannot_because"):
        raise WorkflowError("сначала напишите, почему нельзя сейчас, потом — когда будет.")
    entry_id = clean["id"]
    base_from = open_revision(session, entry_id)
    if (base_from is not None and base_from.status != "conflict") or base_from is None:
        base_from = latest_published(session, entry_id)
    if base_from is not None:
        base_data, base_hash = base_from.base_data, base_from.base_hash
    else:
        entry = shipped(provider).get(entry_id)
        base_data = entry_data(entry) if entry else None
        base_hash = content_hash(base_data) if base_data else None
    for row in session.exec(
        select(KBRevision).where(KBRevision.entry_id == entry_id, col(KBRevision.status).in_(OPEN))
    ).all():
        row.status = "discarded"
        session.add(row)
    revision = KBRevision(
        entry_id=entry_id, status="draft", data=clean, base_data=base_data, base_hash=base_hash,
        author_id=me.id, author=me.login, created_at=now, origin=origin,
    )  # fmt: skip
    session.add(revision)
    session.flush()
    return revision


def new_entry_errors(
    session: Session,
    provider: KnowledgeBaseProvider,
    data: dict[str, Any],
    bar: ReadabilityBar | None,
) -> list[str]:
    """Why ``data`` cannot become the draft of a new entry (empty: it can), in Russian, each
    naming the field: a malformed or taken id, an empty required field, hard-to-read text."""
    errors: list[str] = []
    entry_id = str(data.get("id") or "")
    if not entry_id:
        errors.append("Код записи: заполните.")
    elif len(entry_id) > MAX_ID or not ENTRY_ID.fullmatch(entry_id):
        errors.append(
            f"Код записи: только строчные латинские буквы, цифры и дефис, до {MAX_ID} знаков "
            "(например, garbage-new-year-tree)."
        )
    elif (
        entry_id in shipped(provider)
        or latest_published(session, entry_id) is not None
        or open_revision(session, entry_id) is not None
    ):
        errors.append(f"Код записи: запись «{entry_id}» уже есть — откройте её и правьте там.")
    titles = {**FIELD_TITLES, "topic": "Тема", "life_situation": "Жизненная ситуация",
              "department": "Отдел"}  # fmt: skip
    for name in ("topic", "life_situation", "department", "question", "short_answer",
                 "full_answer"):  # fmt: skip
        if not str(data.get(name) or "").strip():
            errors.append(f"{titles[name]}: заполните.")
    if data.get("available_when") and not data.get("cannot_because"):
        errors.append("Когда будет: сначала напишите, почему нельзя сейчас.")
    errors.extend(readability_failures(data, bar))
    return errors


def create_draft(
    session: Session,
    provider: KnowledgeBaseProvider,
    me: Operator,
    data: dict[str, Any],
    now: datetime,
    bar: ReadabilityBar | None,
) -> KBRevision:
    """The draft of a brand-new entry; ``WorkflowError`` lists every problem at once."""
    _require_editor(me)
    errors = new_entry_errors(session, provider, data, bar)
    if errors:
        raise WorkflowError("\n".join(errors))
    return save_draft(session, provider, me, data, now, origin="new")


def retire_draft(
    session: Session, provider: KnowledgeBaseProvider, me: Operator, entry_id: str, now: datetime
) -> KBRevision:
    """A draft that withdraws the entry («снять с публикации»): once another person approves
    it, the bot, the phone robot and the suggestions no longer know the entry. Its text is
    kept in the row, so a later draft of the entry (saved from the draft page) brings it back.
    """
    _require_editor(me)
    data = current_data(session, provider, entry_id)
    if data is None:
        raise WorkflowError("Нет такой записи базы знаний.")
    if data.get(RETIRED):
        raise WorkflowError("Эта запись уже снята с публикации.")
    row = save_draft(session, provider, me, data, now, origin="retire")
    row.data = {**row.data, RETIRED: True}
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class RetiredEntry:
    """An entry withdrawn from publishing: who asked for it, who approved it, and when."""

    entry_id: str
    question: str
    #: The author of the draft that withdrew it, and the person who published that draft.
    retired_by: str
    approved_by: str | None
    retired_at: datetime | None
    version: int | None
    #: An open draft of the entry (e.g. its return, waiting for review), if any.
    pending: KBRevision | None


def retired_entries(session: Session) -> list[RetiredEntry]:
    """Every entry whose newest published version withdraws it, the latest withdrawn first."""
    waiting = {row.entry_id: row for row in drafts(session)}
    found: list[RetiredEntry] = []
    for row in newest_published(session):
        if row.data.get(RETIRED):
            found.append(RetiredEntry(
                entry_id=row.entry_id, question=str(row.data.get("question") or ""),
                retired_by=row.author, approved_by=row.reviewer, retired_at=row.reviewed_at,
                version=row.version, pending=waiting.get(row.entry_id),
            ))  # fmt: skip
    return sorted(
        found, key=lambda item: item.retired_at.timestamp() if item.retired_at else 0.0,
        reverse=True,
    )  # fmt: skip


def restore_draft(
    session: Session, provider: KnowledgeBaseProvider, me: Operator, entry_id: str, now: datetime
) -> KBRevision:
    """A draft that brings a retired entry back («Вернуть») with the text it had when it was
    withdrawn; reviewed like any draft (four eyes), the bot answers with it once published."""
    _require_editor(me)
    row = latest_published(session, entry_id)
    if row is None or not row.data.get(RETIRED):
        if row is None and entry_id not in shipped(provider):
            raise NotFound("Нет такой записи базы знаний.")
        raise WorkflowError(
            f"Запись «{entry_id}» не снята с публикации: бот отвечает ею, возвращать нечего."
        )
    data = {name: value for name, value in row.data.items() if name != RETIRED}
    return save_draft(session, provider, me, data, now, origin="restore")


def restore_version(
    session: Session,
    provider: KnowledgeBaseProvider,
    me: Operator,
    entry_id: str,
    version: int,
    now: datetime,
) -> KBRevision:
    """A draft with the content of published ``version`` of the entry (0: as shipped now),
    e.g. to undo a merge or a publish; reviewed like any draft."""
    _require_editor(me)
    data = version_data(session, provider, entry_id, version)
    if data is None:
        raise NotFound(f"У записи «{entry_id}» нет версии {version}.")
    if data.get(RETIRED):
        raise WorkflowError(
            f"Версия {version} снимала запись с публикации. Чтобы снять её снова, нажмите "
            "«Снять с публикации» на странице записи."
        )
    live = latest_published(session, entry_id)
    now_data = dict(live.data) if live else version_data(session, provider, entry_id, 0)
    if now_data and not now_data.get(RETIRED) and content_hash(now_data) == content_hash(data):
        raise WorkflowError(f"Бот уже отвечает текстом версии {version}: возвращать нечего.")
    return save_draft(session, provider, me, data, now, origin="version")


@dataclass
class SheetDrafts:
    """What a spreadsheet import made: drafts of new and changed entries; the rest is as is."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    #: Retired entries the sheet has a row of: a draft that brings each back.
    restored: list[str] = field(default_factory=list)
    #: In the knowledge base but not in the sheet: left alone (a draft never deletes).
    missing: list[str] = field(default_factory=list)


def import_drafts(
    session: Session,
    provider: KnowledgeBaseProvider,
    me: Operator,
    entries: list[KBEntry],
    now: datetime,
) -> SheetDrafts:
    """A draft (origin ``sheet``) of each entry of the sheet that differs from what the bot
    answers now, or that is retired (the row brings it back); published only after review,
    like a draft written in the form. Nothing is committed here: the caller commits once."""
    _require_editor(me)
    result = SheetDrafts()
    files = shipped(provider)
    live = {item["id"]: item for item in published_items(session)}
    current = {**{k: entry_data(v) for k, v in files.items()}, **live}
    for entry in entries:
        data = entry_data(entry)
        before = current.get(entry.id)
        if before is not None and before.get(RETIRED):  # the row brings a retired entry back
            save_draft(session, provider, me, data, now, origin="sheet")
            result.restored.append(entry.id)
            continue
        if before is not None and content_hash(before) == content_hash(data):
            continue
        save_draft(session, provider, me, data, now, origin="sheet")
        (result.changed if before is not None else result.added).append(entry.id)
    listed = {entry.id for entry in entries}
    result.missing = [
        entry_id
        for entry_id, item in current.items()
        if entry_id not in listed and not item.get(RETIRED)
    ]
    return result


def _draft(session: Session, revision_id: int) -> KBRevision:
    row = session.get(KBRevision, revision_id)
    if row is None:
        raise WorkflowError("Нет такого черновика.")
    if row.status != "draft":
        raise WorkflowError("Этот черновик уже проверен или заменён более новым.")
    return row


def readability_failures(data: dict[str, Any], bar: ReadabilityBar | None) -> list[str]:
    failures: list[str] = []
    for name in READ_FIELDS:
        text = data.get(name)
        if text:
            report = check_text(str(text), bar)
            failures.extend(f"{FIELD_TITLES[name]}: {f}" for f in report.failures)
    return failures


def approve(
    session: Session, me: Operator, revision_id: int, now: datetime, bar: ReadabilityBar | None
) -> KBRevision:
    """Publish the draft: not by its author, and only if its texts pass the readability bar."""
    _require_editor(me)
    row = _draft(session, revision_id)
    if row.author_id == me.id or row.author == me.login:
        raise Forbidden("Черновик проверяет другой человек: автор не может опубликовать свой.")
    failures = readability_failures(row.data, bar)
    if failures:
        raise WorkflowError("Не опубликовано, текст трудно читать: " + "; ".join(failures))
    _publish(session, row, me.id, me.login, now)
    return row


def _publish(
    session: Session, row: KBRevision, reviewer_id: int | None, reviewer: str, now: datetime
) -> None:
    last = session.exec(
        select(func.max(KBRevision.version)).where(
            KBRevision.entry_id == row.entry_id, KBRevision.status == "published"
        )
    ).one()
    row.status, row.version = "published", (last or 0) + 1
    row.reviewer_id, row.reviewer, row.reviewed_at = reviewer_id, reviewer, now
    session.add(row)
    session.flush()


def return_draft(
    session: Session, me: Operator, revision_id: int, now: datetime, comment: str
) -> KBRevision:
    """Send the draft back to its author with ``comment`` (required)."""
    _require_editor(me)
    comment = comment.strip()
    if not comment:
        raise WorkflowError("Напишите автору, что исправить.")
    row = _draft(session, revision_id)
    row.status, row.comment = "returned", comment[:4000]
    row.reviewer_id, row.reviewer, row.reviewed_at = me.id, me.login, now
    session.add(row)
    session.flush()
    return row


def drafts(session: Session) -> list[KBRevision]:
    """The open rows, oldest first (the review queue)."""
    return list(
        session.exec(
            select(KBRevision).where(col(KBRevision.status).in_(OPEN)).order_by(col(KBRevision.id))
        ).all()
    )


# -- merge of shipped upgrades --------------------------------------------------------------


@dataclass
class MergeReport:
    up_to_date: list[str] = field(default_factory=list)
    merged: list[EntryMerge] = field(default_factory=list)
    conflicts: list[EntryMerge] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"overrides up to date: {len(self.up_to_date)}; merged and published: "
            f"{len(self.merged)}; conflicts: {len(self.conflicts)}"
        ]
        for merge in self.merged:
            lines.append(f"merged {merge.entry_id}: took {', '.join(merge.taken) or 'nothing'}")
        for merge in self.conflicts:
            if merge.removed:
                lines.append(f"CONFLICT {merge.entry_id}: removed from the shipped entries")
            for conflict in merge.conflicts:
                lines.append(f"CONFLICT {merge.entry_id}.{conflict.field}:")
                lines.append(f"    base:   {conflict.base!r}")
                lines.append(f"    ours:   {conflict.ours!r}")
                lines.append(f"    theirs: {conflict.theirs!r}")
        return "\n".join(lines)


def merge_shipped(
    session: Session, provider: KnowledgeBaseProvider, now: datetime, *, dry_run: bool = False
) -> MergeReport:
    """Three-way merge of each published override whose shipped entry changed since.

    A clean merge is published at once (author and approver ``otklik kb merge``: it only brings
    the shipped text of fields the agency did not touch); a conflict becomes a ``conflict``
    row holding the agency's text, the conflicting fields and the new shipped version as its
    base, for a person to resolve (an editor saves it as a draft, another approves it). Run
    again, it makes no second conflict row for the same shipped version.
    """
    report = MergeReport()
    files = shipped(provider)
    overrides = [row for row in _latest_overrides(session) if row.base_hash is not None]
    for row in overrides:
        if row.data.get(RETIRED):  # withdrawn by the agency: an upgrade does not bring it back
            report.up_to_date.append(row.entry_id)
            continue
        theirs_entry = files.get(row.entry_id)
        theirs = entry_data(theirs_entry) if theirs_entry else None
        theirs_hash = content_hash(theirs) if theirs else "removed"
        if theirs_hash == row.base_hash:
            report.up_to_date.append(row.entry_id)
            continue
        result = merge_entry(row.base_data or {}, dict(row.data), theirs)
        if result.clean:
            report.merged.append(result)
            if not dry_run:
                merged = KBRevision(
                    entry_id=row.entry_id, status="draft", data=result.merged, base_data=theirs,
                    base_hash=theirs_hash, author=MERGE_ACTOR, created_at=now, origin="merge",
                )  # fmt: skip
                session.add(merged)
                _publish(session, merged, None, MERGE_ACTOR, now)
            continue
        report.conflicts.append(result)
        pending = open_revision(session, row.entry_id)
        if dry_run or (
            pending is not None
            and pending.status == "conflict"
            and pending.base_hash == theirs_hash
        ):
            continue
        if pending is not None:
            pending.status = "discarded"
            session.add(pending)
        session.add(
            KBRevision(
                entry_id=row.entry_id,
                status="conflict",
                data=result.merged,
                base_data=theirs,
                base_hash=theirs_hash,
                author=MERGE_ACTOR,
                created_at=now,
                origin="merge",
                conflicts=_conflicts(result),
            )
        )
    session.flush()
    return report


def _conflicts(result: EntryMerge) -> dict[str, Any]:
    found = {
        c.field: {"base": c.base, "ours": c.ours, "theirs": c.theirs} for c in result.conflicts
    }
    return found or {"*": {"base": None, "ours": None, "theirs": None}}  # removed when shipped


def _latest_overrides(session: Session) -> list[KBRevision]:
    newest: dict[str, KBRevision] = {}
    for row in session.exec(
        select(KBRevision).where(KBRevision.status == "published").order_by(col(KBRevision.version))
    ).all():
        newest[row.entry_id] = row
    return list(newest.values())
