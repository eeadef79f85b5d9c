"""One entry point from a native payload of any channel to the normalized event."""

from __future__ import annotations

from datetime import datetime

from bot.payload import load_json
from core.events import Channel, InboundEvent, PayloadError
from rules.profile import AgencyProfile


def normalize(
    channel: Channel, raw: bytes, profile: AgencyProfile, received_at: datetime | None = None
) -> InboundEvent:
    """Parse ``raw`` as the channel's native format; raises PayloadError on bad input.

    Parsers are imported on first use: aiogram's types alone take seconds to import, which a
    command-line triage of an email should not pay.
    """
    if channel is Channel.email:
        from bot.email.parse import parse_email

        return parse_email(raw, profile, received_at)
    data = load_json(raw)
    if channel is Channel.telegram:
        from bot.telegram.parse import parse_update

        return parse_update(data, profile, received_at)
    if channel is Channel.vk:
        from bot.vk.parse import parse_vk

        return parse_vk(data, profile)
    if channel is Channel.max:
        from bot.max.parse import parse_max

        return parse_max(data, profile, received_at)
    if channel is Channel.phone:
        from bot.phone.parse import parse_phone

        return parse_phone(data)
    raise PayloadError(f"channel {channel.value} has no native payload format for triage")
