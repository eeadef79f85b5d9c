"""The phone-robot webhook: the JSON the voice robot posts to Otklik, one event per request.

The robot signs the body: header ``X-Otklik-Timestamp`` (Unix seconds) and
``X-Otklik-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the shared secret>``.
See docs/phone-webhook.md; ``otklik phone schema`` prints the JSON Schema.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, ConfigDict, Field, HttpUrl, model_validator

from core.codepoints import StorableModel


class PhoneEventType(StrEnum):
    call_started = "call.started"
    utterance = "call.utterance"
    dtmf = "call.dtmf"
    call_ended = "call.ended"
    recording = "call.recording"


_DTMF = re.compile(r"^[0-9*#]{1,32}$")


class PhoneEvent(StorableModel):  # a lone surrogate or NUL becomes U+FFFD first
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=200, description="Unique per event; dedupe key")
    type: PhoneEventType
    call_id: str = Field(min_length=1, max_length=200)
    timestamp: AwareDatetime = Field(description="When it happened, ISO 8601 with a time zone")
    caller: str = Field(min_length=1, max_length=32, description="Caller's number, E.164")
    called: str | None = Field(default=None, max_length=32, description="The agency's number")
    text: str | None = Field(default=None, max_length=10_000, description="Recognised speech")
    confidence: float | None = Field(default=None, ge=0, le=1, description="ASR confidence")
    digits: str | None = Field(default=None, description="DTMF keys pressed: 0-9, *, #")
    duration_seconds: float | None = Field(default=None, ge=0)
    reason: str | None = Field(default=None, max_length=100, description="Why the call ended")
    recording_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _fields_of_type(self) -> PhoneEvent:
        need = {
            PhoneEventType.utterance: ("text", self.text),
            PhoneEventType.dtmf: ("digits", self.digits),
            PhoneEventType.recording: ("recording_url", self.recording_url),
        }.get(self.type)
        if need and not need[1]:
            raise ValueError(f"event type {self.type.value} needs '{need[0]}'")
        if self.digits is not None and not _DTMF.match(self.digits):
            raise ValueError("digits may hold only 0-9, * and #")
        return self

    @property
    def published_at(self) -> datetime:
        return self.timestamp
