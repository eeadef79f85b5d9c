"""Which peers may tell uvicorn who the client is (``X-Forwarded-For``, ``X-Forwarded-Proto``).

uvicorn believes these headers from 127.0.0.1 unless told otherwise, so on a server without a
proxy any local client (or one whose traffic arrives through a local tunnel or port forward)
could name any address and start every per-address limit afresh: the login throttle and the
rate limits read ``scope["client"]``. Here the headers are honoured only from
``OTKLIK_TRUSTED_PROXIES`` (default: nobody). No code of ours reads ``X-Forwarded-For``,
``X-Real-IP`` or ``Forwarded`` itself: the client address is always ``request.client``.
"""

from __future__ import annotations

from typing import Any

from core.config import Settings


def uvicorn_proxy_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config``."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(settings.trusted_proxies)}
