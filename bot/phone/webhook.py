"""The phone-robot webhook, ``POST /webhooks/phone`` (docs/phone-webhook.md).

The robot posts one signed event per request and gets back what to say next, in the response.
Order: check the signature → store the event in the journal → apply the rules (conversation,
SLA clock) → decide the answer → store the answer as an outbound message → respond.

Outbound storage: the robot's words are kept as ``phone`` messages in the conversation, like
any reply, so the history shows what the citizen heard. They are delivered by being in the
HTTP response, so the outbox's ``phone`` sender only marks them ``sent`` (see ``phone_sender``).
A repeated event (same ``event_id``) is stored once and gets the answer given the first time.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from bot.intake import accept_and_process
from bot.payload import load_json
from bot.phone.parse import parse_phone
from bot.phone.robot import Action, Robot, RobotReply, Step
from bot.phone.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, check
from core.events import InboundEvent, PayloadError
from inbox import workflow
from inbox.ingest import find_open_conversation
from inbox.models import (
    Conversation,
    ConversationStatus,
    Direction,
    Message,
)
from inbox.runtime import Runtime
from knowledge_base.readability import check_text

log = logging.getLogger(__name__)

router = APIRouter()


class MenuItem(BaseModel):
    digit: str
    title: str


class PhoneAnswer(BaseModel):
    """The response body: what the robot says and does next."""

    #: Text to speak (plain Russian, short); null when there is nothing to say.
    say: str | None
    #: ``listen``: speak, then wait for speech or keys; ``transfer``: speak, then put the call
    #: through to the operators' line; ``none``: nothing to do.
    action: str
    #: The keys the caller may press now; each mirrors a voice choice. "0" is the operator.
    menu: list[MenuItem]
    #: The appeal number of the call's conversation, if one is open.
    conversation: str | None = None


async def phone_sender(message: Message) -> str:
    """Outbox sender for ``phone``: the text already reached the caller in the HTTP response."""
    return f"said:{message.idempotency_key or message.id}"


def build_robot(runtime: Runtime) -> Robot:
    """The robot over the app's shared knowledge base (``Runtime.kb``)."""
    return Robot(runtime.kb, agency=runtime.profile.names[0])


def get_robot(request: Request) -> Robot:
    robot: Robot | None = getattr(request.app.state, "phone_robot", None)
    if robot is None:  # normally loaded at start-up (otklik.registry.start)
        robot = request.app.state.phone_robot = build_robot(request.app.state.runtime)
    return robot


@router.post("/webhooks/phone", response_model=PhoneAnswer)
async def phone_webhook(request: Request) -> Any:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    body = await request.body()
    client = request.client.host if request.client else "?"
    problem = check(
        settings.phone_secret,
        request.headers.get(TIMESTAMP_HEADER),
        request.headers.get(SIGNATURE_HEADER),
        body,
        runtime.clock.now(),
        settings.phone_max_skew,
    )
    if problem:
        log.warning("phone webhook from %s rejected: %s", client, problem)
        return JSONResponse({"detail": problem}, status_code=401)
    try:
        event = parse_phone(load_json(body))
    except PayloadError as exc:
        log.warning("phone webhook from %s: %s", client, exc)
        return JSONResponse({"detail": str(exc)}, status_code=422)
    robot = get_robot(request)
    try:
        return await run_in_threadpool(handle, runtime, robot, event)
    except SQLAlchemyError:
        log.exception("phone webhook: event %s not stored", event.external_id)
        return JSONResponse({"detail": "not stored, retry later"}, status_code=503)


def handle(runtime: Runtime, robot: Robot, event: InboundEvent) -> PhoneAnswer:
    accepted = accept_and_process(
        runtime, event, label="phone event", wait=True, process_duplicate=True
    )
    key = reply_key(event)
    if accepted.duplicate and (earlier := _said_before(runtime, key)) is not None:
        return earlier
    now = runtime.clock.now()
    with runtime.factory() as session:
        conversation = find_open_conversation(session, event.channel.value, event.thread_key)
        step, topic, handed_off = _where(session, conversation)
        reply = robot.reply(session, event, step, topic)
        if conversation is not None and reply.say:
            _store(session, runtime, conversation, reply, key, now, handed_off)
            try:
                session.commit()
            except IntegrityError:  # the same event, twice at once: the other one answered
                session.rollback()
                if (earlier := _said_before(runtime, key)) is not None:
                    return earlier
                raise
        number = conversation.number if conversation else None
        return _answer(reply.say, reply.meta(), number)


def reply_key(event: InboundEvent) -> str:
    """The idempotency key of the robot's answer to ``event``: one answer per event."""
    key = f"phone:{event.external_id}"
    if len(key) <= 64:
        return key
    return "phone:" + hashlib.sha256(event.external_id.encode()).hexdigest()[:58]


def _said_before(runtime: Runtime, key: str) -> PhoneAnswer | None:
    with runtime.factory() as session:
        said = session.exec(select(Message).where(Message.idempotency_key == key)).first()
        if said is None:
            return None
        return _answer(said.text, said.meta, _number(session, said.conversation_id))


def _store(
    session: Session,
    runtime: Runtime,
    conversation: Conversation,
    reply: RobotReply,
    key: str,
    now: datetime,
    handed_off: bool,
) -> None:
    assert reply.say is not None
    report = check_text(reply.say)
    meta = {**reply.meta(), "readability": {"ok": report.ok, "grade": report.grade_level}}
    if handed_off:
        # The call is with the operators: what the robot says does not answer the appeal.
        message = workflow.queue_outbound(session, conversation, reply.say, now)
    else:
        if conversation.status == ConversationStatus.new.value:
            workflow.to_bot(session, conversation, now, actor="phone-robot")
        message = workflow.reply(session, conversation, reply.say, now, public=False)
    message.idempotency_key = key
    message.meta = meta
    if reply.choice is not None and reply.choice.topic:
        conversation.topic = reply.choice.topic
    if reply.handoff and not handed_off:
        workflow.handoff(session, conversation, now, runtime.rules, reply.handoff_reason or "")


def _where(session: Session, conversation: Conversation | None) -> tuple[Step, str | None, bool]:
    """Where the call stands: the step of the robot's last answer, the chosen topic, and
    whether the robot already put the call through to an operator."""
    if conversation is None:
        return Step.menu, None, False
    last = session.exec(
        select(Message)
        .where(Message.conversation_id == conversation.id)
        .where(Message.direction == Direction.outbound.value)
        .order_by(col(Message.id).desc())
    ).first()
    meta = (last.meta or {}) if last else {}
    step = Step(meta.get("phone_step", Step.menu))
    return step, conversation.topic, meta.get("action") == Action.transfer.value


def _number(session: Session, conversation_id: int) -> str | None:
    conversation = session.get(Conversation, conversation_id)
    return conversation.number if conversation else None


def _answer(say: str | None, meta: dict[str, Any], number: str | None) -> PhoneAnswer:
    return PhoneAnswer(
        say=say,
        action=str(meta.get("action", Action.listen.value)),
        menu=[MenuItem(**item) for item in meta.get("menu", [])],
        conversation=number,
    )
