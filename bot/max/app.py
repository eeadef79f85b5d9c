"""The MAX bot of a web app (on only when ``OTKLIK_MAX_TOKEN`` is set), kept on ``app.state``,
and the pipeline its webhook runs."""

from __future__ import annotations

from fastapi import FastAPI
from maxapi import Bot

from bot.citizen.app import app_runtime, citizen_bot
from bot.max.client import make_bot
from bot.max.pipeline import MaxPipeline


def max_bot(app: FastAPI) -> Bot | None:
    found: Bot | None = getattr(app.state, "max_bot", None)
    if found is None and app_runtime(app).settings.max_token:
        found = make_bot(app_runtime(app).settings)
        app.state.max_bot = found
    return found


def max_pipeline(app: FastAPI) -> MaxPipeline | None:
    bot = max_bot(app)
    if bot is None:
        return None
    return MaxPipeline(app_runtime(app), citizen_bot(app), bot)
