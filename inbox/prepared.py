"""Core statements compiled once and run on the driver's cursor: the ingest path's statements.

``Connection.execute`` of a prebuilt statement still costs ~20 µs (SQLite) to ~40 µs
(PostgreSQL) of Python per statement on top of the driver: the execution context, the cache
key lookup, parameter processing, the result object. Applying an event runs about eight
statements, so that was a quarter of its CPU time (docs/performance.md section 1).
``Prepared`` compiles its statement with SQLAlchemy's own compiler, once per dialect and set
of parameter names, keeps the bind processors of the parameters' types and the result
processors of the returned columns, and then runs it on the connection's DBAPI cursor: the
values reach the driver and come back exactly as through ``Connection.execute`` (JSON
serialised, SQLite dates as text), within the connection's transaction.

What is kept of ``Connection.execute``'s contract: the engine's ``before_cursor_execute``
listeners are called (with no execution context; the tests inject failures and count
statements there), and a driver error is raised as SQLAlchemy's ``DBAPIError`` subclass
(``journal_failures.is_transient`` tells a locked database from a bad event by it), with a
dropped connection invalidated. What is not: statements that need SQLAlchemy at execution
time (Python-side column defaults, "post-compile" parameters) are refused when compiled, so
a caller gives every value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

#: A statement, or one built per dialect name (``INSERT ... ON CONFLICT`` is dialect-specific).
StatementSource = sa.Executable | Callable[[str], sa.Executable]
Processor = Callable[[Any], Any] | None
#: A parameter the caller gives (see ``_Compiled.binds``).
_GIVEN: Any = object()
#: libpq's transaction status "idle": no transaction open (``psycopg.pq.TransactionStatus``).
_IDLE = 0


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: The parameter names in the driver's order (positional styles), else None (by name).
    positions: tuple[str, ...] | None
    #: (name, bind processor, constant): a constant (``LIMIT 1``) is the statement's own
    #: value, already processed; the others come from the caller's parameters.
    binds: tuple[tuple[str, Processor, Any], ...]
    #: Result processors by column position (None: the whole row is used as the driver gives it).
    results: tuple[Processor, ...] | None


def _run(conn: sa.Connection, sql: str, values: Any, *, many: bool) -> Any:
    """``sql`` on a new driver cursor, as ``Connection.execute`` would: the engine's cursor
    listeners around it, a driver error raised as SQLAlchemy's; the cursor is returned."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    dispatch = conn.dispatch
    if dispatch.before_cursor_execute:
        dispatch.before_cursor_execute(conn, cursor, sql, values, None, many)
    try:
        (cursor.executemany if many else cursor.execute)(sql, values)
    except conn.dialect.loaded_dbapi.Error as exc:
        _raise_wrapped(conn, conn.dialect, sql, values, exc, cursor)
    if dispatch.after_cursor_execute:
        dispatch.after_cursor_execute(conn, cursor, sql, values, None, many)
    return cursor


def execute_driver_sql(conn: sa.Connection, sql: str) -> None:
    """``sql`` (no parameters, no rows) on the driver's cursor, as ``Connection.execute``
    would run it (listeners, errors) but without its ~40 µs of execution context: SQLite's
    ``BEGIN IMMEDIATE`` at the start of every transaction (``inbox.db``)."""
    _run(conn, sql, (), many=False).close()


@contextmanager
def pipelined(conn: sa.Connection) -> Iterator[None]:
    """Statements run in this block go to PostgreSQL together: psycopg's pipeline mode, one
    round trip for all of them (when the block ends) instead of one each. Their results are
    read after the block (``Prepared.execute`` returns before its row is read); reading one
    inside it costs a round trip of its own.

    If the block starts the connection's transaction, its ``BEGIN`` goes with the block's
    statements too: psycopg sends ``BEGIN`` and waits for it before the first statement of a
    transaction, one more round trip, so the driver is switched to autocommit (it sends no
    ``BEGIN``) and ``BEGIN`` is queued here instead; ``end_transaction`` switches it back once
    the transaction is over (``Inbox._transaction`` calls it; ``committed`` too).

    A driver error is raised as SQLAlchemy's, as ``Connection.execute`` would; it may come
    from a later statement than the failing one (at the sync), and after any failure the
    connection is discarded, not pooled. SQLite: no round trips, nothing to do."""
    if conn.dialect.name != "postgresql":
        yield
        return
    dialect = conn.dialect
    driver = conn.connection.driver_connection
    begin = driver.pgconn.transaction_status == _IDLE and not driver.autocommit  # type: ignore[union-attr]
    try:
        if begin:
            driver.autocommit = True  # type: ignore[union-attr]
        with driver.pipeline():  # type: ignore[union-attr]
            if begin:
                driver.cursor().execute("BEGIN", prepare=False)  # type: ignore[union-attr]
            yield
    except BaseException as exc:
        # An aborted pipeline may leave results on the connection that the next user would
        # read as its own: it is never pooled again (a failure is rare; a reconnect is cheap).
        dropped = isinstance(exc, dialect.loaded_dbapi.Error) and dialect.is_disconnect(
            exc, conn.connection.dbapi_connection, None
        )
        conn.invalidate()
        if not isinstance(exc, dialect.loaded_dbapi.Error):
            raise
        raise sa.exc.DBAPIError.instance(
            "(pipeline)",
            None,
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=dropped,
            dialect=dialect,
        ) from exc


def end_transaction(conn: sa.Connection) -> None:
    """After the connection's transaction is over (committed or rolled back): the driver back
    to how the pool gave it, if ``pipelined`` began the transaction (PostgreSQL)."""
    if conn.dialect.name != "postgresql" or conn.invalidated:
        return
    driver = conn.connection.driver_connection
    if driver.autocommit and driver.pgconn.transaction_status == _IDLE:  # type: ignore[union-attr]
        driver.autocommit = False  # type: ignore[union-attr]


def committed(conn: sa.Connection, write: Callable[[sa.Connection], None]) -> None:
    """``write(conn)``'s statements, then the transaction's commit; on PostgreSQL all of them
    in one round trip. psycopg's ``commit()`` in pipeline mode syncs by itself, and leaving
    the mode syncs again: two round trips. Here ``COMMIT`` is queued as a statement instead,
    so the one sync of leaving the mode sends everything; SQLAlchemy's commit then finds the
    driver's transaction already ended and sends nothing. A failure anywhere (a write, the
    commit itself) is raised as ``pipelined`` raises it, and nothing is committed."""
    if conn.dialect.name != "postgresql":
        write(conn)
        conn.commit()
        return
    with pipelined(conn):
        write(conn)
        driver = conn.connection.driver_connection
        driver.cursor().execute("COMMIT", prepare=False)  # type: ignore[union-attr]
    conn.commit()
    end_transaction(conn)


def execute_together(
    conn: sa.Connection, parts: Sequence[tuple[Prepared, Mapping[str, Any]]]
) -> None:
    """Run these statements (writes that return nothing) as one: on PostgreSQL one statement
    of data-modifying ``WITH`` clauses, ``WITH w0 AS (INSERT ...), w1 AS (UPDATE ...) UPDATE
    ...``, each part with its own parameters; elsewhere one after another.

    Why: psycopg's work per statement (~40 µs of the client's CPU: a cursor, the query's
    conversion, its results) was most of what is left of applying an event on PostgreSQL
    (docs/performance.md section 1), and a message in an open dialogue writes four rows.

    What the caller must know: the parts run on one snapshot and in no set order, so no part
    may read or change a row another part writes (two updates of one row in one statement
    are undefined in PostgreSQL); foreign keys are checked at the statement's end, so a part
    may refer to a row another one inserts. ``Writes`` queues exactly such rows."""
    if conn.dialect.name != "postgresql" or len(parts) < 2:
        for statement, params in parts:
            statement.execute(conn, params)
        return
    compiled = tuple(statement._for(conn, params) for statement, params in parts)
    key = tuple(map(id, compiled))  # each kept by its ``Prepared``
    sql = _TOGETHER.get(key)
    if sql is None:
        sql = _TOGETHER[key] = _together_sql([c.sql for c in compiled])
    values: dict[str, Any] = {}
    for n, ((statement, params), one) in enumerate(zip(parts, compiled, strict=True)):
        for name, value in statement._values(one, params).items():
            values[f"w{n}_{name}"] = value
    _run(conn, sql, values, many=False).close()


#: ``execute_together``'s statements, by their parts (a handful of shapes: the writes of a
#: message in an open dialogue, of a first contact, with moderation...).
_TOGETHER: dict[tuple[int, ...], str] = {}
_PARAMETER = re.compile(r"%\((\w+)\)s")


def _together_sql(parts: Sequence[str]) -> str:
    """One statement of ``parts`` (psycopg's named parameters, each renamed ``w<n>_name``)."""
    renamed = [_PARAMETER.sub(f"%(w{n}_\\1)s", sql) for n, sql in enumerate(parts)]
    clauses = ", ".join(f"w{n} AS ({sql})" for n, sql in enumerate(renamed[:-1]))
    return f"WITH {clauses} {renamed[-1]}"


class Prepared:
    """A Core statement run on the driver's cursor (see the module's docstring)."""

    def __init__(self, statement: StatementSource) -> None:
        self._source = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def execute(self, conn: sa.Connection, params: Mapping[str, Any]) -> _Result:
        """Run with ``params`` (their names fix the columns an INSERT/UPDATE sets); the
        result's ``first`` reads the row a query or ``RETURNING`` gives."""
        compiled = self._for(conn, params)
        cursor = _run(conn, compiled.sql, self._values(compiled, params), many=False)
        return _Result(conn, cursor, compiled)

    def execute_many(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per row (all rows with the same names), as the driver's ``executemany``."""
        if len(rows) == 1:
            self.execute(conn, rows[0])
            return
        if not rows:
            return
        compiled = self._for(conn, rows[0])
        many = [self._values(compiled, row) for row in rows]
        _run(conn, compiled.sql, many, many=True).close()

    def _for(self, conn: sa.Connection, params: Mapping[str, Any]) -> _Compiled:
        """The statement compiled for this connection's dialect and these parameter names."""
        if not conn.in_transaction():  # the driver would autocommit each statement (SQLite)
            raise sa.exc.InvalidRequestError("Prepared statements run in a begun transaction")
        key = (conn.dialect.name, tuple(params))
        return self._compiled.get(key) or self._compile(conn.dialect, key)

    @staticmethod
    def _values(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
        values = [
            constant
            if constant is not _GIVEN
            else process(params[name])
            if process is not None
            else params[name]
            for name, process, constant in compiled.binds
        ]
        if compiled.positions is not None:
            return values
        return {name: value for (name, _, _), value in zip(compiled.binds, values, strict=True)}

    def first(self, conn: sa.Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        return self.execute(conn, params).first()

    def scalar(self, conn: sa.Connection, params: Mapping[str, Any]) -> Any:
        row = self.first(conn, params)
        return None if row is None else row[0]

    def _compile(self, dialect: Dialect, key: tuple[str, tuple[str, ...]]) -> _Compiled:
        source = self._source
        statement: Any = source if isinstance(source, sa.Executable) else source(dialect.name)
        compiled: Any = statement.compile(dialect=dialect, column_keys=list(key[1]))
        if (
            getattr(compiled, "insert_prefetch", None)
            or getattr(compiled, "update_prefetch", None)
            or compiled.post_compile_params
            or compiled.literal_execute_params
        ):
            raise ValueError(f"not runnable without SQLAlchemy (give every value): {compiled}")
        positions = tuple(compiled.positiontup) if compiled.positional else None
        names = positions if positions is not None else tuple(compiled.binds)
        given = set(key[1])
        binds = []
        for name in names:
            bind = compiled.binds[name]
            process = bind.type._cached_bind_processor(dialect)
            constant: Any = _GIVEN
            if name not in given and not bind.required:
                value = bind.effective_value
                constant = process(value) if process is not None else value
            binds.append((name, process, constant))
        columns = getattr(statement, "exported_columns", None)
        results: tuple[Processor, ...] | None = None
        if columns is not None:
            processors = tuple(
                column.type._cached_result_processor(dialect, None) for column in columns
            )
            results = processors if any(p is not None for p in processors) else None
        done = _Compiled(compiled.string, positions, tuple(binds), results)
        self._compiled[key] = done
        return done


class _Result:
    """The rows of one execution, processed as SQLAlchemy would."""

    __slots__ = ("_compiled", "_conn", "_cursor")

    def __init__(self, conn: sa.Connection, cursor: Any, compiled: _Compiled) -> None:
        self._conn = conn
        self._cursor = cursor
        self._compiled = compiled

    def first(self) -> tuple[Any, ...] | None:
        rows = self._fetch(many=False)
        return rows[0] if rows else None

    def all(self) -> list[tuple[Any, ...]]:
        return self._fetch(many=True)

    def _fetch(self, *, many: bool) -> list[tuple[Any, ...]]:
        try:  # a driver may report a statement's error with its first row
            if many:
                rows = self._cursor.fetchall()
            else:
                row = self._cursor.fetchone()
                rows = [] if row is None else [row]
        except self._conn.dialect.loaded_dbapi.Error as exc:
            _raise_wrapped(self._conn, self._conn.dialect, self._compiled.sql, None, exc, None)
        self._cursor.close()
        processors = self._compiled.results
        if processors is None:
            return rows  # type: ignore[no-any-return]
        return [
            tuple(
                value if p is None or value is None else p(value)
                for p, value in zip(processors, row, strict=True)
            )
            for row in rows
        ]


def _raise_wrapped(
    conn: sa.Connection,
    dialect: Dialect,
    sql: str,
    values: Any,
    exc: Any,
    cursor: Any,
) -> NoReturn:
    """Raise a driver error as ``Connection.execute`` would: SQLAlchemy's exception class,
    the connection invalidated if the database dropped it."""
    dropped = dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
    if dropped:
        conn.invalidate(exc)
    raise sa.exc.DBAPIError.instance(
        sql,
        values,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=dropped,
        dialect=dialect,
    ) from exc
