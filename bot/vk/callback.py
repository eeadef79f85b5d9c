"""The VK Callback API endpoint, ``POST /webhooks/vk`` (docs/vk.md).

* ``confirmation``: answer the configured string, as plain text.
* Every other event: check the group and the secret, store the event in the journal, and only
  then answer ``ok``. VK repeats an event it got no ``ok`` for, so a database failure is
  answered 503 (VK retries later), and a repeat of a stored event (same ``event_id``) is
  answered ``ok`` without being stored twice. Rules run after the answer, on the app's
  processing executor (``bot.intake.receive``, ``inbox/web/processing.py``), never on the
  thread pool the journal commits use; when it is full the event waits for
  ``process_pending``, which then runs the citizen bot for a private message through its
  hook (``bot.citizen.app.answer_with``). With ``OTKLIK_PROCESSING=worker`` nothing runs
  here after the answer: ``otklik worker`` does it.
* A private message (not a group chat, not a comment) then goes to the citizen bot, as a
  Telegram private chat does: its answer is queued in the outbox for ``bot/vk/sender.py``.
* VK's echo of a reply Otklik sent (``message_reply``, the community's comment) is journalled
  but changes nothing (``bot/vk/echo.py``); a reply the agency wrote in VK itself is recorded
  in the conversation as the agency's answer and stops the response clock.
* A wrong secret or group is rejected (403) and logged; it never gets ``ok``.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.intake import receive
from bot.payload import load_json
from bot.vk.echo import as_echo, sent_by_us
from bot.vk.parse import parse_vk
from core.events import InboundEvent, PayloadError
from inbox.ingest import Accepted
from inbox.runtime import Runtime
from inbox.web.processing import settled

log = logging.getLogger(__name__)

router = APIRouter()


def _text(body: str, status: int = 200) -> PlainTextResponse:
    return PlainTextResponse(body, status_code=status)


@router.post("/webhooks/vk", response_class=PlainTextResponse)
async def vk_callback(request: Request, background: BackgroundTasks) -> PlainTextResponse:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    client = request.client.host if request.client else "?"
    try:
        data = load_json(await request.body())
    except PayloadError as exc:
        log.warning("VK callback from %s: %s", client, exc)
        return _text("bad request", 400)
    kind = data.get("type")
    if data.get("group_id") != settings.vk_group_id:
        log.warning("VK callback from %s: group %r is not ours", client, data.get("group_id"))
        return _text("wrong group", 403)
    # The secret is a credential: check it, then keep it out of the journal.
    secret = str(data.pop("secret", "") or "")
    secret_ok = hmac.compare_digest(secret.encode(), settings.vk_secret.encode())
    if kind == "confirmation" and (secret_ok or not secret):
        return _text(settings.vk_confirmation)
    if not secret_ok:
        log.warning("VK callback from %s: wrong secret, %s event rejected", client, kind)
        return _text("wrong secret", 403)
    try:
        event = parse_vk(data, runtime.profile)
    except PayloadError as exc:
        log.warning("VK callback from %s: %s", client, exc)
        return _text("bad request", 400)
    try:
        received = await receive(request.app, event, label="VK event", accept=_accept)
    except SQLAlchemyError:
        log.exception("VK callback: event %s not stored; VK will send it again", event.external_id)
        return _text("not stored, retry later", 503)
    if received.job is not None:
        background.add_task(settled, received.job)
    return _text("ok")


def _accept(runtime: Runtime, event: InboundEvent) -> tuple[Accepted, InboundEvent]:
    """Journal the event; an echo of what Otklik itself sent is journalled as a no-op."""
    with runtime.factory() as session:
        echoed = sent_by_us(session, event)
    if echoed is not None:
        event = as_echo(event, echoed)
    return runtime.inbox.accept(event), event
