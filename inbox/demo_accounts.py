"""The demo accounts (their passwords are published in the README) and the check that warns
while any of them still has its demo password."""

from __future__ import annotations

from sqlmodel import Session, col, select

from inbox.auth import verify_password
from inbox.models import Operator, Role

#: Demo accounts (login, name, role, password). Change them before any real use.
DEMO_OPERATORS = [
    ("admin", "Администратор", Role.admin, "admin-demo"),
    ("svetlana", "Светлана Орлова (руководитель смены)", Role.supervisor, "supervisor-demo"),
    ("anna", "Анна Петрова", Role.operator, "operator-demo"),
    ("ivan", "Иван Соколов", Role.operator, "operator-demo"),
]


def demo_passwords_in_use(session: Session) -> list[str]:
    """Logins of active accounts that still have their demo password (published in the
    README): fine for the demo, an open door anywhere else. One argon2 check per demo login
    that exists, so a few tenths of a second at most."""
    logins = [login for login, *_ in DEMO_OPERATORS]
    found = session.exec(
        select(Operator).where(col(Operator.login).in_(logins), Operator.active == True)  # noqa: E712
    ).all()
    by_login = {o.login: o for o in found}
    return [
        login
        for login, _name, _role, password in DEMO_OPERATORS
        if login in by_login and verify_password(by_login[login].password_hash, password)
    ]
