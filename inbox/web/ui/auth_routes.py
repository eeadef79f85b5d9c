"""Login and logout, with login throttling (``inbox/throttle.py``).

Every attempt is answered the same way whether the login exists or not: the same messages,
one argon2 verification each (``check_password``), and the same counters and locks. At most
``checks_at_once`` attempts are checked at once, at a low CPU priority
(``inbox/password_checks.py``); one more is answered "busy" (503) without being counted, so
a flood of logins cannot starve the operators' pages of CPU. Failed
and refused attempts are audit events with the login typed and the client address, never
the password.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, select

from core.config import Settings
from inbox import audit, operators, password_checks, throttle
from inbox.auth import check_password
from inbox.db import session_scope
from inbox.models import Operator
from inbox.runtime import Runtime
from inbox.web.deps import RuntimeDep
from inbox.web.ui.security import OperatorDep, log_in, verify_csrf
from inbox.web.ui.templating import duration_text, flash, render

router = APIRouter()

WRONG = "Неверный логин или пароль."
BUSY = "Сервер сейчас проверяет много входов. Повторите попытку через секунду."
_CHECKS_MADE = threading.Lock()


def checks_at_once(settings: Settings) -> int:
    """Password checks one web process runs at once (``OTKLIK_LOGIN_CHECKS_AT_ONCE``; 0: half
    the CPU cores). With them all taken, a login is answered 503 + ``Retry-After: 1`` at once,
    uncounted, and no thread waits in line (``inbox/password_checks.py``)."""
    configured = settings.login_checks_at_once
    return configured if configured > 0 else password_checks.default_at_once()


def _checks(request: Request, settings: Settings) -> password_checks.PasswordChecks:
    found: password_checks.PasswordChecks | None = getattr(
        request.app.state, "password_checks", None
    )
    if found is None:
        with _CHECKS_MADE:
            found = getattr(request.app.state, "password_checks", None)
            if found is None:
                found = password_checks.PasswordChecks(checks_at_once(settings))
                request.app.state.password_checks = found
    return found


#: Audit events keep at most this much of what was typed as the login.
LOGIN_KEPT = 100


def client_ip(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy: see docs/operator-ui.md)."""
    return request.client.host if request.client else "unknown"


def locked_message(until: datetime, now: datetime) -> str:
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return (
        "Слишком много неудачных попыток входа. Вход временно заблокирован: попробуйте снова "
        f"через {duration_text(timedelta(minutes=minutes))}. Если вы забыли пароль, "
        "обратитесь к администратору."
    )


def _refused(request: Request, login: str, until: datetime, now: datetime) -> Response:
    response = render(
        request, "login.html", error=locked_message(until, now), login=login, status_code=429
    )
    response.headers["Retry-After"] = str(max(1, math.ceil((until - now).total_seconds())))
    return response


@router.get("/login")
def login_page(request: Request) -> Response:
    return render(request, "login.html")


def _busy(request: Request, login: str) -> Response:
    response = render(request, "login.html", error=BUSY, login=login, status_code=503)
    response.headers["Retry-After"] = "1"
    return response


@router.post("/login", dependencies=[Depends(verify_csrf)])
def login(
    request: Request,
    rt: RuntimeDep,
    login: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    # A free password-check slot or an immediate "busy": never a thread waiting in line.
    checks = _checks(request, rt.settings)
    if not checks.admit():
        return _busy(request, login)
    try:
        return _attempt(request, rt, checks, login, password)
    finally:
        checks.release()


def _attempt(
    request: Request,
    rt: Runtime,
    checks: password_checks.PasswordChecks,
    login: str,
    password: str,
) -> Response:
    name, ip, now = operators.normalize_login(login), client_ip(request), rt.clock.now()
    policy = throttle.ThrottlePolicy.from_settings(rt.settings)
    subjects = policy.subjects(name, ip)
    with session_scope(rt.factory) as session:
        # Check and count in one step, before the password is checked (inbox/throttle.py).
        reserved = throttle.reserve(session, subjects, now, policy)
        if reserved.refused_until is not None:
            until = reserved.refused_until.isoformat()
            _audit_attempt(session, "login_refused", now, name, ip, until=until)
            _audit_locks(session, reserved.started, now, name, ip)
    if reserved.refused_until is not None:
        return _refused(request, login, reserved.refused_until, now)

    with rt.factory() as session:
        operator = session.exec(select(Operator).where(Operator.login == name)).first()
    matches = checks.verify(operator.password_hash if operator else None, password)
    if operator is None or not matches or not operator.active:
        reason = "unknown_login" if operator is None else "wrong_password"
        if operator is not None and matches:
            reason = "inactive"
        locked_until = _count_failure(rt, policy, subjects, now, name, ip, reason)
        if locked_until is not None:
            return _refused(request, login, locked_until, now)
        return render(request, "login.html", error=WRONG, login=login, status_code=401)

    with session_scope(rt.factory) as session:
        throttle.count_success(session, subjects)
        audit.record(
            session, "logged_in", now, operator_id=operator.id, actor=operator.login, ip=ip
        )
    log_in(request, operator)
    return RedirectResponse("/ui/inbox", status_code=303)


def _count_failure(
    rt: Runtime,
    policy: throttle.ThrottlePolicy,
    subjects: list[throttle.Subject],
    now: datetime,
    name: str,
    ip: str,
    reason: str,
) -> datetime | None:
    """Settle a failed attempt; until when its login or address is now locked, if it is."""
    with session_scope(rt.factory) as session:
        locks, until = throttle.count_failure(session, subjects, now, policy)
        _audit_attempt(session, "login_failed", now, name, ip, reason=reason)
        _audit_locks(session, locks, now, name, ip)
    with session_scope(rt.factory) as session:
        throttle.prune(session, now, policy)
    return until


def _audit_locks(
    session: Session, locks: list[throttle.Lock], now: datetime, name: str, ip: str
) -> None:
    for lock in locks:
        _audit_attempt(
            session, "login_locked", now, name, ip,
            locked=lock.subject.scope, until=lock.until.isoformat(),
        )  # fmt: skip


def _audit_attempt(
    session: Session, kind: str, now: datetime, name: str, ip: str, **data: str
) -> None:
    """An audit event about a login attempt by someone not (yet) known: what they typed as
    the login (truncated) and their address."""
    fields: dict[str, Any] = {**data, "login": name[:LOGIN_KEPT], "ip": ip}
    audit.record(session, kind, now, actor="anonymous", **fields)


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request, rt: RuntimeDep) -> Response:
    operator_id = request.session.get("operator_id")
    if operator_id is not None:
        with session_scope(rt.factory) as session:
            operator = session.get(Operator, int(operator_id))
            if operator is not None:
                # The cookie is signed, not stored: a copy of it would outlive a plain
                # clear(). Logging out ends the operator's sessions on every device.
                operator.sessions_valid_after = rt.clock.now()
                session.add(operator)
                audit.record(
                    session, "logged_out", rt.clock.now(),
                    operator_id=operator.id, actor=operator.login,
                )  # fmt: skip
    request.session.clear()
    return RedirectResponse("/ui/login", status_code=303)


@router.get("/account")
def account_page(request: Request, me: OperatorDep) -> Response:
    return render(request, "account.html", me, section="account")


@router.post("/account/password", dependencies=[Depends(verify_csrf)])
def change_password(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    current: Annotated[str, Form()],
    new: Annotated[str, Form()],
    repeat: Annotated[str, Form()],
) -> Response:
    """An operator changes their own password: the current one is required (a session left
    open on a shared computer must not be enough), and their other sessions end."""

    def refuse(error: str) -> Response:
        return render(request, "account.html", me, section="account", error=error, status_code=400)

    if not check_password(me.password_hash, current):
        return refuse("Текущий пароль указан неверно.")
    try:
        operators.check_new_password(new)
    except operators.AccountError as exc:
        return refuse(str(exc))
    if new != repeat:
        return refuse("Новый пароль и повтор не совпадают.")
    if new == current:
        return refuse("Новый пароль совпадает с текущим.")
    now = rt.clock.now()
    with session_scope(rt.factory) as session:
        operator = session.get(Operator, me.id)
        assert operator is not None  # current_operator just loaded it
        operators.set_password(session, operator, new, now)
        audit.record(session, "password_changed", now, operator_id=me.id, actor=me.login)
    log_in(request, me)  # this session goes on, with a login time after the change
    flash(request, "Пароль изменён. Вход на других компьютерах завершён.")
    return RedirectResponse("/ui/inbox", status_code=303)
