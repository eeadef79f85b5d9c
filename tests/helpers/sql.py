"""What a block of code sends to the database, for tests that count or inspect statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa


@contextmanager
def recorded_statements(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL of every statement run on ``engine`` inside the block, in order (the engine's
    ``before_cursor_execute`` event: ``Connection.execute`` and ``inbox.prepared`` alike)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
