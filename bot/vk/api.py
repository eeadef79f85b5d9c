"""A thin client over vk-api's ``VkApi``: our API version, no built-in sleeping retries, errors
mapped to what the outbox needs, and an optional base URL (a proxy, or a test server).

vk-api is synchronous (requests); async code calls ``acall``, which runs the call in a thread.
Error codes: https://dev.vk.com/ru/reference/errors
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import jconfig
import requests
import vk_api
from requests.adapters import HTTPAdapter
from vk_api.exceptions import ApiError, ApiHttpError

from core.config import Settings
from inbox.outbox import DeliveryError

log = logging.getLogger(__name__)

#: Where vk-api sends every call (``https://api.vk.ru/method/<name>``).
VK_API_BASE = "https://api.vk.ru/method/"

#: Too many requests per second, flood control, rate limit reached: try again later.
RATE_LIMIT_CODES = {6, 9, 29}
#: Retrying cannot help: authorization failed, permission denied, access denied, user blocked
#: messages from the community (901), privacy settings (902), comments closed (212, 213), a
#: captcha only a person can solve (14).
PERMANENT_CODES = {5, 7, 8, 14, 15, 18, 100, 212, 213, 222, 900, 901, 902, 911, 917}
#: Seconds to wait after a rate-limit error (VK gives no retry-after).
RATE_LIMIT_DELAY = {6: 1.0, 9: 60.0, 29: 3600.0}


class _ApiAdapter(HTTPAdapter):
    """Every call gets a timeout (requests has none by default, and a hung call would block the
    outbox worker); with ``base_url``, calls meant for ``VK_API_BASE`` go there instead."""

    def __init__(self, timeout: float, base_url: str = "") -> None:
        super().__init__()
        self.timeout = timeout
        self.base_url = base_url.rstrip("/") + "/" if base_url else ""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        if self.base_url and request.url and request.url.startswith(VK_API_BASE):
            request.url = self.base_url + request.url[len(VK_API_BASE) :]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, *args, **kwargs)


class VkClient:
    """One token, one API version; ``call`` returns the ``response`` part of VK's answer."""

    def __init__(
        self, token: str, *, api_version: str = "5.199", base_url: str = "", timeout: float = 20
    ) -> None:
        session = requests.Session()
        adapter = _ApiAdapter(timeout, base_url)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self.api = vk_api.VkApi(
            token=token, api_version=api_version, session=session, config=jconfig.MemoryConfig
        )
        # vk-api sleeps and retries error 6 by itself, forever; the outbox retries instead.
        self.api.error_handlers.pop(vk_api.exceptions.TOO_MANY_RPS_CODE, None)

    @classmethod
    def from_settings(cls, settings: Settings, token: str) -> VkClient:
        return cls(token, api_version=settings.vk_api_version, base_url=settings.vk_api_url)

    def call(self, method: str, params: dict[str, Any]) -> Any:
        return self.api.method(method, params)

    async def acall(self, method: str, params: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self.call, method, params)


def delivery_error(exc: Exception) -> DeliveryError:
    """What the outbox should do after ``exc``: retry (when, if known) or give up."""
    if isinstance(exc, ApiError):
        code = exc.code
        reason = f"VK API error {exc}"
        if code in RATE_LIMIT_CODES:
            return DeliveryError(reason, retry_after=RATE_LIMIT_DELAY[code])
        if code in PERMANENT_CODES:
            return DeliveryError(reason, permanent=True)
        # Transient (1, 10) and codes we do not know: retry with backoff; the outbox gives up
        # after its last attempt and alerts an operator.
        return DeliveryError(reason)
    if isinstance(exc, ApiHttpError):
        status = exc.response.status_code
        return DeliveryError(f"VK HTTP {status}", permanent=400 <= status < 500 and status != 429)
    if isinstance(exc, requests.RequestException | ValueError):  # network, or a non-JSON answer
        return DeliveryError(f"VK unreachable: {type(exc).__name__}: {exc}")
    raise exc
