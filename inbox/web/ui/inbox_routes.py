"""The shared inbox: filtered queues with live deadline countdowns, updated by server-sent events.

The event stream polls ``audit_event`` by id, so events written by any process (adapters,
the scheduler, another web worker) reach every open page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlmodel import col, func, select
from starlette.concurrency import run_in_threadpool

from core.bounded import DbId, parse_bounded_int
from inbox.models import AuditEvent, Conversation, Message, Operator
from inbox.queue import queue_query
from inbox.runtime import Runtime
from inbox.web.deps import RuntimeDep
from inbox.web.ui.security import OperatorDep
from inbox.web.ui.templating import render

router = APIRouter()

#: Audit events that change what the inbox shows.
LIVE_KINDS = (
    "ingested", "opened", "assigned", "reassigned", "reply_queued", "delivered",
    "closed", "alert", "handoff", "to_bot",
)  # fmt: skip
POLL_SECONDS = 1.0
#: A stream ends after this long and the browser reconnects (``Last-Event-ID``, nothing lost):
#: an open stream would otherwise hold up a graceful server shutdown indefinitely.
STREAM_SECONDS = 10.0


@dataclass
class QueueFilters:
    """The inbox filters, from the query string."""

    channel: str | None = None
    kind: str | None = None
    status: str | None = None
    assignee: str | None = None  # "me", "none" or all


FiltersDep = Annotated[QueueFilters, Depends()]


def queue_rows(
    rt: Runtime, me: Operator, filters: QueueFilters, limit: int = 200
) -> list[tuple[Conversation, str, str | None, str | None]]:
    """Open conversations, most urgent first, with (citizen text preview, assignee name)."""
    channel, kind, status, assignee = (
        filters.channel, filters.kind, filters.status, filters.assignee
    )  # fmt: skip
    query = queue_query(
        status=status,
        channel=channel,
        kind=kind,
        assignee_id=me.id if assignee == "me" else None,
        unassigned=assignee == "none",
        limit=limit,
    )
    with rt.factory() as session:
        conversations = session.exec(query).all()
        names = {o.id: o.display_name for o in session.exec(select(Operator)).all()}
        rows: list[tuple[Conversation, str, str | None, str | None]] = []
        for c in conversations:
            last = session.exec(
                select(Message.text)
                .where(Message.conversation_id == c.id)
                .where(Message.direction == "in")
                .order_by(col(Message.id).desc())
            ).first()
            preview = (last or "")[:160]
            rows.append((c, c.status, preview, names.get(c.assignee_id)))
    return rows


def last_event_id(rt: Runtime) -> int:
    with rt.factory() as session:
        return int(session.exec(select(func.max(AuditEvent.id))).one() or 0)


@router.get("/inbox")
def inbox_page(request: Request, rt: RuntimeDep, me: OperatorDep, f: FiltersDep) -> Response:
    return render(
        request,
        "inbox.html",
        me,
        rows=queue_rows(rt, me, f),
        filters=f,
        query=str(request.url.query),
        last_event=last_event_id(rt),
    )


@router.get("/inbox/queue")
def inbox_queue(request: Request, rt: RuntimeDep, me: OperatorDep, f: FiltersDep) -> Response:
    """The queue alone, for htmx to swap in when something changed."""
    return render(request, "_queue.html", me, rows=queue_rows(rt, me, f))


def _new_events(rt: Runtime, after: int) -> list[AuditEvent]:
    with rt.factory() as session:
        return list(
            session.exec(
                select(AuditEvent)
                .where(col(AuditEvent.id) > after)
                .order_by(col(AuditEvent.id))
                .limit(200)
            ).all()
        )


@router.get("/events", response_model=None)
async def events(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    after: Annotated[DbId | None, Query()] = None,
) -> Response:
    """Server-sent events: one ``audit`` event per inbox change since ``after`` (or since the
    ``Last-Event-ID`` the browser sends when it reconnects)."""
    header = request.headers.get("last-event-id")
    start = after
    if header:
        start = parse_bounded_int(header)
        if start is None:
            return JSONResponse(
                {"detail": "Last-Event-ID must be an event id (a whole number)"}, status_code=400
            )
    if start is None:
        start = await run_in_threadpool(last_event_id, rt)

    async def stream() -> AsyncIterator[str]:
        cursor = start
        ends = asyncio.get_running_loop().time() + STREAM_SECONDS
        yield "retry: 1000\n\n"
        while asyncio.get_running_loop().time() < ends and not await request.is_disconnected():
            rows = await run_in_threadpool(_new_events, rt, cursor)
            for event in rows:
                assert event.id is not None
                cursor = event.id
                if event.kind not in LIVE_KINDS:
                    continue
                data = {
                    "kind": event.kind,
                    "conversation_id": event.conversation_id,
                    "alert": event.data.get("alert"),
                    "number": event.data.get("number"),
                }
                yield f"id: {event.id}\nevent: audit\ndata: {json.dumps(data)}\n\n"
            if not rows:
                # no event fires, but the browser remembers where to resume
                yield f"id: {cursor}\n\n"
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
