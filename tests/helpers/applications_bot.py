"""Posting a VK event to the web app (applications and complaints bot suites)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient


def vk_post(client: TestClient, name: str, counter: list[int], **message: Any) -> None:
    from tests.helpers.payloads import payload

    data: dict[str, Any] = json.loads(payload("vk", name))
    counter[0] += 1
    data["event_id"] = f"appl-{counter[0]:040d}"
    data["object"]["message"].update(message)
    assert client.post("/webhooks/vk", json=data).text == "ok"
