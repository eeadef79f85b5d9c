"""``POST /webhooks/max``: the MAX Bot API webhook (``POST /subscriptions`` with a secret).

The secret given to ``POST /subscriptions`` must come back in ``X-Max-Bot-Api-Secret`` (else
403, logged; a webhook without a configured secret refuses everything). The update is
journalled before the answer: 200 only after the commit, 503 when the database is down so that
MAX delivers it again. A repeat of an update (same message ``mid`` or ``callback_id``) is
recognised in the journal and not processed twice. A body that is not an Update is answered
400 and logged; nothing is stored. Processing and the bot's answer run after the response, on
the app's processing executor, as for Telegram (``bot/telegram/webhook.py``); with
``OTKLIK_PROCESSING=worker`` the webhook only journals and ``otklik worker`` does the rest.
"""

from __future__ import annotations

import hmac
import logging

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, HTTPException, Request

from bot.intake import receive
from bot.max.app import max_pipeline
from bot.payload import load_json
from core.events import PayloadError

log = logging.getLogger(__name__)
router = APIRouter()
SECRET_HEADER = "X-Max-Bot-Api-Secret"


@router.post("/webhooks/max")
async def max_webhook(request: Request, background: BackgroundTasks) -> dict[str, bool]:
    pipeline = max_pipeline(request.app)
    if pipeline is None:
        raise HTTPException(404, detail="the MAX channel is off (OTKLIK_MAX_TOKEN)")
    expected = pipeline.runtime.settings.max_webhook_secret
    given = request.headers.get(SECRET_HEADER, "")
    client = request.client.host if request.client else "?"
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        log.warning("MAX webhook: wrong or missing secret from %s", client)
        raise HTTPException(403, detail="wrong secret")
    try:
        event = pipeline.parse(load_json(await request.body()))
    except PayloadError as exc:
        log.error("MAX webhook: unreadable update from %s rejected: %s", client, exc)
        raise HTTPException(400, detail=f"not a MAX Update: {exc}") from None
    try:
        received = await receive(request.app, event, label="MAX update")
    except sa.exc.SQLAlchemyError as exc:
        log.error("MAX webhook: journal unavailable, MAX will deliver again: %s", exc)
        raise HTTPException(503, detail="storage unavailable, retry later") from exc
    if received.mode in ("executor", "busy"):
        background.add_task(pipeline.answer_button_after, received.job, event)
    return {"ok": True}
