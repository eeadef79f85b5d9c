"""``otklik kb``: the knowledge base's own commands (knowledge_base.cli) and those that read or
write the inbox's database (gaps, export, import, history, diff, merge, restore, retired).
Imports of the database layer are inside the command, so that ``otklik kb search`` stays
instant."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from knowledge_base.cli import kb_app

if TYPE_CHECKING:
    from sqlmodel import Session

    from inbox.models import Operator
    from knowledge_base.entries import KBEntry

__all__ = ["kb_app"]


def _refuse(message: object) -> NoReturn:
    """One clear line on stderr and exit 2: what every refusal of these commands looks like."""
    typer.echo(f"otklik: {message}", err=True)
    raise typer.Exit(2)


def _database_unusable(what: str, exc: Exception, instead: str | None = None) -> NoReturn:
    """The database could not be read or written: say so, and what to run (or do instead)."""
    other = f", or {instead}" if instead else ""
    _refuse(f"{what} ({type(exc).__name__}); run `otklik db upgrade`{other}")


@kb_app.command("gaps")
def kb_gaps(
    days: Annotated[int, typer.Option(min=1, max=3660, help="The period: the last N days.")] = 30,
    top: Annotated[int, typer.Option(min=1, max=1000, help="How many clusters to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Group what the bot handed off or answered with low confidence into clusters: count,
    examples (personal data masked) and the nearest entry, for the people who write answers."""
    from core.config import get_settings
    from inbox.gaps import unanswered_questions
    from inbox.runtime import build_runtime
    from knowledge_base.gaps import find_gaps

    rt = build_runtime(get_settings())
    try:
        until = rt.clock.now()
        with rt.factory() as session:
            questions = unanswered_questions(session, until - timedelta(days=days), until)
        gaps = find_gaps([q.text for q in questions], rt.kb.get())[:top]
    finally:
        rt.dispose()
    if as_json:
        rows = [
            {
                "count": g.count, "examples": g.examples, "keywords": g.keywords,
                "nearest_entry": g.nearest_entry, "nearest_score": g.nearest_score,
            }
            for g in gaps
        ]  # fmt: skip
        typer.echo(json.dumps({"questions": len(questions), "clusters": rows}, ensure_ascii=False))
        return
    typer.echo(f"{len(questions)} questions in {days} days, {len(gaps)} clusters shown")
    for number, gap in enumerate(gaps, start=1):
        near = f"{gap.nearest_entry} ({gap.nearest_score:.2f})" if gap.nearest_entry else "—"
        typer.echo(f"{number}. {gap.count} × [{', '.join(gap.keywords)}]  nearest: {near}")
        for example in gap.examples[:3]:
            typer.echo(f"     «{example}»")


@kb_app.command("export")
def kb_export(
    path: Annotated[Path, typer.Argument(help="The spreadsheet to write: .xlsx or .csv")],
    files_only: Annotated[
        bool,
        typer.Option("--files-only", help="Only the entry files, without the published versions."),
    ] = False,
) -> None:
    """Write the knowledge base the bot answers with as a spreadsheet: the entry files with
    the agency's published versions laid over them, as the UI's download (drafts are not in it).
    """
    from core.config import get_settings
    from inbox.kb_workflow import DatabaseOverlay
    from inbox.runtime import build_runtime
    from knowledge_base.entries import load_entries
    from knowledge_base.spreadsheet import sheet_kind, write_csv, write_xlsx
    from knowledge_base.store import active_dir, configured_kb_dir, overlaid

    try:
        kind = sheet_kind(path.name)
    except ValueError as exc:
        _refuse(exc)
    entries = load_entries(active_dir(configured_kb_dir()))
    published = 0
    if not files_only:
        rt = build_runtime(get_settings())
        try:
            overlay = rt.kb.overlay
            items = overlay.entries() if isinstance(overlay, DatabaseOverlay) else []
        except Exception as exc:  # any database error: one clear line and exit 2
            _database_unusable(
                "the published versions were not read from the database",
                exc,
                "export the files alone with --files-only",
            )
        finally:
            rt.dispose()
        entries, published = overlaid(entries, items), len(items)
    path.write_bytes(write_xlsx(entries) if kind == "xlsx" else write_csv(entries))
    typer.echo(f"{len(entries)} entries written to {path} ({published} published versions)")


@kb_app.command("history")
def kb_history(entry_id: Annotated[str, typer.Argument(help="The entry's id.")]) -> None:
    """Every version of an entry the agency wrote: status, version, author, approver, times."""
    from core.config import get_settings
    from inbox.kb_workflow import history
    from inbox.runtime import build_runtime

    rt = build_runtime(get_settings())
    try:
        with rt.factory() as session:
            rows = history(session, entry_id)
    finally:
        rt.dispose()
    if not rows:
        typer.echo(f"{entry_id}: no versions of the agency (the shipped entry is answered)")
        return
    for row in rows:
        version = f"v{row.version}" if row.version else "-"
        reviewed = (
            f" reviewed by {row.reviewer} {row.reviewed_at:%Y-%m-%d %H:%M}"
            if (row.reviewer and row.reviewed_at)
            else ""
        )
        comment = f"  «{row.comment}»" if row.comment else ""
        typer.echo(
            f"#{row.id} {row.status:<9} {version:<4} by {row.author} "
            f"{row.created_at:%Y-%m-%d %H:%M} ({row.origin}){reviewed}{comment}"
        )


@kb_app.command("diff")
def kb_diff(
    entry_id: Annotated[str, typer.Argument(help="The entry's id.")],
    old: Annotated[int, typer.Argument(min=0, max=1_000_000, help="Version (0: as shipped).")],
    new: Annotated[int, typer.Argument(min=0, max=1_000_000, help="Version to compare.")],
) -> None:
    """A unified diff of two published versions of an entry (0 is the entry as shipped)."""
    from core.config import get_settings
    from inbox.kb_workflow import WorkflowError, diff_versions
    from inbox.runtime import build_runtime

    rt = build_runtime(get_settings())
    try:
        with rt.factory() as session:
            text = diff_versions(session, rt.kb, entry_id, old, new)
    except WorkflowError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    finally:
        rt.dispose()
    typer.echo(text or "(no difference)", nl=not text)


@kb_app.command("merge")
def kb_merge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report only; change nothing.")
    ] = False,
) -> None:
    """Three-way merge of the agency's published entries with the shipped ones after an upgrade.

    Fields changed only in the shipped entry are taken and published; fields both changed
    are conflicts, reported here and kept for a person in the UI («База знаний» → «Проверка»).
    Exit code 0: no conflicts; 1: conflicts to resolve.
    """
    from core.config import get_settings
    from inbox.kb_workflow import merge_shipped, published
    from inbox.runtime import build_runtime

    rt = build_runtime(get_settings())
    try:
        with rt.factory() as session:
            report = merge_shipped(session, rt.kb, rt.clock.now(), dry_run=dry_run)
            session.commit()
        if report.merged and not dry_run:
            published(rt.kb)
    finally:
        rt.dispose()
    typer.echo(report.text())
    if report.conflicts:
        raise typer.Exit(1)


@kb_app.command("import")
def kb_import(
    path: Annotated[Path, typer.Argument(help="The spreadsheet to read: .xlsx or .csv")],
    author: Annotated[
        str | None,
        typer.Option(
            "--author",
            help="Login of the supervisor or administrator the drafts are written by "
            "(another person reviews them).",
        ),
    ] = None,
    files: Annotated[
        bool,
        typer.Option(
            "--files",
            help="Write the entry files of OTKLIK_KB_DIR instead of drafts (the maintainers' "
            "and file-based deployments' workflow; entries missing from the sheet are removed).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and show the changes; write nothing.")
    ] = False,
) -> None:
    """Import a spreadsheet: a draft of each new, changed or retired entry it has, by --author,
    published only after another person's review (as the UI's upload). Every row is checked
    first; on any error nothing is written and the exit code is 2."""
    from knowledge_base.spreadsheet import SpreadsheetError, read_sheet, sheet_kind

    if files == (author is not None):
        typer.echo(
            "otklik: give --author LOGIN (the drafts' author, a supervisor or administrator) "
            "or --files (write the entry files directly), not both"
            if files
            else "otklik: give --author LOGIN: the drafts' author, a supervisor or "
            "administrator (or --files to write the entry files directly)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        entries = read_sheet(path.read_bytes(), sheet_kind(path.name))
    except SpreadsheetError as exc:
        for error in exc.errors:
            typer.echo(f"{path.name}: {error}", err=True)
        raise typer.Exit(2) from None
    except (OSError, ValueError) as exc:
        _refuse(exc)
    if files:
        _import_files(path, entries, dry_run)
    else:
        assert author is not None
        _import_drafts(path, entries, author, dry_run)


def _import_files(path: Path, entries: list[KBEntry], dry_run: bool) -> None:
    """The sheet becomes the entry files (entries missing from it are removed)."""
    from knowledge_base.entries import load_entries
    from knowledge_base.spreadsheet import import_entries, plan
    from knowledge_base.store import KnowledgeBaseProvider, active_dir, configured_kb_dir

    if dry_run:
        changes = plan(load_entries(active_dir(configured_kb_dir())), entries)
    else:
        changes = import_entries(KnowledgeBaseProvider(configured_kb_dir()), entries)
    verb = "would be" if dry_run else "were"
    typer.echo(
        f"{len(entries)} entries in {path.name}: {len(changes.added)} {verb} added, "
        f"{len(changes.changed)} changed, {len(changes.removed)} removed"
    )
    for label, ids in (("+", changes.added), ("~", changes.changed), ("-", changes.removed)):
        for entry_id in ids:
            typer.echo(f"  {label} {entry_id}")


def _import_drafts(path: Path, entries: list[KBEntry], author: str, dry_run: bool) -> None:
    """Drafts by ``author`` in one transaction: committed whole, or not at all."""
    from sqlalchemy.exc import SQLAlchemyError

    from core.config import get_settings
    from inbox import audit
    from inbox.kb_workflow import WorkflowError, import_drafts
    from inbox.runtime import build_runtime
    from knowledge_base.datafile import DataFileError
    from knowledge_base.entries import KBLoadError

    rt = build_runtime(get_settings())
    try:
        with rt.factory() as session:
            me = _staff(session, author)
            made = import_drafts(session, rt.kb, me, entries, rt.clock.now())
            if not dry_run:
                audit.record(
                    session, "kb_imported", rt.clock.now(), operator_id=me.id, actor=me.login,
                    file=path.name, via="cli", added=len(made.added), changed=len(made.changed),
                    restored=len(made.restored), missing=len(made.missing),
                )  # fmt: skip
                session.commit()
    except (WorkflowError, KBLoadError, DataFileError) as exc:
        # not an editor, an entry the workflow refuses, or a file of the base that does not load
        _refuse(exc)
    except SQLAlchemyError as exc:
        _database_unusable(
            "the database could not be used", exc, "write the entry files with --files"
        )
    finally:
        rt.dispose()
    verb = "would be made" if dry_run else "made"
    typer.echo(
        f"{len(entries)} entries in {path.name}: drafts {verb} by {author}: "
        f"{len(made.added)} new, {len(made.changed)} changed, {len(made.restored)} brought back; "
        f"{len(made.missing)} entries not in the sheet are left as they are"
    )
    for label, ids in (("+", made.added), ("~", made.changed), ("^", made.restored)):
        for entry_id in ids:
            typer.echo(f"  {label} {entry_id}")
    if not dry_run and (made.added or made.changed or made.restored):
        typer.echo(
            "The bot answers with them once another supervisor or administrator publishes "
            "them on «Проверка базы» (/ui/kb/review)."
        )


def _staff(session: Session, login: str) -> Operator:
    """The staff user with ``login`` (whether they may write is the workflow's to say)."""
    from sqlmodel import select

    from inbox.models import Operator

    me = session.exec(select(Operator).where(Operator.login == login)).first()
    if me is None:
        _refuse(f"no staff user with the login «{login}»")
    return me


@kb_app.command("restore")
def kb_restore(
    entry_id: Annotated[str, typer.Argument(help="The entry's id.")],
    author: Annotated[
        str, typer.Option("--author", help="The draft's author: a supervisor or administrator.")
    ],
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            min=0,
            help="Take the text of this published version (0: as shipped), e.g. to undo a merge."
            " Without it: bring a retired entry back with the text it had.",
        ),
    ] = None,
) -> None:
    """A draft that brings a retired entry back, or restores a published version's text:
    «Вернуть» and «Вернуть эту версию» of the UI. Another person publishes it (four eyes)."""
    from sqlalchemy.exc import SQLAlchemyError

    from core.config import get_settings
    from inbox import audit
    from inbox.kb_workflow import WorkflowError, restore_draft, restore_version
    from inbox.runtime import build_runtime

    rt = build_runtime(get_settings())
    try:
        with rt.factory() as session:
            me = _staff(session, author)
            now = rt.clock.now()
            if version is None:
                row = restore_draft(session, rt.kb, me, entry_id, now)
                how: dict[str, Any] = {"restore": True}
            else:
                row = restore_version(session, rt.kb, me, entry_id, version, now)
                how = {"from_version": version}
            session.flush()
            audit.record(
                session, "kb_draft_saved", now, operator_id=me.id, actor=me.login,
                entry=entry_id, revision=row.id, via="cli", **how,
            )  # fmt: skip
            session.commit()
            made = row.id
    except WorkflowError as exc:  # not an editor, no such entry or version, nothing to restore
        _refuse(exc)
    except SQLAlchemyError as exc:
        _database_unusable("the database could not be used", exc)
    finally:
        rt.dispose()
    typer.echo(
        f"draft #{made} of {entry_id} made by {author}; the bot answers with it once another "
        "supervisor or administrator publishes it on «Проверка базы» (/ui/kb/review)."
    )


@kb_app.command("retired")
def kb_retired(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The entries withdrawn from publishing: who retired each (and who approved it) and when.
    «Вернуть» on «Проверка базы» → «Снятые с публикации» brings one back, after review."""
    from core.config import get_settings
    from inbox.kb_workflow import retired_entries
    from inbox.runtime import build_runtime

    rt = build_runtime(get_settings())
    try:
        with rt.factory() as session:
            found = retired_entries(session)
    finally:
        rt.dispose()
    if as_json:
        rows = [
            {
                "entry_id": item.entry_id, "question": item.question,
                "retired_by": item.retired_by, "approved_by": item.approved_by,
                "retired_at": item.retired_at.isoformat() if item.retired_at else None,
                "version": item.version,
                "pending_draft": item.pending.id if item.pending is not None else None,
            }
            for item in found
        ]  # fmt: skip
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not found:
        typer.echo("no retired entries")
        return
    for item in found:
        when = f"{item.retired_at:%Y-%m-%d %H:%M}" if item.retired_at else "?"
        pending = (
            f"  (draft #{item.pending.id} waits for review)" if item.pending is not None else ""
        )
        typer.echo(
            f"{item.entry_id}  retired v{item.version} {when} by {item.retired_by}, "
            f"approved by {item.approved_by or '-'}  «{item.question}»{pending}"
        )
