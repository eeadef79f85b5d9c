"""The ``otklik`` command. Each area registers its own sub-commands here."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from bot.email.cli import email_app
from bot.phone.cli import phone_app
from bot.telegram.cli import telegram_app
from inbox.application_cli import application_app, token_app
from inbox.config import get_settings
from inbox.consent_cli import consent_app, mailing_app
from inbox.events import Channel, PayloadError
from inbox.journal_cli import journal_app
from inbox.logging import configure as configure_logging
from inbox.logging import install as install_log_filter
from inbox.operators_cli import operator_app
from knowledge_base.cli import kb_app, text_app
from knowledge_base.rasa_cli import rasa_app
from rules.errors import RulesFileError
from rules.triage import triage

app = typer.Typer(
    name="otklik",
    help="Otklik: omnichannel contact centre for public agencies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("triage")(triage)

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
sla_app = typer.Typer(help="Response deadlines.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sla_app, name="sla")
app.add_typer(demo_app, name="demo")
app.add_typer(operator_app, name="operator")
app.add_typer(application_app, name="application")
app.add_typer(token_app, name="token")
app.add_typer(consent_app, name="consent")
app.add_typer(mailing_app, name="mailing")
app.add_typer(kb_app, name="kb")
app.add_typer(text_app, name="text")
app.add_typer(rasa_app, name="rasa")
app.add_typer(phone_app, name="phone")
app.add_typer(telegram_app, name="telegram")
app.add_typer(email_app, name="email")
app.add_typer(journal_app, name="journal")


@app.callback()
def _root() -> None:
    """Otklik: omnichannel contact centre for public agencies."""
    install_log_filter()  # a command's warnings and tracebacks are masked too (inbox.logging)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"otklik: {message}", err=True)
    return typer.Exit(2)


def _runtime():  # type: ignore[no-untyped-def]
    from inbox.runtime import build_runtime
    from inbox.secret_key import SecretKeyError

    try:
        return build_runtime(get_settings())
    except (RulesFileError, SecretKeyError) as exc:
        raise _fail(str(exc)) from None


def _refuse_unsafe_settings(*, web: bool, host: str | None = None) -> None:
    """Stop with one line and exit 2 on a setting no server may run with; log the warnings."""
    from inbox.startup_checks import enforce

    for refusal in enforce(get_settings(), web=web, host=host):
        raise _fail(refusal)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the latest schema."""
    from inbox.db import MigrationRefused, upgrade

    settings = get_settings()
    try:
        upgrade(settings.effective_database_url)
    except MigrationRefused as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"database ready: {settings.effective_database_url}")


@app.command("ingest")
def ingest(
    channel: Annotated[Channel, typer.Option(help="The channel whose native format PATH holds")],
    path: Annotated[str, typer.Argument(help="Payload file, or - for standard input")] = "-",
) -> None:
    """Store one native payload in the inbox (deduplicated) and print what happened."""
    from bot.normalize import normalize
    from rules.triage import _read

    rt = _runtime()
    try:
        event = normalize(channel, _read(path), rt.profile)
    except PayloadError as exc:
        raise _fail(str(exc)) from None
    accepted, processed = rt.inbox.ingest(event)
    typer.echo(
        json.dumps(
            {
                "duplicate": accepted.duplicate,
                "record_id": accepted.record_id,
                "conversation_id": processed.conversation_id if processed else None,
                "kind": processed.classification.kind.value if processed else None,
            },
            ensure_ascii=False,
        )
    )
    rt.dispose()


@sla_app.command("scan")
def sla_scan() -> None:
    """Run one deadline scan now: record warnings and breaches, print them."""
    from inbox.scheduler import run_sla_scan

    rt = _runtime()
    result = run_sla_scan(rt)
    rt.dispose()
    if result is None:
        typer.echo("another process is scanning right now")
        return
    typer.echo(json.dumps({"warned": result.warned, "breached": result.breached}))


@demo_app.command("load")
def demo_load() -> None:
    """Create demo operators and a morning of demo appeals (idempotent)."""
    from inbox.demo import DEMO_OPERATORS, load_demo

    rt = _runtime()
    operators, events = load_demo(rt)
    rt.dispose()
    typer.echo(f"demo: {operators} operators created, {events} events ingested")
    for login, _name, role, password in DEMO_OPERATORS:
        typer.echo(f"  {role.value:<10} login {login:<9} password {password}")


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
) -> None:
    """Start the web app, the enabled channel adapters and the scheduler."""
    import uvicorn

    from inbox.web.app import create_app
    from inbox.web.proxies import uvicorn_proxy_options

    configure_logging()
    _refuse_unsafe_settings(web=True, host=host)
    # Built here, not in the app's start-up: a broken rules or profile file is then one line
    # and exit 2 (``_runtime``), not uvicorn's start-up traceback.
    rt = _runtime()
    try:
        uvicorn.run(
            create_app(rt),
            host=host or rt.settings.host,
            port=port or rt.settings.port,
            timeout_graceful_shutdown=5,  # open live-update streams must not hold a shutdown
            **uvicorn_proxy_options(rt.settings),
        )
    finally:
        rt.dispose()


@app.command("worker")
def worker() -> None:
    """Process the journal, deliver the outbox and run the scheduled jobs, without the web
    (with OTKLIK_PROCESSING=worker and OTKLIK_BACKGROUND=off for otklik serve)."""
    import asyncio

    from inbox.worker import run_worker

    configure_logging()
    _refuse_unsafe_settings(web=False)
    rt = _runtime()
    settings = rt.settings
    typer.echo(
        f"otklik worker: {settings.effective_database_url.split('@')[-1]}, "
        f"OTKLIK_PROCESSING={settings.processing}, OTKLIK_BACKGROUND={settings.background}",
        err=True,
    )
    try:
        asyncio.run(run_worker(rt))
    finally:
        rt.dispose()


def main() -> None:
    from pydantic import ValidationError

    from inbox.startup_checks import settings_error

    try:
        app()
    except RulesFileError as exc:
        typer.echo(f"otklik: {exc}", err=True)
        sys.exit(2)
    except ValidationError as exc:  # an OTKLIK_* variable that is not a valid value
        typer.echo(f"otklik: {settings_error(exc)}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
