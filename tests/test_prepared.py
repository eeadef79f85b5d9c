"""``inbox.prepared``: statements on the driver's cursor behave as ``Connection.execute``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from inbox.ingest import JOURNAL
from inbox.journal_failures import is_transient
from inbox.prepared import Prepared, execute_together
from inbox.runtime import Runtime
from tests.helpers.sql import recorded_statements

INSERT = Prepared(JOURNAL.insert().returning(JOURNAL.c.id))
ROW = Prepared(
    sa.select(JOURNAL.c.event, JOURNAL.c.received_at, JOURNAL.c.attempts)
    .where(JOURNAL.c.id == sa.bindparam("rid"))
    .limit(1)
)
AT = datetime(2026, 12, 4, 10, 30, 15, 123456, tzinfo=UTC)


def row(external_id: str) -> dict[str, Any]:
    return {
        "channel": "vk",
        "external_id": external_id,
        "received_at": AT,
        "event": {"text": "Привет", "n": [1, None]},
        "attempts": 0,
    }


def test_values_go_and_come_back_as_through_sqlalchemy(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        conn.begin()
        rid = INSERT.scalar(conn, row("a"))
        event, received_at, attempts = ROW.first(conn, {"rid": rid}) or ()
        assert ROW.first(conn, {"rid": rid + 1}) is None
        core = conn.execute(
            sa.select(JOURNAL.c.event, JOURNAL.c.received_at).where(JOURNAL.c.id == rid)
        ).one()
        conn.commit()
    assert event == core.event == {"text": "Привет", "n": [1, None]}
    assert received_at == core.received_at  # SQLite: text parsed back, as SQLAlchemy does
    assert isinstance(received_at, datetime) and attempts == 0


def test_a_driver_error_is_sqlalchemys_and_listeners_see_the_statement(runtime: Runtime) -> None:
    with recorded_statements(runtime.engine) as seen, runtime.engine.connect() as conn:
        conn.begin()
        INSERT.execute(conn, row("same"))
        with pytest.raises(sa.exc.IntegrityError) as raised:
            INSERT.execute(conn, row("same"))
    assert not is_transient(raised.value)  # a bad event, counted against it
    assert sum(s.startswith("INSERT INTO inbound_event") for s in seen) == 2


def test_outside_a_transaction_or_without_every_value_it_refuses(runtime: Runtime) -> None:
    """SQLite's driver would commit each statement on its own; a column default would need
    SQLAlchemy at execution time."""
    with runtime.engine.connect() as conn:
        with pytest.raises(sa.exc.InvalidRequestError, match="begun transaction"):
            INSERT.execute(conn, row("b"))
        conn.begin()
        with pytest.raises(ValueError, match="give every value"):
            INSERT.execute(conn, {k: v for k, v in row("c").items() if k != "attempts"})


PLAIN_INSERT = Prepared(JOURNAL.insert())
MARK = Prepared(
    JOURNAL.update()
    .where(JOURNAL.c.id == sa.bindparam("rid"))
    .values(error=sa.bindparam("error"), attempts=sa.bindparam("attempts"))
)


def journal_rows(runtime: Runtime) -> dict[str, tuple[Any, ...]]:
    with runtime.engine.connect() as conn:
        found = conn.execute(sa.select(JOURNAL.c.external_id, JOURNAL.c.error, JOURNAL.c.event))
        return {r.external_id: (r.error, r.event) for r in found}


def test_writes_together_are_one_statement_on_postgresql_each_with_its_own_values(
    runtime: Runtime,
) -> None:
    """Parts with the same parameter names keep their own values; SQLite runs them one by
    one (it has no data-modifying ``WITH``)."""
    with runtime.engine.connect() as conn:
        conn.begin()
        rid = INSERT.scalar(conn, row("old"))
        conn.commit()
    with recorded_statements(runtime.engine) as seen, runtime.engine.connect() as conn:
        conn.begin()
        first, second = {**row("one"), "event": {"n": 1}}, {**row("two"), "event": {"n": 2}}
        parts = [(PLAIN_INSERT, first), (PLAIN_INSERT, second)]
        execute_together(conn, [*parts, (MARK, {"rid": rid, "error": "x", "attempts": 3})])
        conn.commit()
    writes = [s for s in seen if s.startswith(("INSERT", "UPDATE", "WITH"))]
    if runtime.engine.dialect.name == "postgresql":
        assert len(writes) == 1 and writes[0].startswith("WITH w0 AS (INSERT"), writes
    else:
        assert len(writes) == 3, writes
    rows = journal_rows(runtime)
    assert rows["one"] == (None, {"n": 1}) and rows["two"] == (None, {"n": 2})
    assert rows["old"][0] == "x"


def test_a_failing_part_fails_them_all(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        conn.begin()
        INSERT.execute(conn, row("taken"))
        conn.commit()
    with runtime.engine.connect() as conn:
        conn.begin()
        with pytest.raises(sa.exc.IntegrityError):  # SQLAlchemy's, as for one statement
            execute_together(conn, [(PLAIN_INSERT, row("new")), (PLAIN_INSERT, row("taken"))])
        conn.rollback()
    assert set(journal_rows(runtime)) == {"taken"}
