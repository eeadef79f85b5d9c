"""The ``otklik`` command. Each area registers its own sub-commands here."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Annotated, Any

import typer

from core.config import get_settings
from core.events import Channel, PayloadError
from inbox.logging import configure as configure_logging
from inbox.logging import install as install_log_filter
from otklik.triage import triage
from rules.errors import RulesFileError

#: The sub-command groups of other packages: name -> (module, its Typer, the Typer's help).
#: A command line imports only the group it names (aiogram alone takes seconds to import, the
#: ORM most of a second), so ``otklik --help``, ``otklik triage`` and ``otklik kb search``
#: start at once; ``otklik --help`` lists the others by their help text, which a test keeps
#: equal to the Typer's own.
GROUPS: dict[str, tuple[str, str, str]] = {
    "operator": ("inbox.operators_cli", "operator_app", "Operator accounts."),
    "application": (
        "inbox.application_cli", "application_app", "Citizens' applications and their status."
    ),
    "token": (
        "inbox.application_cli", "token_app", "API tokens of the agency's back-office systems."
    ),
    "complaint": (
        "inbox.complaint_cli", "complaint_app", "Shared complaints (+1) and their status."
    ),
    "consent": ("inbox.consent_cli", "consent_app", "Consents to proactive service."),
    "mailing": ("inbox.consent_cli", "mailing_app", "Mailings to subscribers of a topic."),
    "kb": ("inbox.kb_cli", "kb_app", "Knowledge base: search the FAQ, validate entries."),
    "text": ("knowledge_base.cli", "text_app", "Readability of Russian answers."),
    "rasa": (
        "knowledge_base.rasa_cli", "rasa_app",
        "Rasa NLU: export the knowledge base, parse with a Rasa server.",
    ),
    "phone": ("bot.phone.cli", "phone_app", "Phone-robot webhook."),
    "telegram": ("bot.telegram.cli", "telegram_app", "Telegram bot: long polling, webhook."),
    "max": ("bot.max.cli", "max_app", "MAX bot: long polling, webhook."),
    "email": ("bot.email.cli", "email_app", "The email channel (IMAP in, SMTP out)."),
    "journal": (
        "inbox.journal_cli", "journal_app", "The inbound journal: events whose processing failed."
    ),
}  # fmt: skip

root = typer.Typer(
    name="otklik",
    help="Otklik: omnichannel contact centre for public agencies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
root.command("triage")(triage)

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
sla_app = typer.Typer(help="Response deadlines.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
root.add_typer(db_app, name="db")
root.add_typer(sla_app, name="sla")
root.add_typer(demo_app, name="demo")
_registered = False


def load_group(name: str) -> typer.Typer:
    module, attribute, _help = GROUPS[name]
    group: typer.Typer = getattr(importlib.import_module(module), attribute)
    return group


def _register(load: set[str]) -> typer.Typer:
    """Add the groups to ``root``: the whole of those in ``load``, the others as empty groups
    with their help text (listed by ``--help``, never run)."""
    global _registered
    if not _registered:
        for name, (_module, _attribute, summary) in GROUPS.items():
            if name in load:
                root.add_typer(load_group(name), name=name)
            else:
                root.add_typer(typer.Typer(help=summary, no_args_is_help=True), name=name)
        _registered = True
    return root


def __getattr__(name: str) -> Any:
    """``app``: the complete command (tests and tools run any sub-command through it)."""
    if name == "app":
        return _register(set(GROUPS))
    raise AttributeError(name)


def _named_group(argv: list[str]) -> set[str]:
    """The group the command line names (its first word that is not an option), if any."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return {first} if first in GROUPS else set()


@root.callback()
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


@root.command("ingest")
def ingest(
    channel: Annotated[Channel, typer.Option(help="The channel whose native format PATH holds")],
    path: Annotated[str, typer.Argument(help="Payload file, or - for standard input")] = "-",
) -> None:
    """Store one native payload in the inbox (deduplicated) and print what happened."""
    from bot.normalize import normalize
    from otklik.triage import _read

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
    from inbox.demo_accounts import DEMO_OPERATORS
    from otklik.demo import load_demo

    rt = _runtime()
    operators, events = load_demo(rt)
    rt.dispose()
    typer.echo(f"demo: {operators} operators created, {events} events ingested")
    for login, _name, role, password in DEMO_OPERATORS:
        typer.echo(f"  {role.value:<10} login {login:<9} password {password}")


@root.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
) -> None:
    """Start the web app, the enabled channel adapters and the scheduler."""
    import uvicorn

    from inbox.web.proxies import uvicorn_proxy_options
    from otklik.web import create_app

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


@root.command("worker")
def worker() -> None:
    """Process the journal, deliver the outbox and run the scheduled jobs, without the web
    (with OTKLIK_PROCESSING=worker and OTKLIK_BACKGROUND=off for otklik serve)."""
    import asyncio

    from otklik.worker import run_worker

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

    app = _register(_named_group(sys.argv[1:]))
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
