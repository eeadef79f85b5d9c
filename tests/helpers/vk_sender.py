"""Queueing operator replies and building the VK sender against the fake VK API."""

from __future__ import annotations

from bot.normalize import normalize
from bot.vk.api import VkClient
from bot.vk.sender import VkSender
from core.clock import FrozenClock
from core.events import Channel
from inbox import workflow
from inbox.models import Conversation, Message
from inbox.runtime import Runtime
from tests.helpers.payloads import payload

GROUP_ID = 200000001


def sender_for(api_url: str) -> VkSender:
    client = VkClient("vk1.a.group-token", api_version="5.199", base_url=api_url)
    client.api.RPS_DELAY = 0  # vk-api's own pacing (3 calls a second) only slows the tests
    return VkSender(client, GROUP_ID)


def queue_reply(
    runtime: Runtime, clock: FrozenClock, name: str, text: str, buttons: list | None = None
) -> Message:
    event = normalize(Channel.vk, payload("vk", name), runtime.profile)
    _, processed = runtime.inbox.ingest(event.model_copy(update={"published_at": clock.now()}))
    assert processed and processed.conversation_id
    with runtime.factory() as session:
        conversation = session.get(Conversation, processed.conversation_id)
        assert conversation
        message = workflow.reply(session, conversation, text, clock.now())
        if buttons:
            message.meta = {"buttons": buttons}
        session.commit()
        return message
