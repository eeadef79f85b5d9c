"""``otklik application`` and ``otklik token``: the lifecycle and API tokens from a shell.

``otklik application set-status`` goes through the same ``inbox.applications.change_status``
as the UI and the API: the change is recorded with the system user who ran it (``cli:root``)
and the citizen's notification is queued in the outbox in the same transaction. Errors are
one line on standard error and exit code 2.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from core.clock import as_utc
from core.config import get_settings
from inbox import api_tokens, applications, audit
from inbox.application_status import LABELS, ApplicationStatus
from inbox.applications import Actor, ApplicationError, ApplicationFilter, ChangeRequest
from inbox.models import Application, Conversation
from inbox.runtime import Runtime
from rules.applications import application_rules
from rules.errors import RulesFileError

application_app = typer.Typer(help="Citizens' applications and their status.", no_args_is_help=True)
token_app = typer.Typer(
    help="API tokens of the agency's back-office systems.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"otklik: {message}", err=True)
    return typer.Exit(2)


@contextmanager
def _runtime() -> Iterator[Runtime]:
    from inbox.runtime import build_runtime

    try:
        rt = build_runtime(get_settings())
    except RulesFileError as exc:
        raise _fail(str(exc)) from None
    try:
        yield rt
    finally:
        rt.dispose()


def _system_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _zone(rt: Runtime) -> ZoneInfo:
    return ZoneInfo(rt.rules.calendar.timezone)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option}: a date as YYYY-MM-DD, got {value[:40]!r}") from None


def _local(rt: Runtime, moment: datetime) -> str:
    return as_utc(moment).astimezone(_zone(rt)).strftime("%Y-%m-%d %H:%M")


@application_app.command("list")
def list_applications(
    status: Annotated[
        list[ApplicationStatus] | None, typer.Option("--status", help="Repeat for several")
    ] = None,
    service: Annotated[str | None, typer.Option(help="Service id, e.g. lighting")] = None,
    channel: Annotated[str | None, typer.Option(help="telegram, vk, webchat...")] = None,
    created_from: Annotated[
        str | None, typer.Option("--from", help="Submitted on or after")
    ] = None,
    created_to: Annotated[str | None, typer.Option("--to", help="Submitted on or before")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only the overdue ones")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0, max=1_000_000)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """Applications, newest first: number, status, service, channel, submitted, due."""
    filters = ApplicationFilter(
        statuses=[s.value for s in status or []], service=service, channel=channel,
        created_from=_day(created_from, "--from"), created_to=_day(created_to, "--to"),
        overdue=overdue,
    )  # fmt: skip
    with _runtime() as rt:
        rules = application_rules(rt.settings.rules_dir)
        now, zone = rt.clock.now(), _zone(rt)
        with rt.factory() as session:
            rows, total = applications.search(
                session, filters, now, zone, rules, limit=limit, offset=offset
            )
        today = applications.today_in(zone, now)
        for row in rows:
            a = row.application
            late = applications.is_overdue(a, now, today, rules)
            due = applications.due_date(a, zone, rules).isoformat()
            if as_json:
                typer.echo(json.dumps({
                    "number": a.number, "status": a.status, "service": a.service,
                    "channel": row.channel, "created_at": as_utc(a.created_at).isoformat(),
                    "due_date": due, "overdue": late,
                }, ensure_ascii=False))  # fmt: skip
            else:
                mark = "\tOVERDUE" if late else ""
                typer.echo(
                    f"{a.number}\t{a.status}\t{a.service}\t{row.channel or '-'}\t"
                    f"{_local(rt, a.created_at)}\tdue {due}{mark}"
                )
        if not as_json:
            typer.echo(f"{len(rows)} of {total}", err=True)


def _load(rt: Runtime, number: str) -> Application:
    if applications.normalize_number(number) is None:
        raise _fail(f"not an application number: {number[:40]!r} (like З-2026-000042)")
    with rt.factory() as session:
        found = applications.find_by_number(session, number)
    if found is None:
        raise _fail(f"no application {applications.normalize_number(number)}")
    return found


@application_app.command("show")
def show(
    number: Annotated[str, typer.Argument(help="З-2026-000042 (or Z-2026-000042)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One application: what the citizen filled in, its status and its whole history."""
    with _runtime() as rt:
        application = _load(rt, number)
        assert application.id is not None
        with rt.factory() as session:
            changes = applications.history(session, application.id)
            conversation = (
                session.get(Conversation, application.conversation_id)
                if application.conversation_id
                else None
            )
        if as_json:
            typer.echo(json.dumps(_as_dict(application, conversation, changes), ensure_ascii=False))
            return
        status = ApplicationStatus(application.status)
        typer.echo(f"{application.number}  {LABELS[status]} ({status.value})")
        typer.echo(f"service: {application.fields.get('service_title') or application.service}")
        if conversation is not None:
            typer.echo(f"channel: {conversation.channel}, appeal {conversation.number}")
        typer.echo(f"submitted: {_local(rt, application.created_at)}")
        if application.expected_date:
            typer.echo(f"expected: {application.expected_date.isoformat()}")
        for key in ("address", "description", "phone"):
            if application.fields.get(key):
                typer.echo(f"{key}: {application.fields[key]}")
        for c in changes:
            moved = f"{c.from_status} -> {c.to_status}"
            typer.echo(f"{_local(rt, c.changed_at)}  {moved}  by {c.actor_kind}:{c.actor}")
            for label, value in (
                ("comment", c.comment), ("reason", c.reason),
                ("expected", c.expected_date.isoformat() if c.expected_date else None),
                ("internal note", c.internal_note),
            ):  # fmt: skip
                if value:
                    typer.echo(f"    {label}: {value}")


def _as_dict(
    application: Application, conversation: Conversation | None, changes: list[Any]
) -> dict[str, Any]:
    return {
        "number": application.number,
        "status": application.status,
        "service": application.service,
        "channel": conversation.channel if conversation else None,
        "created_at": as_utc(application.created_at).isoformat(),
        "expected_date": application.expected_date.isoformat()
        if application.expected_date
        else None,
        "fields": application.fields,
        "history": [
            {
                "at": as_utc(c.changed_at).isoformat(),
                "from": c.from_status,
                "to": c.to_status,
                "actor": f"{c.actor_kind}:{c.actor}",
                "comment": c.comment,
                "reason": c.reason,
                "expected_date": c.expected_date.isoformat() if c.expected_date else None,
                "internal_note": c.internal_note,
                "message_id": c.message_id,
            }
            for c in changes
        ],
    }


@application_app.command("set-status")
def set_status(
    number: Annotated[str, typer.Argument(help="З-2026-000042 (or Z-2026-000042)")],
    status: Annotated[ApplicationStatus, typer.Argument(help="The new status")],
    comment: Annotated[
        str | None, typer.Option(help="For the citizen; required for info_needed")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why it is refused (refused only)")] = None,
    expected_date: Annotated[
        str | None,
        typer.Option(
            "--expected-date", help="YYYY-MM-DD: done by (in_progress), possible from (refused)"
        ),
    ] = None,
    note: Annotated[str | None, typer.Option(help="Internal note, never sent")] = None,
) -> None:
    """Change the status; the citizen gets a message in the channel the application came from."""
    when = _day(expected_date, "--expected-date")
    request = ChangeRequest(status.value, comment, reason, when, note)
    with _runtime() as rt:
        application = _load(rt, number)
        assert application.id is not None
        with rt.factory() as session:
            try:
                outcome = applications.change_status(
                    session, application.id, request, Actor.cli(_system_user()),
                    rt.clock.now(), _zone(rt),
                )  # fmt: skip
            except ApplicationError as exc:
                raise _fail(str(exc)) from None
            session.commit()
        change = outcome.change
        told = (
            f"the citizen's message is queued (message {change.message_id})"
            if change.message_id
            else "no conversation to notify the citizen in"
        )
        typer.echo(f"{application.number}: {change.from_status} -> {change.to_status}; {told}")


# -- tokens ---------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who uses it, e.g. backoffice-1c")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="applications:read or applications:write (repeatable)"),
    ],
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    with _runtime() as rt:
        now = rt.clock.now()
        actor = f"cli:{_system_user()}"
        with rt.factory() as session:
            try:
                token, secret = api_tokens.create(session, name, scope, now, actor)
            except api_tokens.TokenError as exc:
                raise _fail(str(exc)) from None
            audit.record(session, "api_token_created", now, actor=actor, name=token.name,
                         scopes=token.scopes)  # fmt: skip
            session.commit()
    typer.echo(f"token {token.name} ({token.scopes}); it is shown only now:", err=True)
    typer.echo(secret)


@token_app.command("list")
def token_list() -> None:
    """Every token: name, scopes, created, last used, revoked."""
    with _runtime() as rt, rt.factory() as session:
        for t in api_tokens.all_tokens(session):
            used = as_utc(t.last_used_at).isoformat() if t.last_used_at else "never"
            state = f"revoked {as_utc(t.revoked_at).isoformat()}" if t.revoked_at else "active"
            typer.echo(f"{t.name}\t{t.prefix}…\t{t.scopes}\tlast used {used}\t{state}")


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="The token's name")]) -> None:
    """Revoke a token: it stops working at once."""
    with _runtime() as rt:
        now = rt.clock.now()
        with rt.factory() as session:
            token = api_tokens.find(session, name)
            if token is None:
                raise _fail(f"no token named {name[:100]!r}")
            api_tokens.revoke(session, token, now)
            audit.record(session, "api_token_revoked", now, actor=f"cli:{_system_user()}",
                         name=token.name)  # fmt: skip
            session.commit()
    typer.echo(f"token {name} revoked")
