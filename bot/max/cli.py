"""``otklik max ...``: long polling (no public URL needed) and webhook subscription."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from maxapi import Bot
from maxapi.enums.update import UpdateType
from maxapi.exceptions.max import MaxError

from bot.citizen.app import answer_with
from bot.citizen.engine import CitizenBot
from bot.delivery import Delivery
from bot.max.client import make_bot
from bot.max.pipeline import MaxPipeline
from bot.max.sender import MaxSender
from core.config import get_settings
from core.events import PayloadError
from inbox.logging import configure as configure_logging

log = logging.getLogger(__name__)
max_app = typer.Typer(help="MAX bot: long polling, webhook.", no_args_is_help=True)

#: The update kinds Otklik reads (``comment_created``: comments under the channel's posts,
#: which ``maxapi`` 1.2.3 has no enum member for).
UPDATE_TYPES = [
    UpdateType.MESSAGE_CREATED.value,
    UpdateType.MESSAGE_EDITED.value,
    UpdateType.MESSAGE_CALLBACK.value,
    UpdateType.BOT_STARTED.value,
    UpdateType.BOT_ADDED.value,
    UpdateType.BOT_REMOVED.value,
    "comment_created",
    "comment_edited",
]
#: Seconds MAX holds a long-polling request open when there is nothing new.
POLL_TIMEOUT = 30


async def poll(pipeline: MaxPipeline, bot: Bot, rounds: int | None = None) -> None:
    """Fetch updates with ``GET /updates`` and put each through the pipeline.

    The ``marker`` (MAX's acknowledgement) moves past a batch only after every update of it
    is journalled; if the database is down, the same updates are fetched again later and the
    journal drops the ones it already has.
    """
    marker: int | None = None
    done = 0
    while rounds is None or done < rounds:
        done += 1
        try:
            answer: dict[str, Any] = await bot.get_updates(
                marker=marker,
                timeout=POLL_TIMEOUT,
                types=UPDATE_TYPES,  # type: ignore[arg-type]  # sent as strings
            )
        except MaxError as exc:
            log.warning("MAX GET /updates failed, trying again: %s", exc)
            await asyncio.sleep(5)
            continue
        journalled = True
        for data in answer.get("updates") or []:
            try:
                event = pipeline.parse(data)
            except PayloadError as exc:
                log.error("MAX update dropped: %s", exc)
                continue
            try:
                accepted = await pipeline.accept(event)
            except sa.exc.SQLAlchemyError:
                log.exception("journal unavailable; MAX updates will be fetched again")
                journalled = False
                await asyncio.sleep(5)
                break
            await pipeline.finish(accepted, event)
        if journalled and isinstance(answer.get("marker"), int):
            marker = answer["marker"]


@max_app.command("poll")
def poll_command() -> None:
    """Run the bot with long polling (MAX refuses it while a webhook subscription exists:
    remove that first with ``otklik max delete-webhook``), with the outbox worker."""
    from inbox.runtime import build_runtime

    settings = get_settings()
    if not settings.max_token:
        typer.echo("otklik: set OTKLIK_MAX_TOKEN (the bot's token from business.max.ru)", err=True)
        raise typer.Exit(2)
    configure_logging()
    runtime = build_runtime(settings)

    async def run() -> None:
        bot = make_bot(settings)
        citizen = CitizenBot.from_settings(
            runtime.factory, runtime.clock, runtime.rules_source, settings, kb=runtime.kb
        )
        sender = MaxSender(bot, settings.max_rate_per_second)
        worker = asyncio.create_task(Delivery(runtime, {"max": sender}, citizen).forever(1.0))
        try:
            answer_with(runtime, citizen.handle_pending)  # as the web app and the worker do
            runtime.inbox.process_pending()
            await poll(MaxPipeline(runtime, citizen, bot), bot)
        finally:
            worker.cancel()
            with suppress(asyncio.CancelledError):
                await worker
            await bot.close_session()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        runtime.dispose()


@max_app.command("set-webhook")
def set_webhook(
    url: Annotated[str, typer.Argument(help="Public HTTPS URL ending in /webhooks/max")],
) -> None:
    """Subscribe ``URL`` to the bot's updates with the secret OTKLIK_MAX_WEBHOOK_SECRET."""
    settings = get_settings()
    if not settings.max_token or not settings.max_webhook_secret:
        typer.echo("otklik: set OTKLIK_MAX_TOKEN and OTKLIK_MAX_WEBHOOK_SECRET first", err=True)
        raise typer.Exit(2)
    if not url.startswith("https://"):
        typer.echo("otklik: MAX delivers webhooks over HTTPS only", err=True)
        raise typer.Exit(2)

    async def run() -> None:
        bot = make_bot(settings)
        try:
            await bot.subscribe_webhook(
                url,
                update_types=UPDATE_TYPES,  # type: ignore[arg-type]  # sent as strings
                secret=settings.max_webhook_secret,
            )
        finally:
            await bot.close_session()

    try:
        asyncio.run(run())
    except (MaxError, ValueError) as exc:  # ValueError: a secret maxapi finds too short/long
        typer.echo(f"otklik: MAX refused the subscription: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"webhook set: {url}")


@max_app.command("delete-webhook")
def delete_webhook() -> None:
    """Remove every webhook subscription of the bot (long polling works again)."""
    settings = get_settings()
    if not settings.max_token:
        typer.echo("otklik: set OTKLIK_MAX_TOKEN first", err=True)
        raise typer.Exit(2)

    async def run() -> list[str]:
        bot = make_bot(settings)
        try:
            found = await bot.get_subscriptions()
            urls = [s.url for s in found.subscriptions or []]
            for url in urls:
                await bot.unsubscribe_webhook(url)
            return urls
        finally:
            await bot.close_session()

    try:
        removed = asyncio.run(run())
    except MaxError as exc:
        typer.echo(f"otklik: MAX refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("\n".join(f"webhook removed: {u}" for u in removed) or "no webhook was set")
