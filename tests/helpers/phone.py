"""Phone (telephony webhook) helpers: call events, posting them, a small KB."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from bot.phone.signature import sign
from core.clock import FrozenClock
from knowledge_base.entries import KBEntry
from knowledge_base.search import KnowledgeBase
from tests.helpers.payloads import payload

SECRET = "phone-shared-secret"


AGENCY = "Департамент городского хозяйства"


HOT_WATER = "Горячую воду отключили на ремонт. Её включат до конца недели."


POTHOLE = "Спасибо, что сообщили. Мы передадим заявку дорожной службе."


def small_kb() -> KnowledgeBase:
    def entry(id: str, topic: str, question: str, phrasings: list[str], short: str) -> KBEntry:
        return KBEntry(
            id=id, topic=topic, life_situation="Дом", question=question, phrasings=phrasings,
            short_answer=short, full_answer=short, department="Диспетчерская",
        )  # fmt: skip

    return KnowledgeBase(
        [
            entry("hot-water", "ЖКХ", "Нет горячей воды", ["отключили горячую воду"], HOT_WATER),
            entry("pothole", "Дворы и дороги", "Яма на дороге", ["яма во дворе"], POTHOLE),
        ]
    )


def call_event(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(payload("phone", name))
    data.update(changes)
    return data


def post(
    client: TestClient,
    clock: FrozenClock,
    data: dict[str, Any],
    *,
    secret: str = SECRET,
    age: timedelta = timedelta(0),
) -> Any:
    body = json.dumps(data, ensure_ascii=False).encode()
    timestamp = int((clock.now() - age).timestamp())
    headers = {
        "Content-Type": "application/json",
        "X-Otklik-Timestamp": str(timestamp),
        "X-Otklik-Signature": sign(secret, timestamp, body),
    }
    return client.post("/webhooks/phone", content=body, headers=headers)
