"""Helpers for the shared-complaint tests: appeals from several citizens, each with its own
conversation and a running SLA clock, as the inbox leaves them after a hand-off."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from inbox import complaints, sla
from inbox.applications import Actor
from inbox.models import Citizen, Conversation
from inbox.runtime import Runtime

ZONE = ZoneInfo("Europe/Moscow")


def make_appeal(
    rt: Runtime,
    n: int,
    *,
    channel: str = "telegram",
    status: str = "waiting_operator",
    clock: bool = True,
) -> int:
    """Citizen number ``n``'s appeal (a conversation with a running clock); its id."""
    now = rt.clock.now()
    with rt.factory() as session:
        citizen = Citizen(display_name=f"Житель {n}", created_at=now)
        session.add(citizen)
        session.flush()
        assert citizen.id is not None
        conversation = Conversation(
            channel=channel, thread_key=f"tg:{900000 + n}", citizen_id=citizen.id,
            kind="appeal", rule_id="appeal", opened_at=now, status=status,
            reply_target={"chat_id": 900000 + n},
        )  # fmt: skip
        session.add(conversation)
        session.flush()
        assert conversation.id is not None
        conversation.number = f"{now.year}-{conversation.id:06d}"
        if clock:
            sla.start_clock(
                session, conversation, rule_id="appeal", kind="appeal", started_at=now,
                due_at=now + timedelta(hours=8), warn_before=timedelta(hours=1),
            )  # fmt: skip
        session.commit()
        return conversation.id


def make_complaint(rt: Runtime, conversation_ids: list[int], **kwargs: str) -> int:
    with rt.factory() as session:
        complaint = complaints.create(
            session,
            title=kwargs.get("title", "Не горят фонари во дворе"),
            place=kwargs.get("place", "ул. Ленина, д. 5"),
            topic=kwargs.get("topic", "lighting"),
            conversation_ids=conversation_ids,
            actor=Actor.cli("test"),
            now=rt.clock.now(),
        )
        session.commit()
        assert complaint.id is not None
        return complaint.id
