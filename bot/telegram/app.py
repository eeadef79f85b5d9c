"""The Telegram bot of a web app (on only when ``OTKLIK_TELEGRAM_TOKEN`` is set), kept on
``app.state``, and the pipeline its webhook runs."""

from __future__ import annotations

from aiogram import Bot
from fastapi import FastAPI

from bot.citizen.app import app_runtime, citizen_bot
from bot.telegram.pipeline import TelegramPipeline


def telegram_bot(app: FastAPI) -> Bot | None:
    found: Bot | None = getattr(app.state, "telegram_bot", None)
    if found is None and app_runtime(app).settings.telegram_token:
        found = Bot(app_runtime(app).settings.telegram_token)
        app.state.telegram_bot = found
    return found


def telegram_pipeline(app: FastAPI) -> TelegramPipeline | None:
    bot = telegram_bot(app)
    if bot is None:
        return None
    return TelegramPipeline(app_runtime(app), citizen_bot(app), bot)
