"""Synthetic but real-format traffic for load tests and benchmarks.

Payloads are the recorded native payloads of ``tests/payloads`` with the ids, authors, texts
and dates varied, so every one goes through the real parsers, rules and database path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.events import Channel
from tests.helpers.payloads import payload

TEXTS = (
    "Добрый день. Во дворе дома {n} не вывозят мусор уже неделю.",
    "Подскажите, куда обращаться, если в подъезде {n} не горит свет?",
    "Когда дадут горячую воду в доме {n}? Жильцы ждут третий день.",
    "Прошу отремонтировать дорогу у школы № {n}, ямы глубиной в колено.",
)


@dataclass(frozen=True)
class NativeEvent:
    channel: Channel
    external_id: str
    body: bytes


def _vk(n: int, threads: int, base_date: int) -> NativeEvent:
    data: dict[str, Any] = json.loads(payload("vk", "message_new.json"))
    author = 600_000_000 + n % threads
    data["event_id"] = f"load-vk-{n:09d}"
    message = data["object"]["message"]
    message.update(
        id=n, from_id=author, peer_id=author, date=base_date + n, text=TEXTS[n % 4].format(n=n)
    )
    return NativeEvent(Channel.vk, data["event_id"], json.dumps(data).encode())


def _telegram(n: int, threads: int, base_date: int) -> NativeEvent:
    data: dict[str, Any] = json.loads(payload("telegram", "private_message.json"))
    user = 700_000_000 + n % threads
    data["update_id"] = 900_000_000 + n
    message = data["message"]
    message.update(message_id=n, date=base_date + n, text=TEXTS[n % 4].format(n=n))
    message["from"]["id"] = message["chat"]["id"] = user
    return NativeEvent(Channel.telegram, str(data["update_id"]), json.dumps(data).encode())


def native_events(
    count: int, threads: int = 100, base_date: int = 1_763_895_600, start: int = 0
) -> Iterator[NativeEvent]:
    """``count`` private messages alternating VK and Telegram, over ``threads`` citizens each."""
    for n in range(start, start + count):
        yield (_vk if n % 2 else _telegram)(n, threads, base_date)
