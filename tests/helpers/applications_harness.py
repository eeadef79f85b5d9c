"""Helpers for the application lifecycle tests: applications as the citizen bot leaves them,
and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inbox import api_tokens
from inbox.applications import application_number
from inbox.models import Application, Citizen, Conversation
from inbox.runtime import Runtime


def make_application(
    rt: Runtime,
    *,
    channel: str = "telegram",
    thread_key: str = "tg:391234567",
    reply_target: dict[str, Any] | None = None,
    service: str = "lighting",
    title: str = "Уличное освещение",
    status: str = "submitted",
    created_at: datetime | None = None,
    citizen_name: str = "Анна",
    conversation_status: str = "bot",
) -> tuple[int, str, int]:
    """An application with its conversation and citizen.

    Returns (application id, number, conversation id)."""
    now = created_at or rt.clock.now()
    with rt.factory() as session:
        citizen = Citizen(display_name=citizen_name, created_at=now)
        session.add(citizen)
        session.flush()
        assert citizen.id is not None
        conversation = Conversation(
            channel=channel, thread_key=thread_key, citizen_id=citizen.id, kind="appeal",
            rule_id="appeal", opened_at=now, status=conversation_status,
            reply_target=reply_target if reply_target is not None else {"chat_id": 391234567},
        )  # fmt: skip
        session.add(conversation)
        session.flush()
        assert conversation.id is not None
        conversation.number = f"{now.year}-{conversation.id:06d}"
        application = Application(
            citizen_id=citizen.id, conversation_id=conversation.id, service=service,
            fields={"service": service, "service_title": title, "address": "ул. Ленина, д. 5",
                    "description": "Не горит фонарь", "phone": "+79001234567"},
            status=status, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(application)
        session.flush()
        assert application.id is not None
        application.number = application_number(now.year, application.id)
        session.commit()
        return application.id, application.number, conversation.id


def make_token(rt: Runtime, name: str, *scopes: str) -> str:
    with rt.factory() as session:
        _, secret = api_tokens.create(session, name, list(scopes), rt.clock.now(), "test")
        session.commit()
    return secret
