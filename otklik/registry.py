"""The channel registry: every channel the app knows, in one list.

A channel is a folder in ``bot/`` (parser, webhook router, sender) plus one line in
``CHANNELS`` below; everything that used to be wired by hand per channel (the web app's
routers, the outbox senders of the web app, of ``otklik worker`` and of the polling commands,
the scheduler's channel jobs, start-up work) is read from here. docs/architecture.md has the
checklist for a new channel.

Channel modules are imported only when the channel is used (``"module:attribute"`` strings),
so an app without VK never imports ``vk_api``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from apscheduler.schedulers.base import BaseScheduler
from fastapi import APIRouter, FastAPI
from maxapi import Bot as MaxBot

from core.config import Settings
from core.events import Channel as ChannelName
from inbox.outbox import SendFunc
from inbox.runtime import Runtime


@dataclass(frozen=True)
class Clients:
    """Platform clients that hold an HTTP session and are shared between the webhook side and
    the sender (the web app keeps them on ``app.state``, tests put their own there)."""

    telegram: Bot | None = None
    max: MaxBot | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, telegram: Bot | None = None, max: MaxBot | None = None
    ) -> Clients:
        """The clients the settings switch on; ``telegram`` or ``max`` given (tests) are used
        instead of building one."""
        from bot.max.client import make_bot

        if telegram is None and settings.telegram_token:
            telegram = Bot(settings.telegram_token)
        if max is None and settings.max_token:
            max = make_bot(settings)
        return cls(telegram=telegram, max=max)

    @classmethod
    def of_app(cls, app: FastAPI) -> Clients:
        from bot.max.app import max_bot
        from bot.telegram.app import telegram_bot

        return cls(telegram=telegram_bot(app), max=max_bot(app))

    async def close(self) -> None:
        if self.telegram is not None:
            await self.telegram.session.close()
        if self.max is not None:
            await self.max.close_session()


SenderFactory = Callable[[Runtime, Clients], SendFunc | None]
JobsFactory = Callable[[BaseScheduler, Runtime], None]
StartHook = Callable[[FastAPI, Runtime], None]


@dataclass(frozen=True)
class Channel:
    """How one channel plugs into the app.

    ``router`` (``"module:attribute"``) is mounted when the channel is ``enabled``.
    ``sender`` returns the outbox sender; a channel without one (the web chat: its page
    fetches its messages) has ``sender=None``. ``jobs`` adds scheduler jobs, ``start`` runs at
    app start-up; both only for an enabled channel.

    ``by_client``: the channel is on exactly when its platform client (``Clients``) exists,
    which a test may put on ``app.state`` without a token; so its router is always mounted
    (the webhook answers 404 itself while there is no client) and its sender is made
    whenever the client is there (the factory returns None without one)."""

    name: ChannelName
    enabled: Callable[[Settings], bool]
    router: str | None = None
    by_client: bool = False
    sender: SenderFactory | None = None
    jobs: JobsFactory | None = None
    start: StartHook | None = None

    def load_router(self) -> APIRouter | None:
        if self.router is None:
            return None
        found: APIRouter = _load(self.router)
        return found


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


# -- the channels' factories: each imports its channel only when called ---------------------


def _telegram_sender(runtime: Runtime, clients: Clients) -> SendFunc | None:
    from bot.telegram.sender import TelegramSender

    return TelegramSender(clients.telegram) if clients.telegram is not None else None


def _max_sender(runtime: Runtime, clients: Clients) -> SendFunc | None:
    from bot.max.sender import MaxSender

    if clients.max is None:
        return None
    return MaxSender(clients.max, runtime.settings.max_rate_per_second)


def _vk_sender(runtime: Runtime, clients: Clients) -> SendFunc | None:
    from bot.vk.api import VkClient
    from bot.vk.sender import VkSender

    settings = runtime.settings
    assert settings.vk_group_id is not None  # vk_enabled
    return VkSender(VkClient.from_settings(settings, settings.vk_token), settings.vk_group_id)


def _vk_jobs(scheduler: BaseScheduler, runtime: Runtime) -> None:
    settings = runtime.settings
    if not settings.vk_search_token:
        return
    from bot.vk.api import VkClient
    from bot.vk.monitor import VkMonitor

    search = VkClient.from_settings(settings, settings.vk_search_token)
    scheduler.add_job(
        VkMonitor(runtime, search).run_once, "interval",
        seconds=settings.vk_monitor_interval, id="vk-monitor", name="vk: mention search",
        max_instances=1, coalesce=True,
    )  # fmt: skip


def _phone_sender(runtime: Runtime, clients: Clients) -> SendFunc | None:
    from bot.phone.webhook import phone_sender

    return phone_sender


def _phone_start(app: FastAPI, runtime: Runtime) -> None:
    """Load the knowledge base now (a fraction of a second) rather than on the first call."""
    if getattr(app.state, "phone_robot", None) is None:
        from bot.phone.webhook import build_robot

        app.state.phone_robot = build_robot(runtime)
        runtime.kb.get()


def _email_sender(runtime: Runtime, clients: Clients) -> SendFunc | None:
    from bot.email.channel import smtp_config
    from bot.email.send import SmtpSender

    return SmtpSender(smtp_config(runtime.settings), runtime.factory, runtime.clock)


def _always(settings: Settings) -> bool:
    return True


CHANNELS: tuple[Channel, ...] = (
    Channel(ChannelName.telegram, lambda s: bool(s.telegram_token),
            router="bot.telegram.webhook:router", by_client=True, sender=_telegram_sender),
    Channel(ChannelName.max, lambda s: bool(s.max_token),
            router="bot.max.webhook:router", by_client=True, sender=_max_sender),
    Channel(ChannelName.webchat, _always, router="bot.webchat.routes:router"),
    Channel(ChannelName.vk, lambda s: s.vk_enabled,
            router="bot.vk.callback:router", sender=_vk_sender, jobs=_vk_jobs),
    Channel(ChannelName.phone, lambda s: bool(s.phone_secret),
            router="bot.phone.webhook:router", sender=_phone_sender, start=_phone_start),
    # The mailbox reader is a task of its own (bot.email.channel), not a router.
    Channel(ChannelName.email, lambda s: s.email_enabled, sender=_email_sender),
)  # fmt: skip


def by_name(name: str | ChannelName) -> Channel:
    for channel in CHANNELS:
        if channel.name == name:
            return channel
    raise KeyError(name)


def mount(app: FastAPI, settings: Settings) -> None:
    """Include the webhook routers of the channels."""
    for channel in CHANNELS:
        if channel.by_client or channel.enabled(settings):
            router = channel.load_router()
            if router is not None:
                app.include_router(router)


def senders(runtime: Runtime, clients: Clients | None = None) -> dict[str, SendFunc]:
    """The outbox senders of every enabled channel that can send now."""
    clients = clients or Clients()
    found: dict[str, SendFunc] = {}
    for channel in CHANNELS:
        if channel.sender is None:
            continue
        if not (channel.by_client or channel.enabled(runtime.settings)):
            continue
        sender = channel.sender(runtime, clients)
        if sender is not None:
            found[channel.name.value] = sender
    return found


def add_jobs(scheduler: BaseScheduler, runtime: Runtime) -> None:
    """The scheduler jobs of every enabled channel (VK mention monitoring)."""
    for channel in CHANNELS:
        if channel.jobs is not None and channel.enabled(runtime.settings):
            channel.jobs(scheduler, runtime)


def start(app: FastAPI, runtime: Runtime) -> None:
    """Start-up work of every enabled channel (the phone robot's knowledge base)."""
    for channel in CHANNELS:
        if channel.start is not None and channel.enabled(runtime.settings):
            channel.start(app, runtime)
