"""A citizen talking to the bot over VK: send a message, read the bot's answers."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from core.clock import FrozenClock
from inbox.models import Message
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.citizen_harness import citizen_bot
from tests.helpers.payloads import payload
from tests.helpers.vk import vk_settings

PEER = 512345678  # the citizen in tests/payloads/vk/message_new.json


_event_ids = itertools.count(1)


@pytest.fixture
def vk_runtime(runtime: Runtime) -> Runtime:
    return vk_settings(runtime)


@pytest.fixture
def client(vk_runtime: Runtime, clock: FrozenClock) -> Iterator[TestClient]:
    app = create_app(vk_runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(vk_runtime, clock)
    with TestClient(app) as client:
        yield client


def vk_event(name: str, **message: Any) -> dict[str, Any]:
    """A real-format Callback API event with a fresh ``event_id`` and changed message fields."""
    data: dict[str, Any] = json.loads(payload("vk", name))
    data["event_id"] = f"test-{next(_event_ids):040d}"
    if "message" in data["object"]:
        data["object"]["message"].update(message)
    return data


def say(client: TestClient, text: str, **message: Any) -> None:
    answer = client.post("/webhooks/vk", json=vk_event("message_new.json", text=text, **message))
    assert answer.status_code == 200 and answer.text == "ok"


def press(client: TestClient, button_id: str, label: str = "…") -> None:
    data = vk_event("message_new_button.json", payload=json.dumps({"id": button_id}), text=label)
    answer = client.post("/webhooks/vk", json=data)
    assert answer.status_code == 200 and answer.text == "ok"


def bot_answers(runtime: Runtime) -> list[Message]:
    with runtime.factory() as session:
        return list(
            session.exec(
                select(Message).where(Message.direction == "out").order_by(col(Message.id))
            )
        )
