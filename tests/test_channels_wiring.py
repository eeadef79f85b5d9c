"""The channel registry (``otklik.registry``): channels are switched on by their settings,
and the one outbox loop delivers VK replies through the configured API URL."""

from __future__ import annotations

import asyncio
import dataclasses

from aiogram import Bot
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi.testclient import TestClient

from bot.citizen.engine import CitizenBot
from bot.delivery import Delivery
from core.clock import FrozenClock
from inbox.runtime import Runtime
from otklik import registry
from otklik.web import create_app
from tests.helpers.vk_api_server import FakeVkApi
from tests.helpers.vk_sender import queue_reply

VK = {
    "vk_token": "vk1.a.group-token",
    "vk_group_id": 200000001,
    "vk_confirmation": "3f2a9c1b",
    "vk_secret": "s3cr3t-callback",
}


def with_settings(runtime: Runtime, **values: object) -> Runtime:
    return dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=values))


def job_ids(runtime: Runtime) -> set[str]:
    scheduler = BackgroundScheduler(timezone="UTC")
    registry.add_jobs(scheduler, runtime)
    return {job.id for job in scheduler.get_jobs()}


def test_no_settings_no_channels(runtime: Runtime) -> None:
    assert registry.senders(runtime) == {}
    assert job_ids(runtime) == set()


def test_every_channel_is_registered_once() -> None:
    from core.events import Channel as ChannelName

    assert sorted(c.name for c in registry.CHANNELS) == sorted(ChannelName)
    assert registry.by_name("vk").name == ChannelName.vk


def test_a_client_given_switches_its_channel_on(runtime: Runtime) -> None:
    # A test's Telegram client without a token: the sender is there, as the webhook is.
    clients = registry.Clients(telegram=Bot("123456:test-token"))
    assert set(registry.senders(runtime, clients)) == {"telegram"}


def test_vk_needs_all_four_settings(runtime: Runtime) -> None:
    partial = with_settings(runtime, **{**VK, "vk_secret": ""})
    assert registry.senders(partial) == {}
    full = with_settings(runtime, **VK)
    assert set(registry.senders(full)) == {"vk"}
    assert job_ids(full) == set()  # its replies go through the one outbox loop
    monitored = with_settings(runtime, **VK, vk_search_token="service-token")
    assert job_ids(monitored) == {"vk-monitor"}


def test_phone_needs_its_secret(runtime: Runtime) -> None:
    phone = with_settings(runtime, phone_secret="x")
    assert set(registry.senders(phone)) == {"phone"}
    app = create_app(phone, start_scheduler=False)
    with TestClient(app) as client:
        assert app.state.phone_robot.kb.entries  # the knowledge base is loaded at start-up
        assert client.post("/webhooks/phone", json={}).status_code == 401
        assert client.post("/webhooks/vk", json={}).status_code == 404


def test_the_outbox_loop_delivers_a_vk_reply_through_the_configured_api_url(
    runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi
) -> None:
    rt = with_settings(runtime, **VK, vk_api_url=vk_api.url)
    message = queue_reply(rt, clock, "message_new.json", "Ответ")
    vk_api.respond("messages.send", 2801)
    bot = CitizenBot.from_settings(rt.factory, rt.clock, rt.rules_source, rt.settings)
    delivery = Delivery(rt, registry.senders(rt), bot)
    report = asyncio.run(delivery.round())
    assert len(report.sent) == 1
    [params] = vk_api.calls("messages.send")
    assert params["peer_id"] == "512345678" and params["message"] == "Ответ"
    assert message.id is not None


def test_the_serve_outbox_paces_vk_like_the_worker(runtime: Runtime) -> None:
    """``otklik serve``'s VK and phone outbox keeps under VK's limit (docs/channels.md)."""
    rt = with_settings(runtime, **VK)
    bot = CitizenBot.from_settings(rt.factory, rt.clock, rt.rules_source, rt.settings)
    outbox = Delivery(rt, registry.senders(rt), bot).outbox
    assert outbox.rates["vk"] == 20.0 and "phone" not in outbox.rates
