"""Tokens of the agency's back-office systems for the API (``/api/v1``, docs/api.md).

An administrator creates a token with a name and scopes (the admin page «Токены API» or
``otklik token create``); it is shown once. Only its SHA-256 is stored: the token has 256 bits
from ``secrets``, so a fast hash is enough (nothing to guess from the hash, unlike a
password) and a request is checked with one indexed lookup, no argon2 on every call. The
comparison of the hashes is constant-time all the same. A revoked token stops working at
once; the last time each token was used is recorded (at most once a minute, so that a busy
client does not turn every read into a write).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from core.clock import as_utc
from inbox.models import ApiToken

READ = "applications:read"
WRITE = "applications:write"
COMPLAINTS_READ = "complaints:read"
COMPLAINTS_WRITE = "complaints:write"
CONSENTS_READ = "consents:read"
CONSENTS_WRITE = "consents:write"
MAILINGS_READ = "mailings:read"
MAILINGS_WRITE = "mailings:write"
#: The scopes there are, with what they allow (shown on the admin page and in docs/api.md).
SCOPES: dict[str, str] = {
    READ: "читать заявления и их историю",
    WRITE: "менять статус заявлений (включает чтение)",
    COMPLAINTS_READ: "читать общие жалобы и их историю",
    COMPLAINTS_WRITE: "создавать общие жалобы, добавлять обращения, менять статус "
    "(включает чтение)",
    CONSENTS_READ: "читать согласия жителей на проактивное информирование и их историю",
    CONSENTS_WRITE: "записывать согласия по просьбе жителя и отзывать их (включает чтение)",
    MAILINGS_READ: "читать рассылки, их ход и число подписчиков по темам",
    MAILINGS_WRITE: "создавать, запускать и отменять рассылки (включает чтение)",
}
#: A scope that includes others.
IMPLIES: dict[str, frozenset[str]] = {
    WRITE: frozenset({READ}),
    COMPLAINTS_WRITE: frozenset({COMPLAINTS_READ}),
    CONSENTS_WRITE: frozenset({CONSENTS_READ}),
    MAILINGS_WRITE: frozenset({MAILINGS_READ}),
}
PREFIX = "otk_"
#: Longer than any token we issue: a longer header is not looked up at all.
MAX_TOKEN_LENGTH = 100
_NAME = re.compile(r"^[\w.\- ]{1,100}$")
LAST_USED_EVERY = timedelta(minutes=1)


class TokenError(ValueError):
    """The request cannot be done; the message is for the person who made it (Russian)."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def generate() -> str:
    """A new token: ``otk_`` and 43 URL-safe characters (256 random bits)."""
    return PREFIX + secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise TokenError(
            "Имя токена: от 1 до 100 букв, цифр, пробелов, точек, дефисов или подчёркиваний."
        )
    return name


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise TokenError(f"Укажите права из списка: {', '.join(SCOPES)}.")
    return sorted(set(scopes))


def find(session: Session, name: str) -> ApiToken | None:
    return session.exec(select(ApiToken).where(ApiToken.name == name.strip())).first()


def create(
    session: Session, name: str, scopes: list[str], now: datetime, created_by: str
) -> tuple[ApiToken, str]:
    """A new token (not committed) and its secret value, which is never stored."""
    name = check_name(name)
    granted = check_scopes(scopes)
    if find(session, name) is not None:
        raise TokenError(f"Токен с именем «{name}» уже есть (имена не повторяются).")
    secret = generate()
    token = ApiToken(
        name=name,
        token_hash=digest(secret),
        prefix=secret[:10],
        scopes=" ".join(granted),
        created_at=now,
        created_by=created_by[:100],
    )
    session.add(token)
    session.flush()
    return token, secret


def revoke(session: Session, token: ApiToken, now: datetime) -> None:
    if token.revoked_at is None:
        token.revoked_at = now
        session.add(token)


def scopes_of(token: ApiToken) -> frozenset[str]:
    granted = set(token.scopes.split())
    for scope in list(granted):
        granted |= IMPLIES.get(scope, frozenset())
    return frozenset(granted)


def authenticate(session: Session, presented: str, now: datetime) -> ApiToken | None:
    """The live token whose secret is ``presented``; None for an unknown, malformed or
    revoked one (the caller answers all of them alike). Records the use (not committed)."""
    if not presented.startswith(PREFIX) or len(presented) > MAX_TOKEN_LENGTH:
        return None
    wanted = digest(presented)
    token = session.exec(select(ApiToken).where(col(ApiToken.token_hash) == wanted)).first()
    if token is None or not hmac.compare_digest(token.token_hash, wanted):
        return None
    if token.revoked_at is not None:
        return None
    if token.last_used_at is None or as_utc(now) - as_utc(token.last_used_at) >= LAST_USED_EVERY:
        token.last_used_at = now
        session.add(token)
    return token


def all_tokens(session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(col(ApiToken.id))))
