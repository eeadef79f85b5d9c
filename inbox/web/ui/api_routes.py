"""JSON API for operators (same login as the UI): the queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from core.clock import as_utc
from inbox.queue import queue_query
from inbox.web.deps import RuntimeDep
from inbox.web.ui.security import OperatorDep

router = APIRouter(prefix="/api")


class QueueItem(BaseModel):
    id: int
    number: str | None
    channel: str
    kind: str
    status: str
    due_at: str | None
    seconds_left: float | None
    assignee_id: int | None
    source_url: str | None


@router.get("/queue", response_model=list[QueueItem])
def queue(
    rt: RuntimeDep,
    _me: OperatorDep,
    channel: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[QueueItem]:
    """Open conversations, most urgent first (logged-in operators only)."""
    now = rt.clock.now()
    with rt.factory() as session:
        rows = session.exec(queue_query(status=status, channel=channel, kind=kind, limit=limit))
        conversations = rows.all()
    return [
        QueueItem(
            id=c.id or 0,
            number=c.number,
            channel=c.channel,
            kind=c.kind,
            status=c.status,
            due_at=as_utc(c.due_at).isoformat() if c.due_at else None,
            seconds_left=(as_utc(c.due_at) - now).total_seconds() if c.due_at else None,
            assignee_id=c.assignee_id,
            source_url=c.source_url,
        )
        for c in conversations
    ]
