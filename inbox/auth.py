"""Operator passwords (argon2)."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    """A hash of a random password nobody knows, with the hasher's current parameters."""
    return _hasher.hash(secrets.token_urlsafe(32))


def check_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; always costs one argon2 verification.

    For an unknown login (``None``) or an operator without a usable hash, a dummy hash is
    verified instead and the answer is False: otherwise such logins would be answered
    noticeably faster than a wrong password, and the delay would tell which logins exist.
    """
    if password_hash:
        try:
            return _hasher.verify(password_hash, password)
        except VerificationError:
            return False
        except InvalidHashError:
            pass  # not an argon2 hash: nothing was computed yet, fall through
    try:
        _hasher.verify(_dummy_hash(), password)
    except VerificationError:
        pass
    return False
