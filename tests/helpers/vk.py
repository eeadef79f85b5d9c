"""VK Callback API helpers shared by the suites: settings, events, the journal."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from sqlmodel import select

from inbox.models import InboundRecord
from inbox.runtime import Runtime
from tests.helpers.payloads import payload

SECRET = "s3cr3t-callback"  # the secret in tests/payloads/vk


def vk_settings(runtime: Runtime) -> Runtime:
    settings = runtime.settings.model_copy(
        update={
            "vk_token": "vk1.a.group-token",
            "vk_group_id": 200000001,
            "vk_confirmation": "3f2a9c1b",
            "vk_secret": SECRET,
        }
    )
    return dataclasses.replace(runtime, settings=settings)


def event(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(payload("vk", name))
    data.update(changes)
    return data


def journal(runtime: Runtime) -> list[InboundRecord]:
    with runtime.factory() as session:
        return list(session.exec(select(InboundRecord).where(InboundRecord.channel == "vk")))
