"""A database that refuses some inbound messages: a poison that survives the cleaning.

A real deployment's database can refuse a row the application thinks fine: a trigger that a
data-loss-prevention or archiving system installed, a constraint a DBA added. Here a trigger
refuses inbound messages that mention a passport (``паспорт``), on SQLite and PostgreSQL
alike; PostgreSQL's error quotes the citizen's text, as such errors do. Dropping the trigger
is the administrator fixing the cause.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

MARK = "паспорт"

_SQLITE = f"""
CREATE TRIGGER otklik_test_dlp BEFORE INSERT ON message
WHEN NEW.direction = 'in' AND NEW.text LIKE '%{MARK}%'
BEGIN SELECT RAISE(ABORT, 'DLP: a passport number may not be stored'); END
"""
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION otklik_test_dlp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.direction = 'in' AND NEW.text LIKE '%{MARK}%' THEN
    RAISE EXCEPTION 'DLP: a passport number may not be stored: %', NEW.text;
  END IF;
  RETURN NEW;
END $$
"""
_PG_TRIGGER = (
    "CREATE TRIGGER otklik_test_dlp BEFORE INSERT ON message "
    "FOR EACH ROW EXECUTE FUNCTION otklik_test_dlp()"
)


def install(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(_PG_FUNCTION))
            conn.execute(sa.text(_PG_TRIGGER))
        else:
            conn.execute(sa.text(_SQLITE))


def remove(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("DROP TRIGGER IF EXISTS otklik_test_dlp ON message"))
            conn.execute(sa.text("DROP FUNCTION IF EXISTS otklik_test_dlp()"))
        else:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS otklik_test_dlp"))


@contextmanager
def refusing(engine: sa.Engine) -> Iterator[None]:
    """The trigger for the block; always dropped after (the PostgreSQL test database is shared
    by the tests of a session and only truncated between them)."""
    install(engine)
    try:
        yield
    finally:
        remove(engine)
