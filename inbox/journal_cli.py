"""``otklik journal``: inbound events set aside after failing processing (journal_failures).

``failed`` lists them with their error; ``retry`` gives them one more try (the running
``otklik serve`` or ``otklik worker`` processes them in its next round, within a minute, and
the citizen bot answers a dialogue then); ``dismiss`` takes them off the list. Each retry and
dismissal is audited with the actor ``cli``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from sqlmodel import Session

from core.config import get_settings
from inbox import journal_failures
from inbox.db import make_engine, session_factory

journal_app = typer.Typer(help="The inbound journal: events whose processing failed.")

ACTOR = "cli"


@contextmanager
def _session() -> Iterator[Session]:
    engine = make_engine(get_settings().effective_database_url)
    try:
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _ids(ids: list[int] | None, every: bool) -> list[int] | None:
    """The ids given, or None for ``--all``; exactly one of the two."""
    if bool(ids) == every:
        typer.echo("otklik: give journal ids or --all (one of the two)", err=True)
        raise typer.Exit(2)
    return None if every else list(ids or [])


@journal_app.command("failed")
def failed(
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first")] = 200,
) -> None:
    """List the events set aside: id, channel, received, attempts, error, masked excerpt."""
    with _session() as session:
        total = journal_failures.count_failed(session)
        rows = journal_failures.list_failed(session, limit=limit)
    for row in rows:
        received = row.received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(
            f"{row.id}\t{row.channel}\t{received}Z\t{row.attempts} attempts\t"
            f"{' '.join(row.error.split())[:300]}\t{row.excerpt}"
        )
    typer.echo(f"{total} failed event(s)" + (f", {len(rows)} shown" if total > len(rows) else ""))


@journal_app.command("retry")
def retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Journal ids")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every failed event listed")] = False,
) -> None:
    """Give failed events one more try (the running service processes them within a minute)."""
    chosen = _ids(ids, every)
    policy = journal_failures.RetryPolicy.from_settings(get_settings())
    with _session() as session:
        done = journal_failures.retry(session, chosen, datetime.now(UTC), policy, actor=ACTOR)
        session.commit()
    _report(done, chosen, "queued for another try")


@journal_app.command("dismiss")
def dismiss(
    ids: Annotated[list[int] | None, typer.Argument(help="Journal ids")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every failed event listed")] = False,
) -> None:
    """Take failed events off the list; they stay in the journal, unprocessed."""
    chosen = _ids(ids, every)
    with _session() as session:
        done = journal_failures.dismiss(session, chosen, datetime.now(UTC), actor=ACTOR)
        session.commit()
    _report(done, chosen, "dismissed")


def _report(done: list[int], chosen: list[int] | None, what: str) -> None:
    typer.echo(f"{len(done)} event(s) {what}" + (f": {', '.join(map(str, done))}" if done else ""))
    missing = sorted(set(chosen or []) - set(done))
    if missing:
        typer.echo(
            f"otklik: not failed (processed, unknown or already dismissed): "
            f"{', '.join(map(str, missing))}",
            err=True,
        )
        raise typer.Exit(1)
