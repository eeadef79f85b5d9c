"""Demo data: operators and a realistic morning of appeals, in each channel's native format.

Times are relative to now, so the demo always shows fresh items, items close to their
deadline and breached ones. Loading twice adds nothing (the events are deduplicated).
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlmodel import select

from bot.normalize import normalize
from core.events import Channel
from inbox.auth import hash_password
from inbox.demo_accounts import DEMO_OPERATORS
from inbox.models import Operator
from inbox.runtime import Runtime

GROUP_ID = 200000001
DISCUSSION_ID = -1002000000002
CHANNEL_ID = -1002000000001


def _num(key: str) -> int:
    """A stable small number from a string (demo message ids)."""
    return zlib.crc32(key.encode()) % 100_000


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _tg_private(update_id: int, user_id: int, name: str, text: str, at: datetime) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": name}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 10000,
            "from": user,
            "chat": {"id": user_id, "first_name": name, "type": "private"},
            "date": _ts(at),
            "text": text,
        },
    }


def _tg_comment(update_id: int, user_id: int, name: str, text: str, at: datetime) -> dict[str, Any]:
    channel = {"id": CHANNEL_ID, "title": "Департамент городского хозяйства",
               "username": "dgh_city", "type": "channel"}  # fmt: skip
    group = {"id": DISCUSSION_ID, "title": "ДГХ — обсуждение", "type": "supergroup"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 10000,
            "from": {"id": user_id, "is_bot": False, "first_name": name},
            "chat": group,
            "date": _ts(at),
            "message_thread_id": 1040,
            "reply_to_message": {
                "message_id": 1040, "sender_chat": channel, "chat": group,
                "date": _ts(at - timedelta(hours=1)), "is_automatic_forward": True,
                "forward_origin": {"type": "channel", "chat": channel, "message_id": 310,
                                   "date": _ts(at - timedelta(hours=1))},
                "text": "С 25 ноября на улице Мира ремонт теплотрассы.",
            },
            "text": text,
        },
    }  # fmt: skip


def _tg_group_mention(update_id: int, user_id: int, text: str, at: datetime) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 10000,
            "from": {"id": user_id, "is_bot": False, "first_name": "Сосед"},
            "chat": {"id": -1001777000000, "title": "Соседи ЖК Северный",
                     "username": "sever_sosedi", "type": "supergroup"},
            "date": _ts(at),
            "text": text,
        },
    }  # fmt: skip


def _vk_message(event_id: str, user_id: int, text: str, at: datetime) -> dict[str, Any]:
    return {
        "group_id": GROUP_ID, "type": "message_new", "event_id": event_id, "v": "5.199",
        "object": {"message": {"date": _ts(at), "from_id": user_id, "id": _num(event_id),
                               "peer_id": user_id, "text": text, "attachments": []},
                   "client_info": {"keyboard": True, "inline_keyboard": True, "lang_id": 0}},
    }  # fmt: skip


def _vk_comment(
    event_id: str, user_id: int, post_id: int, text: str, at: datetime
) -> dict[str, Any]:
    return {
        "group_id": GROUP_ID, "type": "wall_reply_new", "event_id": event_id, "v": "5.199",
        "object": {"id": _num(event_id), "from_id": user_id, "date": _ts(at),
                   "text": text, "post_owner_id": -GROUP_ID, "post_id": post_id,
                   "parents_stack": []},
    }  # fmt: skip


def _vk_post(post_id: int, owner_id: int, text: str, at: datetime) -> dict[str, Any]:
    return {"id": post_id, "owner_id": owner_id, "from_id": owner_id, "date": _ts(at),
            "post_type": "post", "text": text}  # fmt: skip


def _email(msgid: str, sender: str, name: str, subject: str, body: str, at: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = "priem@dgh.example"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = f"<{msgid}>"
    msg.set_content(body, charset="windows-1251", cte="8bit")
    return msg.as_bytes()


def _phone(event_id: str, call_id: str, text: str, at: datetime) -> dict[str, Any]:
    return {"event_id": event_id, "type": "call.utterance", "call_id": call_id,
            "timestamp": at.isoformat(), "caller": "+79035550101", "text": text,
            "confidence": 0.91}  # fmt: skip


def demo_payloads(now: datetime) -> list[tuple[Channel, bytes]]:
    m = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    j = lambda data: json.dumps(data, ensure_ascii=False).encode()  # noqa: E731
    return [
        (Channel.telegram, j(_tg_private(900001, 391000001, "Анна",
            "Здравствуйте! Во дворе дома 5 на улице Ленина третий день не вывозят мусор.", m(25)))),
        (Channel.telegram, j(_tg_private(900002, 391000002, "Михаил",
            "Как записать ребёнка в детский сад? Мы недавно переехали.", m(100)))),
        (Channel.telegram, j(_tg_comment(900003, 391000003, "Игорь",
            "А горячую воду когда дадут? У нас маленькие дети.", m(70)))),
        (Channel.telegram, j(_tg_group_mention(900004, 391000004,
            "@dgh_city когда уберут снег у школы №12? Дети идут по проезжей части.", m(200)))),
        (Channel.telegram, j(_tg_group_mention(900005, 391000005,
            "Кто-нибудь знает, во сколько открывается каток в парке?", m(20)))),
        (Channel.vk, j(_vk_message("demo-vk-1", 512000001,
            "Добрый день. В подъезде дома 14 по Садовой не горит свет уже неделю.", m(150)))),
        (Channel.vk, j(_vk_comment("demo-vk-2", 512000002, 1555,
            "Опять перекрыли дорогу без объявления, как детей в школу возить?", m(40)))),
        (Channel.vk, j(_vk_comment("demo-vk-3", 512000003, 1555,
            "Позвоните мне срочно +7 916 123-45-67, у нас прорвало трубу!", m(10)))),
        (Channel.vk, j(_vk_post(48211, -187654321,
            "[club200000001|Департамент городского хозяйства], когда отремонтируют лифт на "
            "Лесной, 12? Третью неделю ходим пешком.", m(90)))),
        (Channel.email, _email("demo-mail-1@mail.example", "ivanov@mail.example", "Иван Иванов",
            "Не вывозят мусор", "Здравствуйте!\nКонтейнеры во дворе дома 7 по улице Гагарина "
            "переполнены уже неделю.\nИванов И. И.", m(60))),
        (Channel.email, _email("demo-mail-2@mail.example", "petrova@post.example", "Ольга Петрова",
            "Отопление", "Добрый день. В квартире +14 градусов, батареи холодные. "
            "Дом 3, Школьная улица.", m(130))),
        (Channel.phone, j(_phone("demo-call-1", "call-demo-1",
            "у нас в доме нет горячей воды второй день", m(15)))),
    ]  # fmt: skip


def load_demo(runtime: Runtime) -> tuple[int, int]:
    """Create the demo operators and ingest the demo events; returns (operators, new events)."""
    created = 0
    with runtime.factory() as session:
        for login, name, role, password in DEMO_OPERATORS:
            if session.exec(select(Operator).where(Operator.login == login)).first():
                continue
            session.add(
                Operator(login=login, display_name=name, role=role.value,
                         password_hash=hash_password(password))
            )  # fmt: skip
            created += 1
        session.commit()
    new_events = 0
    for channel, raw in demo_payloads(runtime.clock.now()):
        event = normalize(channel, raw, runtime.profile)
        accepted, _ = runtime.inbox.ingest(event)
        new_events += 0 if accepted.duplicate else 1
    return created, new_events
