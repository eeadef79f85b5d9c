"""Wiring of the VK and phone channels into the web app: routers, outbox senders, jobs.

A channel without its settings is off: VK needs ``OTKLIK_VK_TOKEN``, ``OTKLIK_VK_GROUP_ID``,
``OTKLIK_VK_CONFIRMATION`` and ``OTKLIK_VK_SECRET`` (monitoring also ``OTKLIK_VK_SEARCH_TOKEN``);
the phone robot needs ``OTKLIK_PHONE_SECRET``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from apscheduler.schedulers.base import BaseScheduler
from fastapi import FastAPI

from core.config import Settings
from inbox.outbox import PLATFORM_RATES, Outbox, SendFunc
from inbox.runtime import Runtime

log = logging.getLogger(__name__)


def include_routers(app: FastAPI, settings: Settings) -> None:
    if settings.vk_enabled:
        from bot.vk.callback import router as vk_router

        app.include_router(vk_router)
    if settings.phone_secret:
        from bot.phone.webhook import router as phone_router

        app.include_router(phone_router)


def senders(settings: Settings) -> dict[str, SendFunc]:
    found: dict[str, SendFunc] = {}
    if settings.vk_enabled:
        from bot.vk.api import VkClient
        from bot.vk.sender import VkSender

        assert settings.vk_group_id is not None
        client = VkClient.from_settings(settings, settings.vk_token)
        found["vk"] = VkSender(client, settings.vk_group_id)
    if settings.phone_secret:
        from bot.phone.webhook import phone_sender

        found["phone"] = phone_sender
    return found


def start(app: FastAPI, runtime: Runtime, scheduler: BaseScheduler | None) -> None:
    """At app start-up: load the knowledge base now (a fraction of a second) rather than on
    the first call, when the phone robot is on, and add the channel jobs to the scheduler."""
    if runtime.settings.phone_secret and getattr(app.state, "phone_robot", None) is None:
        from bot.phone.webhook import build_robot

        app.state.phone_robot = build_robot(runtime)
        runtime.kb.get()
    if scheduler is not None:
        add_jobs(scheduler, runtime)


def channel_outbox(runtime: Runtime, channel_senders: dict[str, SendFunc]) -> Outbox:
    """The outbox of these channels, paced like the worker's (VK: ``PLATFORM_RATES``)."""
    return Outbox(
        runtime.factory, runtime.clock, channel_senders,
        lease=timedelta(seconds=runtime.settings.outbox_lease), rates=PLATFORM_RATES,
    )  # fmt: skip


def add_jobs(scheduler: BaseScheduler, runtime: Runtime, *, with_outbox: bool = True) -> None:
    """The outbox worker for these channels (unless ``with_outbox`` is false: ``otklik worker``
    has one outbox loop for every channel) and VK monitoring, on the given scheduler."""
    settings = runtime.settings
    channel_senders = senders(settings)
    if channel_senders and with_outbox:
        outbox = channel_outbox(runtime, channel_senders)

        def deliver() -> None:
            report = asyncio.run(outbox.deliver_once())
            if report.failed:
                log.warning("outbox: %d replies failed for good", len(report.failed))

        scheduler.add_job(
            deliver, "interval", seconds=settings.outbox_interval, id="outbox-vk-phone",
            name="outbox: vk, phone", max_instances=1, coalesce=True,
        )  # fmt: skip
    if settings.vk_enabled and settings.vk_search_token:
        from bot.vk.api import VkClient
        from bot.vk.monitor import VkMonitor

        search = VkClient.from_settings(settings, settings.vk_search_token)
        scheduler.add_job(
            VkMonitor(runtime, search).run_once, "interval",
            seconds=settings.vk_monitor_interval, id="vk-monitor", name="vk: mention search",
            max_instances=1, coalesce=True,
        )  # fmt: skip
