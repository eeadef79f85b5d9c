"""``otklik email …``: run the email channel by hand."""

from __future__ import annotations

import asyncio
import json

import typer

email_app = typer.Typer(help="The email channel (IMAP in, SMTP out).", no_args_is_help=True)


@email_app.command("poll")
def poll() -> None:
    """Read new letters from the mailbox once, then send queued letters; print what happened."""
    from bot.email.channel import EmailChannel
    from core.config import get_settings
    from inbox.runtime import build_runtime

    settings = get_settings()
    if not settings.email_enabled:
        typer.echo(
            "otklik: email is off: set OTKLIK_IMAP_HOST, OTKLIK_SMTP_HOST and OTKLIK_EMAIL_FROM",
            err=True,
        )
        raise typer.Exit(2)
    runtime = build_runtime(settings)
    try:
        polled, delivered = asyncio.run(EmailChannel.from_runtime(runtime).round())
    finally:
        runtime.dispose()
    typer.echo(
        json.dumps(
            {
                "fetched": polled.fetched,
                "stored": len(polled.stored),
                "duplicates": polled.duplicates,
                "acknowledged": len(polled.acknowledged),
                "rejected": len(polled.rejected),
                "own_copies": polled.own,
                "imap_error": polled.error,
                "sent": len(delivered.sent),
                "retried": len(delivered.retried),
                "failed": len(delivered.failed),
            },
            ensure_ascii=False,
        )
    )
    if polled.error:
        raise typer.Exit(1)
