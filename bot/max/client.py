"""The ``maxapi`` ``Bot`` Otklik uses: the settings' token and API URL, and no retries of its
own (the outbox retries, with backoff and a lease; a hidden retry inside one send would only
hold the outbox worker up). ``maxapi``'s HTTP session is made on first use, in the event loop
of the caller: one bot per loop, closed with ``close_session``."""

from __future__ import annotations

from maxapi import Bot
from maxapi.client.default import DefaultConnectionProperties

from core.config import Settings

#: Seconds a Bot API call may take; long polling asks MAX to hold a request up to 30 s.
TIMEOUT = 60.0


def make_bot(settings: Settings, *, retries: int = 0) -> Bot:
    if not settings.max_token:
        raise ValueError("OTKLIK_MAX_TOKEN is not set")
    bot = Bot(
        settings.max_token,
        default_connection=DefaultConnectionProperties(
            timeout=TIMEOUT, sock_connect=10, max_retries=retries
        ),
        auto_check_subscriptions=False,
    )
    if settings.max_api_url:
        bot.set_api_url(settings.max_api_url)
    return bot
