"""``otklik consent`` and ``otklik mailing``: the consent registry and mailings from a shell.

They call the same functions as the bot and the operator UI (``inbox.consent``,
``inbox.mailings``): every change is audited with the system user who ran the command
(``cli:<user>``). Errors are one line on standard error and exit code 2.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from sqlmodel import col, select

from core.clock import as_utc
from inbox import consent, mailings
from inbox.application_cli import _fail, _local, _runtime, _system_user
from inbox.models import Citizen, Mailing
from rules.proactive import proactive_rules

consent_app = typer.Typer(help="Consents to proactive service.", no_args_is_help=True)
mailing_app = typer.Typer(help="Mailings to subscribers of a topic.", no_args_is_help=True)


@consent_app.command("list")
def list_consents(
    citizen: Annotated[int, typer.Option(help="The citizen's id (shown in the operator UI)")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """Every consent of a citizen, newest first: live and withdrawn, with the wording."""
    with _runtime() as rt, rt.factory() as session:
        for c in consent.registry(session, citizen):
            if as_json:
                typer.echo(json.dumps({
                    "id": c.id, "scope": f"{c.scope_kind}:{c.scope_id}", "wording": c.wording,
                    "given_at": as_utc(c.given_at).isoformat(), "given_via": c.given_via,
                    "given_by": c.given_by,
                    "withdrawn_at": as_utc(c.withdrawn_at).isoformat() if c.withdrawn_at else None,
                    "withdrawn_via": c.withdrawn_via,
                }, ensure_ascii=False))  # fmt: skip
            else:
                state = (
                    f"withdrawn {_local(rt, c.withdrawn_at)} ({c.withdrawn_via})"
                    if c.withdrawn_at
                    else "LIVE"
                )
                typer.echo(
                    f"{c.id}\t{c.scope_kind}:{c.scope_id}\tgiven {_local(rt, c.given_at)} "
                    f"({c.given_via}:{c.given_by})\t{state}"
                )


def _scope(situation: str | None, service: str | None) -> tuple[str, str]:
    if (situation is None) == (service is None):
        raise _fail("give exactly one of --situation and --service")
    return ("situation", situation) if situation else ("service", service or "")


@consent_app.command("record")
def record(
    citizen: Annotated[int, typer.Option(help="The citizen's id")],
    situation: Annotated[str | None, typer.Option(help="A life situation id")] = None,
    service: Annotated[str | None, typer.Option(help="A service id")] = None,
) -> None:
    """Record a consent the citizen gave (in writing, on the phone), with the wording of
    rules/proactive.yaml."""
    kind, scope_id = _scope(situation, service)
    with _runtime() as rt, rt.factory() as session:
        if session.get(Citizen, citizen) is None:
            raise _fail(f"no citizen {citizen}")
        rules = proactive_rules(rt.settings.rules_dir)
        try:
            given = consent.give(
                session, rules, citizen, kind, scope_id, rt.clock.now(), via="cli",
                by=_system_user(),
            )  # fmt: skip
        except consent.ConsentError as exc:
            raise _fail(str(exc)) from None
        session.commit()
        typer.echo(f"consent {given.id}: {given.wording}")


@consent_app.command("withdraw")
def withdraw(
    citizen: Annotated[int, typer.Option(help="The citizen's id")],
    situation: Annotated[str | None, typer.Option(help="A life situation id")] = None,
    service: Annotated[str | None, typer.Option(help="A service id")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every consent and subscription")] = (
        False
    ),
) -> None:
    """Withdraw a consent (the subscriptions it covered are cancelled), or all of them."""
    with _runtime() as rt, rt.factory() as session:
        rules = proactive_rules(rt.settings.rules_dir)
        now, user = rt.clock.now(), _system_user()
        if everything:
            gone, cancelled = consent.withdraw_all(session, rules, citizen, now, via="cli", by=user)
        else:
            kind, scope_id = _scope(situation, service)
            gone = [
                c
                for c in consent.live(session, citizen)
                if (c.scope_kind, c.scope_id) == (kind, scope_id)
            ]
            if not gone:
                raise _fail(f"citizen {citizen} has no live consent to {kind} {scope_id[:40]}")
            cancelled = consent.withdraw(session, rules, gone, now, via="cli", by=user)
        session.commit()
        typer.echo(f"withdrawn: {len(gone)} consents, {len(cancelled)} subscriptions cancelled")


@mailing_app.command("list")
def list_mailings(limit: Annotated[int, typer.Option(min=1, max=1000)] = 50) -> None:
    """Mailings, newest first, with their delivery figures."""
    with _runtime() as rt, rt.factory() as session:
        for m in session.exec(select(Mailing).order_by(col(Mailing.id).desc()).limit(limit)):
            assert m.id is not None
            f = mailings.figures(session, m.id)
            when = _local(rt, m.scheduled_at) if m.scheduled_at else "-"
            typer.echo(
                f"{m.id}\t{m.status}\t{m.topic}:{m.area or 'all'}\t{when}\t"
                f"recipients {f.recipients} sent {f.sent} queued {f.queued} digest {f.in_digest} "
                f"withheld {f.withheld} skipped {f.skipped} failed {f.failed}"
            )


@mailing_app.command("create")
def create(
    topic: Annotated[str, typer.Option(help="A topic id of rules/proactive.yaml")],
    text: Annotated[str, typer.Option(help="What the subscribers get")],
    area: Annotated[str | None, typer.Option(help="Only this district")] = None,
    at: Annotated[str | None, typer.Option(help="When, ISO 8601 with a zone; default now")] = None,
) -> None:
    """Schedule a mailing (the worker sends it when its time comes)."""
    when = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise _fail(f"--at: a moment as 2026-12-01T09:00+03:00, got {at[:40]!r}") from None
        if when.tzinfo is None:
            raise _fail("--at: give the time zone, e.g. +03:00")
    with _runtime() as rt, rt.factory() as session:
        rules = proactive_rules(rt.settings.rules_dir)
        draft = mailings.MailingDraft(topic, area, text, when)
        try:
            mailing = mailings.create(session, rules, draft, rt.clock.now(), by=_system_user())
        except mailings.MailingError as exc:
            raise _fail(str(exc)) from None
        audience = mailings.audience(session, rules, topic, area)
        session.commit()
        typer.echo(f"mailing {mailing.id}: {audience} subscribers now")
