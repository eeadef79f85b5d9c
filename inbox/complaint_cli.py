"""``otklik complaint``: shared complaints from a shell (list, show, create, add, set-status).

The commands call ``inbox.complaints`` like the UI and the API: a status change is recorded
with the system user who ran it (``cli:<user>``) and every supporter's message is queued in
the outbox in the same transaction. Appeals are given by their numbers (``2026-000123``).
Errors are one line on standard error and exit code 2.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from sqlmodel import Session, col, select

from inbox import complaints
from inbox.application_cli import _day, _fail, _local, _runtime, _system_user, _zone
from inbox.application_status import LABELS, ApplicationStatus
from inbox.applications import Actor
from inbox.complaint_texts import tracker_url
from inbox.complaints import ComplaintChange, ComplaintError
from inbox.models import Conversation, SharedComplaint

complaint_app = typer.Typer(help="Shared complaints (+1) and their status.", no_args_is_help=True)


def _appeal_ids(session: Session, numbers: list[str]) -> list[int]:
    found = dict(
        session.exec(
            select(Conversation.number, Conversation.id).where(
                col(Conversation.number).in_(numbers)
            )
        ).all()
    )
    missing = [n for n in numbers if found.get(n) is None]
    if missing:
        raise _fail(f"no appeal numbered {missing[0][:40]!r}")
    return [int(found[n]) for n in numbers]  # type: ignore[arg-type]


@complaint_app.command("list")
def list_complaints(
    status: Annotated[
        list[ApplicationStatus] | None, typer.Option("--status", help="Repeat for several")
    ] = None,
    topic: Annotated[str | None, typer.Option(help="A service id, e.g. lighting")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """Shared complaints, most recently changed first: id, status, supporters, title, place."""
    with _runtime() as rt, rt.factory() as session:
        rows, total = complaints.search(
            session, statuses=[s.value for s in status or []], topic=topic, limit=limit
        )
        for row in rows:
            k = row.complaint
            if as_json:
                typer.echo(json.dumps({
                    "id": k.id, "status": k.status, "supporters": row.supporters,
                    "title": k.title, "place": k.place, "topic": k.topic,
                    "expected_date": k.expected_date.isoformat() if k.expected_date else None,
                    "tracker_url": tracker_url(rt.settings.public_url, k.slug),
                }, ensure_ascii=False))  # fmt: skip
            else:
                typer.echo(f"{k.id}\t{k.status}\t{row.supporters}\t{k.title}\t{k.place}\t{k.topic}")
        if not as_json:
            typer.echo(f"{len(rows)} of {total}", err=True)


@complaint_app.command("show")
def show(complaint_id: Annotated[int, typer.Argument(min=1, max=2**31 - 1)]) -> None:
    """One complaint: its facts, supporters' appeals and history."""
    with _runtime() as rt, rt.factory() as session:
        complaint = session.get(SharedComplaint, complaint_id)
        if complaint is None:
            raise _fail(f"no shared complaint {complaint_id}")
        status = ApplicationStatus(complaint.status)
        typer.echo(f"{complaint.title} — {complaint.place} ({complaint.topic})")
        typer.echo(f"status: {status.value} ({LABELS[status]}), version {complaint.version}")
        if complaint.expected_date:
            typer.echo(f"expected: {complaint.expected_date.isoformat()}")
        if complaint.answer:
            typer.echo(f"answer: {complaint.answer}")
        typer.echo(f"tracker: {tracker_url(rt.settings.public_url, complaint.slug)}")
        supporters = complaints.supporters(session, complaint_id)
        numbers = dict(
            session.exec(
                select(Conversation.id, Conversation.number).where(
                    col(Conversation.id).in_([s.conversation_id for s in supporters])
                )
            ).all()
        )
        typer.echo(f"supporters: {len(supporters)}")
        for s in supporters:
            typer.echo(f"  {numbers.get(s.conversation_id)}\t{s.via}\t{_local(rt, s.joined_at)}")
        for change in complaints.history(session, complaint_id):
            line = f"{_local(rt, change.changed_at)}  {change.from_status} -> {change.to_status}"
            typer.echo(f"{line}  by {change.actor_kind}:{change.actor}, told {change.notified}")


@complaint_app.command("create")
def create(
    appeals: Annotated[list[str], typer.Argument(help="Appeal numbers, e.g. 2026-000123")],
    title: Annotated[str, typer.Option(help="The problem (public: no names, no phones)")],
    place: Annotated[str, typer.Option(help="Street and house, a yard")],
    topic: Annotated[str, typer.Option(help="A service id of the bot's catalog: lighting…")],
) -> None:
    """Merge appeals into a new shared complaint; the first appeal's SLA clock is its clock."""
    from rules.catalog import load_catalog

    with _runtime() as rt, rt.factory() as session:
        if topic not in {s.id for s in load_catalog(rt.settings.bot_catalog).services}:
            raise _fail(f"unknown topic {topic[:40]!r}: a service id of the bot's catalog")
        try:
            complaint = complaints.create(
                session, title=title, place=place, topic=topic,
                conversation_ids=_appeal_ids(session, appeals), actor=Actor.cli(_system_user()),
                now=rt.clock.now(), public_url=rt.settings.public_url, rules=rt.rules,
            )  # fmt: skip
            session.commit()
        except ComplaintError as exc:
            raise _fail(str(exc)) from None
        assert complaint.id is not None
        count = complaints.supporters_count(session, complaint.id)
        typer.echo(f"{complaint.id}: created with {count} supporters")
        typer.echo(f"tracker: {tracker_url(rt.settings.public_url, complaint.slug)}")


@complaint_app.command("add")
def add(
    complaint_id: Annotated[int, typer.Argument(min=1, max=2**31 - 1)],
    appeals: Annotated[list[str], typer.Argument(help="Appeal numbers")],
) -> None:
    """Add appeals to an open complaint (each citizen once; they are told)."""
    with _runtime() as rt, rt.factory() as session:
        complaint = session.get(SharedComplaint, complaint_id)
        if complaint is None:
            raise _fail(f"no shared complaint {complaint_id}")
        added = 0
        try:
            ids = _appeal_ids(session, appeals)
            for conversation in complaints.load_conversations(session, ids):
                joined = complaints.join(
                    session, complaint, conversation, "cli", rt.clock.now(),
                    actor=Actor.cli(_system_user()), public_url=rt.settings.public_url,
                )  # fmt: skip
                added += joined is not None
            session.commit()
        except ComplaintError as exc:
            raise _fail(str(exc)) from None
        total = complaints.supporters_count(session, complaint_id)
        typer.echo(f"{complaint_id}: {added} added, {total} supporters")


@complaint_app.command("set-status")
def set_status(
    complaint_id: Annotated[int, typer.Argument(min=1, max=2**31 - 1)],
    status: Annotated[ApplicationStatus, typer.Argument()],
    answer: Annotated[str | None, typer.Option(help="Public; every supporter gets it")] = None,
    expected_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    note: Annotated[str | None, typer.Option(help="Internal note, never sent")] = None,
    version: Annotated[int | None, typer.Option(min=1, help="Refuse if it changed since")] = None,
) -> None:
    """Move the complaint on and queue one message to every supporter."""
    with _runtime() as rt, rt.factory() as session:
        request = ComplaintChange(
            status.value, answer, _day(expected_date, "--expected-date"), note
        )
        try:
            outcome = complaints.change_status(
                session, complaint_id, request, Actor.cli(_system_user()), rt.clock.now(),
                _zone(rt), seen_version=version, public_url=rt.settings.public_url,
            )  # fmt: skip
            session.commit()
        except ComplaintError as exc:
            raise _fail(str(exc)) from None
        change = outcome.change
        typer.echo(
            f"{complaint_id}: {change.from_status} -> {change.to_status}; "
            f"{len(outcome.notified)} supporters' messages queued"
        )
