"""HMAC-SHA256 signatures of phone-robot webhooks (docs/phone-webhook.md).

``X-Otklik-Timestamp: <unix seconds>`` and
``X-Otklik-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``.
The timestamp is signed with the body, so an old request cannot be replayed with a new time.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from core.bounded import parse_bounded_int

TIMESTAMP_HEADER = "X-Otklik-Timestamp"
#: Unix seconds have 10 digits until the year 2286; anything longer is not a timestamp.
MAX_TIMESTAMP = 10**11
SIGNATURE_HEADER = "X-Otklik-Signature"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def check(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    max_skew: int,
) -> str | None:
    """None when the request is genuine and fresh; otherwise why it is rejected."""
    if not timestamp or not signature:
        return "missing signature headers"
    sent_at = parse_bounded_int(timestamp, high=MAX_TIMESTAMP)
    if sent_at is None:  # bounded: a 400-digit number must not reach float arithmetic
        return f"timestamp is not Unix seconds: {timestamp[:40]!r}"
    if abs(now.timestamp() - sent_at) > max_skew:
        return f"stale timestamp: {sent_at}, now {int(now.timestamp())}"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        return "bad signature"
    return None
