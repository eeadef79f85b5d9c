"""Counting a block's round trips to PostgreSQL, from libpq's own protocol trace."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import sqlalchemy as sa
from psycopg import pq

#: A traced message: its direction (F: from the client, B: from the server) and length.
_MESSAGE = re.compile(r"([FB])\t\d+\t")
_READY = re.compile(r"B\t\d+\tReadyForQuery")


class RoundTrips:
    """What a ``round_trips`` block sent and received: the trace's lines, its round trips."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __repr__(self) -> str:
        """The messages' types, one round trip per line (for a failing count's message)."""
        trips, trip = [], []
        for line in self.lines:
            message = _MESSAGE.match(line)
            if message is not None:
                trip.append(f"{message[1]}:{line[message.end() :].split(None, 1)[0]}")
                if _READY.match(line):
                    trips.append(" ".join(trip))
                    trip = []
        return "\n".join([*trips, " ".join(trip)])

    @property
    def count(self) -> int:
        """The server's ``ReadyForQuery`` messages: one ends each exchange the client waits
        for (a ``Sync`` of the extended protocol, with or without a pipeline, or a simple
        query). Counting changes of direction instead would count one exchange twice when
        psycopg reads the first results of a pipeline while still sending it."""
        return sum(1 for line in self.lines if _READY.match(line))


#: libpq writes its trace through a ``FILE`` it opens on the descriptor it is given and
#: never closes: one file per process, never closed, so that no descriptor number it holds is
#: reused (by a database socket, say) while a stray buffer may still be written to it.
_TRACE: list[IO[bytes]] = []


def _trace_file() -> int:
    if not _TRACE:
        _TRACE.append(tempfile.TemporaryFile(prefix="pqtrace-"))  # noqa: SIM115 (see above)
    return _TRACE[0].fileno()


@contextmanager
def round_trips(engine: sa.Engine) -> Iterator[RoundTrips]:
    """The round trips to PostgreSQL of the connections ``engine``'s pool hands out inside the
    block, counted from ``PQtrace`` (libpq's record of every protocol message, both ways),
    from their checkout to their check-in (the pool's pre-ping, before the checkout, is not
    counted)."""
    found = RoundTrips()
    trace = _trace_file()
    start = os.lseek(trace, 0, os.SEEK_END)

    def checkout(dbapi_conn: Any, *_: Any) -> None:
        dbapi_conn.pgconn.trace(trace)
        dbapi_conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def checkin(dbapi_conn: Any, *_: Any) -> None:
        if dbapi_conn is not None:
            dbapi_conn.pgconn.untrace()  # flushes what it wrote

    sa.event.listen(engine, "checkout", checkout)
    sa.event.listen(engine, "checkin", checkin)
    try:
        yield found
    finally:
        sa.event.remove(engine, "checkout", checkout)
        sa.event.remove(engine, "checkin", checkin)
        written = os.pread(trace, 1 << 24, start)
        found.lines = written.decode("utf-8", "replace").splitlines(keepends=True)
