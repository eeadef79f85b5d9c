"""Recording what happened. Alerts (SLA warnings, breaches) are audit events of kind ``alert``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from inbox.models import AuditEvent


def record(
    session: Session,
    kind: str,
    at: datetime,
    /,
    *,
    conversation_id: int | None = None,
    operator_id: int | None = None,
    actor: str = "system",
    **data: Any,
) -> AuditEvent:
    event = AuditEvent(
        at=at,
        kind=kind,
        conversation_id=conversation_id,
        operator_id=operator_id,
        actor=actor,
        data=data,
    )
    session.add(event)
    return event
