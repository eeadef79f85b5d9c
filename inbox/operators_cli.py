"""``otklik operator``: accounts from the command line.

A fresh deployment needs its first administrator before anyone can log in to the admin
pages; ``otklik demo load`` makes operators whose passwords are printed in the README, so a
real one is made here. Passwords are asked for with a hidden prompt (twice), or read from
standard input with ``--password-stdin`` (for provisioning scripts); never from an option,
which would leave them in the shell history and the process list.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from sqlmodel import Session, col, select

from core.config import get_settings
from inbox import audit, operators, throttle
from inbox.db import make_engine, session_factory
from inbox.models import Operator, Role

operator_app = typer.Typer(help="Operator accounts.", no_args_is_help=True)

ACTOR = "cli"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"otklik: {message}", err=True)
    return typer.Exit(2)


@contextmanager
def _session() -> Iterator[Session]:
    engine = make_engine(get_settings().effective_database_url)
    try:
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@operator_app.command("add")
def add(
    login: Annotated[str, typer.Argument(help="Login name (stored in lower case)")],
    name: Annotated[str, typer.Option("--name", help="Name shown to colleagues")],
    role: Annotated[Role, typer.Option(help="operator, supervisor or admin")] = Role.operator,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create an operator account (the first administrator of a new deployment, say)."""
    password = _read_password(password_stdin)
    with _session() as session:
        try:
            operator = operators.create(session, login, name, role.value, password)
        except operators.AccountError as exc:
            raise _fail(str(exc)) from None
        audit.record(
            session, "operator_created", datetime.now(UTC), actor=ACTOR,
            login=operator.login, role=operator.role,
        )  # fmt: skip
        session.commit()
        typer.echo(f"created {operator.role} {operator.login}")


@operator_app.command("password")
def password(
    login: Annotated[str, typer.Argument(help="Whose password")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Set an operator's password: their sessions end and a login lock is lifted."""
    with _session() as session:
        operator = operators.find(session, login)
        if operator is None:
            raise _fail(f"no operator with login {login!r}")
        new = _read_password(password_stdin)
        now = datetime.now(UTC)
        try:
            operators.set_password(session, operator, new, now)
        except operators.AccountError as exc:
            raise _fail(str(exc)) from None
        audit.record(
            session, "operator_password_reset", now, actor=ACTOR, login=operator.login
        )  # fmt: skip
        session.commit()
        typer.echo(f"password of {operator.login} changed; their sessions have ended")


@operator_app.command("list")
def list_operators() -> None:
    """Print every account: login, role, active or not, name."""
    with _session() as session:
        for op in session.exec(select(Operator).order_by(col(Operator.login))).all():
            state = "active" if op.active else "disabled"
            typer.echo(f"{op.login}\t{op.role}\t{state}\t{op.display_name}")


@operator_app.command("unlock")
def unlock(
    login: Annotated[str | None, typer.Argument(help="Lift the lock on this login")] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="Lift the lock on this client address")
    ] = None,
) -> None:
    """Lift a login lock that failed logins put on a login name or on a client address."""
    if (login is None) == (address is None):
        raise _fail("give a LOGIN or --address IP (one of them)")
    now = datetime.now(UTC)
    with _session() as session:
        if address is not None:
            address = address.strip()
            if not throttle.clear_address(session, address):
                raise _fail(f"address {address!r} has no failed logins or lock")
            audit.record(session, "address_unlocked", now, actor=ACTOR, address=address)
            done = f"logins from {address} unlocked"
        else:
            assert login is not None
            name = operators.normalize_login(login)
            throttle.clear_login(session, name)
            audit.record(session, "login_unlocked", now, actor=ACTOR, login=name)
            done = f"login {name} unlocked"
        session.commit()
        typer.echo(done)
