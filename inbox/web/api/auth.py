"""Who calls ``/api/v1``: a bearer token with a scope, within its rate.

Only the ``Authorization: Bearer <token>`` header is read (never a query parameter, which ends
up in access logs, nor the operators' session cookie, which a browser sends by itself: no
CSRF is possible). A missing, malformed, unknown or revoked token gets the same 401; a live
token without the scope gets 403 naming the scope it needs. Each token has its own rate
(``OTKLIK_API_RATE_PER_SECOND`` / ``_BURST``: 429 with ``Retry-After`` beyond it); each client
address may fail authentication ``OTKLIK_API_AUTH_FAILURES_BURST`` times before it is refused
with 429 without a database lookup, recovering ``OTKLIK_API_AUTH_FAILURES_PER_SECOND``.
The buckets are in memory, per process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from inbox import api_tokens
from inbox.web.deps import get_runtime

UNAUTHORIZED = "invalid or missing API token"


class Buckets:
    """Token buckets by key, thread-safe; the least recently used forgotten beyond a bound."""

    def __init__(self, per_second: float, burst: int, max_keys: int = 10_000) -> None:
        self.per_second = per_second
        self.burst = burst
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str, now: float) -> float:
        tokens, last = self._state.pop(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.per_second)

    def take(self, key: str) -> float:
        """Take one; 0 when allowed, else the seconds until one is there."""
        now = time.monotonic()
        with self._lock:
            tokens = self._level(key, now)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.per_second if self.per_second > 0 else 3600.0
            self._state[key] = (tokens, now)
            while len(self._state) > self.max_keys:
                self._state.popitem(last=False)
            return wait

    def wait_for(self, key: str) -> float:
        """Seconds until one could be taken (0: now), without taking it."""
        now = time.monotonic()
        with self._lock:
            tokens = self._level(key, now)
            self._state[key] = (tokens, now)
            if tokens >= 1.0:
                return 0.0
            return (1.0 - tokens) / self.per_second if self.per_second > 0 else 3600.0


@dataclass
class ApiLimits:
    per_token: Buckets
    failures: Buckets


def _limits(request: Request) -> ApiLimits:
    found: ApiLimits | None = getattr(request.app.state, "api_limits", None)
    if found is None:
        settings = get_runtime(request).settings
        found = ApiLimits(
            Buckets(settings.api_rate_per_second, settings.api_rate_burst),
            Buckets(settings.api_auth_failures_per_second, settings.api_auth_failures_burst),
        )
        request.app.state.api_limits = found
    return found


@dataclass(frozen=True)
class ApiCaller:
    token_id: int
    name: str


def _too_many(wait: float) -> HTTPException:
    return HTTPException(
        429, detail="too many requests, retry later",
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
    )  # fmt: skip


def _unauthorized() -> HTTPException:
    return HTTPException(401, detail=UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


#: Declares the scheme in the OpenAPI document; the header is checked below (no auto error:
#: every failure gets the same 401).
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="A token from `otklik token create` or the admin page «Токены API»",
)


def require_scope(scope: str):  # type: ignore[no-untyped-def]
    """A dependency: the calling token, if it is live and has ``scope``."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> ApiCaller:
        limits = _limits(request)
        address = request.client.host if request.client else "unknown"
        wait = limits.failures.wait_for(address)
        if wait > 0:
            raise _too_many(wait)
        presented = credentials.credentials.strip() if credentials else None
        rt = get_runtime(request)

        def lookup() -> tuple[int, str, frozenset[str]] | None:
            with rt.factory() as session:
                token = api_tokens.authenticate(session, presented or "", rt.clock.now())
                if token is None or token.id is None:
                    return None
                found = (token.id, token.name, api_tokens.scopes_of(token))
                session.commit()  # the last-used time
                return found

        found = await run_in_threadpool(lookup) if presented else None
        if found is None:
            limits.failures.take(address)
            raise _unauthorized()
        token_id, name, scopes = found
        wait = limits.per_token.take(str(token_id))
        if wait > 0:
            raise _too_many(wait)
        if scope not in scopes:
            raise HTTPException(403, detail=f"this token lacks the scope {scope}")
        return ApiCaller(token_id, name)

    return dependency


ReaderDep = Annotated[ApiCaller, Depends(require_scope(api_tokens.READ))]
WriterDep = Annotated[ApiCaller, Depends(require_scope(api_tokens.WRITE))]
ComplaintReaderDep = Annotated[ApiCaller, Depends(require_scope(api_tokens.COMPLAINTS_READ))]
ComplaintWriterDep = Annotated[ApiCaller, Depends(require_scope(api_tokens.COMPLAINTS_WRITE))]
ConsentReaderDep = Annotated[ApiCaller, Depends(require_scope(api_tokens.CONSENTS_READ))]
ConsentWriterDep = Annotated[ApiCaller, Depends(require_scope(api_tokens.CONSENTS_WRITE))]
MailingReaderDep = Annotated[ApiCaller, Depends(require_scope(api_tokens.MAILINGS_READ))]
MailingWriterDep = Annotated[ApiCaller, Depends(require_scope(api_tokens.MAILINGS_WRITE))]
