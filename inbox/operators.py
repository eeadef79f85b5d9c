"""Operator accounts: creating them and setting passwords, the same for the admin pages and
for the ``otklik operator`` command (which is how a fresh deployment gets its first admin:
demo operators have published passwords and are for the demo only)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from inbox import throttle
from inbox.auth import hash_password
from inbox.models import Operator, Role

MIN_PASSWORD_LENGTH = 8


class AccountError(ValueError):
    """The request cannot be done; the message is for the person who made it (Russian)."""


def normalize_login(login: str) -> str:
    return login.strip().lower()


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Пароль должен быть не короче {MIN_PASSWORD_LENGTH} символов.")


def find(session: Session, login: str) -> Operator | None:
    return session.exec(select(Operator).where(Operator.login == normalize_login(login))).first()


def create(session: Session, login: str, display_name: str, role: str, password: str) -> Operator:
    """Add an operator (not committed). Refuses an empty login or name, an unknown role, a
    short password and a login that is taken."""
    login = normalize_login(login)
    if not login or not display_name.strip():
        raise AccountError("Нужны логин и имя.")
    if role not in {r.value for r in Role}:
        raise AccountError(f"Неизвестная роль «{role}».")
    check_new_password(password)
    if find(session, login) is not None:
        raise AccountError(f"Логин «{login}» уже занят.")
    operator = Operator(
        login=login, display_name=display_name.strip(), role=role,
        password_hash=hash_password(password),
    )  # fmt: skip
    session.add(operator)
    session.flush()
    return operator


def set_password(session: Session, operator: Operator, password: str, now: datetime) -> None:
    """Give ``operator`` a new password (not committed): every session that logged in before
    ``now`` ends, and a lock that failed logins put on the login name is lifted (whoever set
    the password knows it)."""
    check_new_password(password)
    operator.password_hash = hash_password(password)
    operator.sessions_valid_after = now
    session.add(operator)
    throttle.clear_login(session, operator.login)
