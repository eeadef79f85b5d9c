"""Who is logged in, what their role allows, and CSRF protection of every POST.

The session is Starlette's signed cookie (``SessionMiddleware``, itsdangerous) holding only the
operator's id, when they logged in and a CSRF token. A login lasts ``session_max_age`` seconds
from the moment of logging in (by the runtime's clock), however active the operator is.
The token is checked on every state-changing request: a hidden ``csrf_token`` form field, or
the ``X-CSRF-Token`` header that htmx sends (set on ``<body>``).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from core.clock import as_utc
from inbox.models import Operator, Role
from inbox.web.deps import get_runtime

#: What each role may see: a role includes the ones before it.
ROLE_RANK = {Role.operator.value: 0, Role.supervisor.value: 1, Role.admin.value: 2}
ROLE_NAMES = {
    Role.operator.value: "оператор",
    Role.supervisor.value: "руководитель",
    Role.admin.value: "администратор",
}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class LoginRequired(Exception):
    """Raised by the dependencies when nobody is logged in; answered with a redirect."""


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def verify_csrf(request: Request) -> None:
    """Reject a POST whose token does not match the session's."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise HTTPException(403, detail="Сессия устарела: обновите страницу и повторите.")


def log_in(request: Request, operator: Operator) -> None:
    request.session.clear()
    request.session["operator_id"] = operator.id
    request.session["login_at"] = get_runtime(request).clock.now().timestamp()
    request.session["csrf"] = secrets.token_urlsafe(32)


def current_operator(request: Request) -> Operator:
    operator_id = request.session.get("operator_id")
    if operator_id is None:
        raise LoginRequired
    runtime = get_runtime(request)
    login_at = request.session.get("login_at")
    age = runtime.clock.now().timestamp() - login_at if isinstance(login_at, int | float) else None
    if age is None or age >= runtime.settings.session_max_age:
        request.session.clear()
        raise LoginRequired
    with runtime.factory() as session:
        operator = session.get(Operator, int(operator_id))
    if operator is None or not operator.active or _ended(operator, float(login_at or 0)):
        request.session.clear()
        raise LoginRequired
    return operator


def _ended(operator: Operator, login_at: float) -> bool:
    """Whether a session that logged in at ``login_at`` was ended server-side since (the
    cookie is signed, not stored, so this is what makes logout and password resets stick)."""
    valid_after = operator.sessions_valid_after
    return valid_after is not None and login_at < as_utc(valid_after).timestamp()


def has_role(operator: Operator, role: Role) -> bool:
    return ROLE_RANK.get(operator.role, -1) >= ROLE_RANK[role.value]


def require(role: Role):  # type: ignore[no-untyped-def]
    """A dependency: the logged-in operator, if their role includes ``role`` (else 403)."""

    def dependency(request: Request) -> Operator:
        operator = current_operator(request)
        if not has_role(operator, role):
            raise HTTPException(403, detail="Недостаточно прав для этой страницы.")
        return operator

    return dependency


OperatorDep = Annotated[Operator, Depends(require(Role.operator))]
SupervisorDep = Annotated[Operator, Depends(require(Role.supervisor))]
AdminDep = Annotated[Operator, Depends(require(Role.admin))]
