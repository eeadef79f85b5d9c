"""``POST /webhooks/telegram``: the Bot API webhook.

The secret token given to ``setWebhook`` must come back in ``X-Telegram-Bot-Api-Secret-Token``
(else 403, logged). The update is journalled before the answer: 200 only after the commit,
503 when the database is down so that Telegram retries. Duplicates (Telegram resends an
update it got no 200 for) are recognised by ``update_id`` in the journal. Processing and the
bot's answer run after the response, on the app's processing executor
(``inbox/web/processing.py``), so Telegram never waits for them and they never hold up the
journal commits of the next updates; when the executor is full, ``process_pending`` finishes
the update later and its after-processing hook runs the citizen bot then
(``bot.citizen.app.answer_with``). With ``OTKLIK_PROCESSING=worker`` the webhook only journals:
``otklik worker`` processes the update and the bot's answer goes out through its outbox (a
pressed button's spinner is then stopped at once, without the operator pop-up).
"""

from __future__ import annotations

import hmac
import json
import logging

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, HTTPException, Request

from bot.intake import receive
from bot.telegram.app import telegram_pipeline
from core.events import PayloadError

log = logging.getLogger(__name__)
router = APIRouter()
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@router.post("/webhooks/telegram")
async def telegram_webhook(request: Request, background: BackgroundTasks) -> dict[str, bool]:
    pipeline = telegram_pipeline(request.app)
    if pipeline is None:
        raise HTTPException(404, detail="the Telegram channel is off (OTKLIK_TELEGRAM_TOKEN)")
    expected = pipeline.runtime.settings.telegram_webhook_secret
    given = request.headers.get(SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        client = request.client.host if request.client else "?"
        log.warning("telegram webhook: wrong or missing secret token from %s", client)
        raise HTTPException(403, detail="wrong secret token")
    try:
        data = json.loads(await request.body())
        event = pipeline.parse(data)
    except (ValueError, PayloadError) as exc:
        # Telegram would resend a rejected update forever; log it and let it go.
        log.error("telegram webhook: unreadable update dropped: %s", exc)
        return {"ok": True}
    try:
        received = await receive(request.app, event, label="telegram update")
    except sa.exc.SQLAlchemyError as exc:
        log.error("telegram webhook: journal unavailable, Telegram will retry: %s", exc)
        raise HTTPException(503, detail="storage unavailable, retry later") from exc
    if received.mode != "duplicate":  # the spinner stops once processed, or at once
        background.add_task(pipeline.answer_button_after, received.job, event)
    return {"ok": True}
