"""Engines and sessions for SQLite (default, WAL) and PostgreSQL; migrations via Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from inbox.prepared import execute_driver_sql

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class MigrationRefused(RuntimeError):
    """A migration found data it must not change on its own; the message says what to do
    (``otklik db upgrade`` prints it as one line)."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine; SQLite files get WAL, a busy timeout and foreign keys on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps commits safe
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection: sa.Connection) -> None:
    """Take SQLite's write lock at BEGIN: a read-then-write transaction can then never fail
    half-way with "database is locked" because another process wrote in between.

    A connection with the execution option ``read_only`` (``READ_ONLY``) begins a deferred
    transaction instead: it only reads, and a read in WAL mode never waits for a writer. The
    knowledge base reads its overrides so, because it may be rebuilt in the middle of a
    request whose own transaction already holds the write lock."""
    read_only = connection.get_execution_options().get("read_only")
    execute_driver_sql(connection, "BEGIN" if read_only else "BEGIN IMMEDIATE")


#: ``session.connection(execution_options=READ_ONLY)`` before the first query: see above.
READ_ONLY = {"read_only": True}


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, class_=Session, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (creates the SQLite file if needed)."""
    if url.startswith("sqlite"):
        make_engine(url).dispose()  # creates the parent directory
    command.upgrade(alembic_config(url), revision)
