"""``otklik telegram ...``: long polling (no public URL needed) and webhook registration."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Annotated

import sqlalchemy as sa
import typer
from aiogram import Bot

from bot.citizen.app import answer_with
from bot.citizen.engine import CitizenBot
from bot.delivery import Delivery
from bot.telegram.pipeline import TelegramPipeline
from bot.telegram.sender import TelegramSender
from core.config import get_settings
from core.events import PayloadError
from inbox.logging import configure as configure_logging

log = logging.getLogger(__name__)
telegram_app = typer.Typer(help="Telegram bot: long polling, webhook.", no_args_is_help=True)

#: The update kinds Otklik reads; everything else Telegram may keep to itself.
ALLOWED_UPDATES = [
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
]


async def poll(pipeline: TelegramPipeline, bot: Bot, rounds: int | None = None) -> None:
    """Fetch updates with getUpdates and put each through the pipeline.

    The next ``offset`` (Telegram's acknowledgement) moves past an update only after it is
    journalled; if the database is down, the same updates are fetched again later.
    """
    offset: int | None = None
    done = 0
    while rounds is None or done < rounds:
        done += 1
        updates = await bot.get_updates(offset=offset, timeout=25, allowed_updates=ALLOWED_UPDATES)
        for update in updates:
            data = update.model_dump(mode="json", by_alias=True, exclude_none=True)
            try:
                event = pipeline.parse(data)
            except PayloadError as exc:
                log.error("update %s dropped: %s", update.update_id, exc)
                offset = update.update_id + 1
                continue
            try:
                accepted = await pipeline.accept(event)
            except sa.exc.SQLAlchemyError:
                log.exception(
                    "journal unavailable; update %s will be fetched again", update.update_id
                )
                await asyncio.sleep(5)
                break
            offset = update.update_id + 1
            await pipeline.finish(accepted, event)


@telegram_app.command("poll")
def poll_command() -> None:
    """Run the bot with long polling (removes a webhook if one is set), with the outbox worker."""
    from inbox.runtime import build_runtime

    settings = get_settings()
    if not settings.telegram_token:
        typer.echo("otklik: set OTKLIK_TELEGRAM_TOKEN (the token from @BotFather)", err=True)
        raise typer.Exit(2)
    configure_logging()
    runtime = build_runtime(settings)

    async def run() -> None:
        bot = Bot(settings.telegram_token)
        citizen = CitizenBot.from_settings(
            runtime.factory, runtime.clock, runtime.rules_source, settings
        )
        delivery = Delivery(runtime, {"telegram": TelegramSender(bot)}, citizen)
        worker = asyncio.create_task(delivery.forever(1.0))
        try:
            await bot.delete_webhook(drop_pending_updates=False)
            answer_with(runtime, citizen.handle_pending)  # as the web app and the worker do
            runtime.inbox.process_pending()
            await poll(TelegramPipeline(runtime, citizen, bot), bot)
        finally:
            worker.cancel()
            with suppress(asyncio.CancelledError):
                await worker
            await bot.session.close()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        runtime.dispose()


@telegram_app.command("set-webhook")
def set_webhook(
    url: Annotated[str, typer.Argument(help="Public HTTPS URL ending in /webhooks/telegram")],
) -> None:
    """Register the webhook with the secret token from OTKLIK_TELEGRAM_WEBHOOK_SECRET."""
    settings = get_settings()
    if not settings.telegram_token or not settings.telegram_webhook_secret:
        typer.echo(
            "otklik: set OTKLIK_TELEGRAM_TOKEN and OTKLIK_TELEGRAM_WEBHOOK_SECRET first", err=True
        )
        raise typer.Exit(2)

    async def run() -> None:
        bot = Bot(settings.telegram_token)
        try:
            await bot.set_webhook(
                url, secret_token=settings.telegram_webhook_secret, allowed_updates=ALLOWED_UPDATES
            )
        finally:
            await bot.session.close()

    asyncio.run(run())
    typer.echo(f"webhook set: {url}")
