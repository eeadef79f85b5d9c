"""Web-chat sessions: ids the server issued, signed, never one the client made up.

The session id is the visitor's identity and the thread of their conversation, and whoever
holds it reads that conversation. So the cookie carries the id signed with the app's secret
key (itsdangerous, as the operators' session cookie): an id a client invents (or one it
copied from a log or the database without the signature) is not accepted, and a request
without a valid cookie gets a fresh id from the server (session fixation, issue #9). The
signature carries its issue time; a cookie older than ``MAX_AGE`` is no longer accepted, and
each visit of the chat page signs the id anew (a visitor who comes back keeps their chat).

Cookies of an older version (plain ids, unsigned) are not accepted: such a visitor starts a
new chat once (their old conversations stay in the inbox).
"""

from __future__ import annotations

import re
import secrets

from fastapi import Request, Response
from itsdangerous import BadSignature, TimestampSigner

COOKIE = "otklik_chat"
#: How long a session lasts after the visitor's last visit of the chat page (seconds).
MAX_AGE = 30 * 24 * 3600
SALT = "otklik.webchat.session"
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{20,64}", re.ASCII)
#: A signed cookie is the id (32), its time (~6) and signature (27) with two dots.
_LONGEST_COOKIE = 200


def _key(request: Request) -> str:
    """The app's secret key (the runtime's settings hold the one the operators' sessions are
    signed with). Never sign with an empty key: anyone could forge sessions."""
    key: str = request.app.state.runtime.settings.secret_key
    if not key:
        raise RuntimeError("no secret key to sign web-chat sessions with")
    return key


def _signer(request: Request) -> TimestampSigner:
    return TimestampSigner(_key(request), salt=SALT)


def signed(secret_key: str, session_id: str) -> str:
    """The cookie value for ``session_id`` (what ``remember`` sets)."""
    if not secret_key:
        raise RuntimeError("no secret key to sign web-chat sessions with")
    return TimestampSigner(secret_key, salt=SALT).sign(session_id).decode("ascii")


def new_id() -> str:
    return secrets.token_urlsafe(24)


def current(request: Request) -> str | None:
    """The visitor's session id if their cookie holds one this server signed, not expired."""
    value = request.cookies.get(COOKIE, "")
    if not value or len(value) > _LONGEST_COOKIE:
        return None
    try:
        session_id = _signer(request).unsign(value, max_age=MAX_AGE).decode("ascii")
    except (BadSignature, UnicodeDecodeError):
        return None
    return session_id if _SESSION_ID.fullmatch(session_id) else None


def remember(request: Request, response: Response, session_id: str) -> None:
    """Give the visitor the signed cookie for ``session_id`` (a fresh issue time)."""
    response.set_cookie(
        COOKIE, signed(_key(request), session_id), max_age=MAX_AGE,
        httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/",
    )  # fmt: skip
