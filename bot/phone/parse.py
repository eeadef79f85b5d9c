"""Phone-robot webhook JSON → normalized event. A call is an appeal; its end is a service event."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bot.phone.schema import PhoneEvent, PhoneEventType
from core.events import Attachment, Author, Channel, Facts, InboundEvent, PayloadError, Place

_AFTER_THE_CALL = (PhoneEventType.call_ended, PhoneEventType.recording)


def parse_phone(data: dict[str, Any]) -> InboundEvent:
    try:
        event = PhoneEvent.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "event"
        raise PayloadError(f"not a valid phone-robot event: {where}: {err['msg']}") from None
    attachments = []
    if event.recording_url is not None:
        attachments.append(Attachment(kind="recording", ref=str(event.recording_url)))
    text = event.text or ""
    if event.type is PhoneEventType.dtmf:
        text = f"[DTMF] {event.digits}"
    return InboundEvent(
        channel=Channel.phone,
        external_id=event.event_id,
        thread_key=f"phone:{event.call_id}",
        author=Author(external_id=event.caller),
        text=text,
        attachments=attachments,
        published_at=event.timestamp,
        facts=Facts(
            # The end of a call and its recording come after the conversation: no new request.
            place=Place.service if event.type in _AFTER_THE_CALL else Place.call,
            extra={
                "event_type": event.type.value,
                "call_id": event.call_id,
                "digits": event.digits,
                "confidence": event.confidence,
                "called": event.called,
            },
        ),
        reply_target={"call_id": event.call_id},
        raw=data,
    )
