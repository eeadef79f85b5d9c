"""Fee payment: a link from the agency's provider URL template and its QR code (no processing).

The provider does the payment; Otklik only builds the link. The template comes from settings
(``OTKLIK_PAYMENT_URL_TEMPLATE``) with ``{purpose}``, ``{amount}`` and ``{number}`` filled in,
URL-encoded.
"""

from __future__ import annotations

import io
from urllib.parse import quote

import segno


def payment_url(template: str, *, purpose: str, amount: int, number: str) -> str:
    """The provider's link for this payment; every value is URL-encoded."""
    return template.format(
        purpose=quote(purpose, safe=""), amount=quote(str(amount), safe=""), number=quote(number)
    )


def qr_png(data: str, scale: int = 6) -> bytes:
    """A PNG QR code of ``data`` (error correction M, a quiet zone of four modules)."""
    out = io.BytesIO()
    segno.make(data, error="m", micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
