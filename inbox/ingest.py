"""The ingest pipeline: journal first, then process.

1. ``accept`` stores the normalized event in the inbound journal and commits. A second event
   with the same (channel, external id) is a duplicate and changes nothing. Only after
   ``accept`` returns may an adapter acknowledge the platform (HTTP 200, ``ok``, IMAP flag).
2. ``process`` applies the rules: citizen identity, conversation, message, SLA clock,
   moderation, audit, all in one transaction. If the process dies between 1 and 2, the event
   is still in the journal and ``process_pending`` (run at start-up and by the scheduler)
   finishes it; processing a journal row twice is impossible (row lock + processed mark).
3. What the webhook would have done after ``process`` (the citizen bot's answer) is done for
   the events ``process_pending`` finishes by the hook registered for their channel
   (``after_processing``): once per event, since only the call that processed it gets it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, select

from core.clock import Clock, SystemClock, as_utc
from core.events import InboundEvent, journalled_event
from inbox import apply
from inbox.journal_failures import RetryPolicy, due_for_processing, record_failure
from inbox.models import (
    OPEN_STATUSES,
    Conversation,
    InboundRecord,
)
from inbox.prepared import Prepared, committed, end_transaction, pipelined
from rules.engine import Classification, ResponseRules
from rules.moderation import Moderation
from rules.profile import AgencyProfile
from rules.reloadable import Reloadable, as_reloadable

log = logging.getLogger(__name__)

#: The inbound journal's table, for the Core statements of processing.
JOURNAL: sa.Table = InboundRecord.__table__  # type: ignore[attr-defined]
_MARK_PROCESSED = Prepared(
    JOURNAL.update()
    .where(JOURNAL.c.id == sa.bindparam("rid"))
    .values(processed_at=sa.bindparam("at"), error=None, message_id=sa.bindparam("mid"))
)
#: ``SET LOCAL synchronous_commit TO OFF`` as an expression: processing a journal row does not
#: wait for the WAL flush at its commit (PostgreSQL). Only for a row already committed
#: (durably): if the server crashed before the flush, the processing would be lost as a whole
#: (processed mark included), the row would be pending again and ``process_pending`` would
#: redo it. A later durable commit (an outbox message, the bot's answer) flushes this one
#: first, so nothing sent to a citizen can rest on processing that could be lost.
_ASYNC_COMMIT = sa.func.set_config("synchronous_commit", "off", sa.true()).label("async_commit")


def _pending_query(
    where: sa.ColumnElement[bool], dialect: str, *, wait: bool = False
) -> sa.Executable:
    """The journal rows to process (id, channel, event, received at, processed at) in
    journal order, locked (rows another transaction holds are skipped unless ``wait``). On
    PostgreSQL the processing transaction is set up in the same round trip: the rows'
    threads' locks (``apply.journal_thread_lock``, taken after the rows' locks as a separate
    statement would, so a skipped row takes none) and asynchronous commit (``_ASYNC_COMMIT``)."""
    columns = (JOURNAL.c.id, JOURNAL.c.channel, JOURNAL.c.event, JOURNAL.c.received_at,
               JOURNAL.c.processed_at)  # fmt: skip
    query = sa.select(*columns).where(where).with_for_update(skip_locked=not wait)
    if dialect != "postgresql":
        return query.order_by(JOURNAL.c.id)
    rows = query.cte("pending").prefix_with("MATERIALIZED")
    locked = sa.select(*rows.c, apply.journal_thread_lock(rows), _ASYNC_COMMIT)
    return locked.order_by(rows.c.id)


_ONE_ROW = JOURNAL.c.id == sa.bindparam("rid")
_JOURNAL_ROW = Prepared(lambda dialect: _pending_query(_ONE_ROW, dialect))
_JOURNAL_ROW_WAIT = Prepared(lambda dialect: _pending_query(_ONE_ROW, dialect, wait=True))
_JOURNAL_INSERT = apply.insert_ignoring_conflict(JOURNAL)


def _journal_insert_locked(dialect: str) -> sa.Executable:
    """``ingest``'s journal insert: on PostgreSQL the thread's lock is taken in its
    ``RETURNING`` (no lock when it is a duplicate: nothing is returned)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(JOURNAL).on_conflict_do_nothing()
    if dialect == "postgresql":
        return statement.returning(JOURNAL.c.id, apply.journal_thread_lock(JOURNAL))
    return statement.returning(JOURNAL.c.id)


_JOURNAL_INSERT_LOCKED = Prepared(_journal_insert_locked)
_JOURNAL_ID = Prepared(
    sa.select(JOURNAL.c.id).where(
        JOURNAL.c.channel == sa.bindparam("channel"),
        JOURNAL.c.external_id == sa.bindparam("external_id"),
    )
)
#: Events per transaction in ``process_pending``.
BATCH = 50
#: A thread as ``process_pending`` orders it: (channel, thread key).
Thread = tuple[str, str]
#: Kept importable from here (``inbox.apply`` gives the numbers).
appeal_number = apply.appeal_number


@dataclass(frozen=True)
class Accepted:
    record_id: int
    duplicate: bool


@dataclass(frozen=True)
class Processed:
    record_id: int
    classification: Classification
    conversation_id: int | None
    message_id: int | None


@dataclass(frozen=True)
class Finished:
    """An event ``process_pending`` processed, as its channel's after-processing hook gets it."""

    processed: Processed
    #: The event as journalled (``InboundRecord.event``), the same one ``process`` applied.
    event: InboundEvent
    #: When the journal got it: ``clock.now() - received_at`` is how late the processing is.
    received_at: datetime


#: What a channel does after ``process_pending`` processed one of its events.
AfterProcessing = Callable[[Finished], object]


class Inbox:
    """Everything ingest needs, injected: database, rules, agency profile, clock."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        rules: ResponseRules | Reloadable[ResponseRules],
        profile: AgencyProfile | Reloadable[AgencyProfile],
        moderation: Moderation | Reloadable[Moderation],
        clock: Clock | None = None,
        *,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.factory = factory
        #: Rules, profile and moderation as their files say now (an admin's edit applies to
        #: the next event, in this process and in every worker).
        self.rules_source = as_reloadable(rules)
        self.profile_source = as_reloadable(profile)
        self.moderation_source = as_reloadable(moderation)
        self.clock = clock or SystemClock()
        #: How often a failing event is tried before it is set aside (journal_failures).
        self.retry_policy = retry_policy or RetryPolicy()
        self._after: dict[str, AfterProcessing] = {}
        #: Where ``process_pending`` runs a batch's hooks side by side (``run_hooks_on``).
        self._hook_pool: Executor | None = None
        #: The engine behind ``factory`` (found once per factory: it may be replaced).
        self._bound: tuple[sessionmaker[Session], sa.Engine] | None = None

    @property
    def rules(self) -> ResponseRules:
        return self.rules_source.get()

    @property
    def profile(self) -> AgencyProfile:
        return self.profile_source.get()

    @property
    def moderation(self) -> Moderation:
        return self.moderation_source.get()

    def after_processing(self, channel: str, hook: AfterProcessing) -> None:
        """Have ``process_pending`` call ``hook`` for each event of ``channel`` it processes.

        Webhooks do their follow-up (the citizen bot's answer) themselves right after
        ``process``; the hook does it for the events they left to ``process_pending`` (the
        executor was full, processing failed, the server stopped). One hook per channel: a
        second registration replaces the first.
        """
        self._after[channel] = hook

    def run_hooks_on(self, pool: Executor | None) -> None:
        """Run the hooks of a ``process_pending`` batch side by side on ``pool`` (None: one
        after the other, the default). A batch holds one event per thread and its threads'
        turns are held until all its hooks returned, so each thread still goes process,
        hook, process, hook; what overlaps is one dialogue's database round trips with
        another's (``otklik worker``, docs/performance.md section 2)."""
        self._hook_pool = pool

    # -- step 1 -------------------------------------------------------------------------
    def accept(self, event: InboundEvent) -> Accepted:
        """Store the event durably; safe to acknowledge the platform once this returns."""
        with self._transaction() as conn:
            with pipelined(conn):  # PostgreSQL: BEGIN and the insert in one round trip
                journalled = self._journal_sent(conn, event)
            record_id = journalled()
            if record_id is None:
                conn.rollback()
                return self._duplicate(event)
            conn.commit()
            return Accepted(record_id=record_id, duplicate=False)

    def _journal_sent(
        self, conn: sa.Connection, event: InboundEvent, *, lock: bool = False
    ) -> Callable[[], int | None]:
        """Insert the event's journal row; None if (channel, external id) is already there
        (``ON CONFLICT DO NOTHING``: a duplicate costs no exception and no rollback).
        ``lock``: also take the thread's lock (``apply.journal_thread_lock``) for processing it in
        this transaction (on PostgreSQL in the same statement).

        The insert is sent now; its journal id (None for a duplicate) is read when the returned
        function is called: after a ``pipelined`` block, with what the block sent (see
        ``apply.lookup_sent``)."""
        statement = _JOURNAL_INSERT_LOCKED if lock else _JOURNAL_INSERT
        sent = statement.execute(
            conn,
            {
                "channel": event.channel.value,
                "external_id": event.external_id[:255],
                "received_at": self.clock.now(),
                "event": event.model_dump(mode="json"),
                "attempts": 0,
            },
        )

        def read() -> int | None:
            row = sent.first()
            return None if row is None else int(row[0])

        return read

    def _duplicate(self, event: InboundEvent) -> Accepted:
        with self._transaction() as conn:
            existing = _JOURNAL_ID.scalar(
                conn,
                {"channel": event.channel.value, "external_id": event.external_id[:255]},
            )
        assert existing is not None
        return Accepted(record_id=int(existing), duplicate=True)

    @contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        """A connection in a begun transaction (SQLite: ``BEGIN IMMEDIATE``); the caller
        commits, anything else is rolled back when the block ends. No ORM session: applying
        an event writes no ORM objects, and a session's bookkeeping cost ~0.1 ms per event."""
        with self._engine().connect() as conn:
            conn.begin()
            try:
                yield conn
            finally:
                if conn.in_transaction():
                    conn.rollback()
                end_transaction(conn)

    def _engine(self) -> sa.Engine:
        factory = self.factory
        if self._bound is None or self._bound[0] is not factory:
            with factory() as session:  # no BEGIN: nothing is executed
                self._bound = (factory, session.get_bind().engine)
        return self._bound[1]

    # -- step 2 -------------------------------------------------------------------------
    def process(self, record_id: int, *, wait: bool = False) -> Processed | None:
        """Apply the rules to a journalled event; None if it was already processed.

        By default an event another process is processing right now is skipped (None at
        once). ``wait=True`` waits for that process to finish instead: for a caller that reads
        the conversation right after (the phone robot answers within the call, so it must see
        the message a worker may be processing at that moment)."""
        finished = self._process(record_id, wait=wait)
        return finished.processed if finished is not None else None

    def _process(self, record_id: int, *, wait: bool = False) -> Finished | None:
        try:
            with self._transaction() as conn:
                query = _JOURNAL_ROW_WAIT if wait else _JOURNAL_ROW
                with pipelined(conn):  # PostgreSQL: BEGIN and the row in one round trip
                    sent = query.execute(conn, {"rid": record_id})
                row = sent.first()
                if row is None or row[4] is not None:
                    return None
                writes = apply.Writes()
                finished = self._apply_journalled(conn, row, writes)
                _write_and_commit(conn, writes)
                return finished
        except Exception as exc:
            log.exception("processing inbound event %s failed", record_id)
            # counted on the row: backed off, set aside as failed after the last attempt
            record_failure(self.factory, record_id, exc, self.clock.now(), self.retry_policy)
            raise

    def _apply_journalled(
        self,
        conn: sa.Connection,
        row: Sequence[Any],
        writes: apply.Writes,
        event: InboundEvent | None = None,
        found: apply.Lookup | None = None,
    ) -> Finished:
        """Apply a journal row's event (``_pending_query``: id, channel, event, received at)
        and queue the row's processed mark in ``writes`` (the caller writes and commits).
        ``event``: the row's event if the caller rebuilt it already."""
        record_id = int(row[0])
        event = event or journalled_event(row[2])
        processed = self._apply(conn, record_id, event, writes, found)
        self._mark(writes, processed)
        return Finished(processed, event, as_utc(row[3]))

    def _mark(self, writes: apply.Writes, processed: Processed) -> None:
        writes.queue(
            _MARK_PROCESSED,
            {"rid": processed.record_id, "at": self.clock.now(), "mid": processed.message_id},
        )

    def _apply(
        self,
        conn: sa.Connection,
        record_id: int,
        event: InboundEvent,
        writes: apply.Writes,
        found: apply.Lookup | None = None,
    ) -> Processed:
        """Apply the event; what nothing reads back is left queued in ``writes``. The caller
        holds the thread's lock (taken with the journal row)."""
        now = self.clock.now()
        response = self.rules  # each ``get`` checks the files: once per event
        classification = response.classify(event, self.profile)
        rules = apply.Rules(classification, response, self.moderation)
        applied = apply.apply_event(conn, event, rules, now, writes, found)
        return Processed(record_id, classification, applied.conversation_id, applied.message_id)

    def ingest(self, event: InboundEvent) -> tuple[Accepted, Processed | None]:
        """Accept, then process: one transaction (the caller acknowledges the platform after
        this returns, so the journal row and the processing commit together).

        A processing failure does not undo the acceptance: the transaction is rolled back,
        the event is then journalled on its own (``accept``) with the error recorded on its
        row, and ``process_pending`` retries it, so a caller that acknowledges the platform
        after this returns is right to do so."""
        try:
            with self._transaction() as conn:
                # PostgreSQL: the journal row (taking the thread's lock) and the lookup (run
                # after it on the server) in one round trip; for a duplicate the lookup is
                # wasted (and the ids it drew are gaps)
                with pipelined(conn):
                    journalled = self._journal_sent(conn, event, lock=True)
                    looked_up = apply.lookup_sent(conn, event)
                record_id = journalled()
                if record_id is None:
                    conn.rollback()  # before the duplicate's lookup (SQLite: the write lock)
                    return self._duplicate(event), None
                writes = apply.Writes()
                processed = self._apply(conn, record_id, event, writes, looked_up())
                self._mark(writes, processed)
                _write_and_commit(conn, writes)
                return Accepted(record_id=record_id, duplicate=False), processed
        except Exception as exc:
            log.exception(
                "processing inbound event %s/%s failed",
                event.channel.value,
                event.external_id[:255],
            )
            accepted = self.accept(event)
            if not accepted.duplicate:
                record_failure(
                    self.factory, accepted.record_id, exc, self.clock.now(), self.retry_policy
                )
            return accepted, None

    def process_pending(self, limit: int = 500, *, batch: int = BATCH) -> int:
        """Finish journalled events left unprocessed (a crash, a failure); returns how many.

        Up to ``batch`` events are processed in one transaction, then each is handed to its
        channel's ``after_processing`` hook, in journal order. A batch holds at most one
        event per thread (the second event of a thread goes to the next batch, after the
        first one's hook ran), so per thread it is still: process, hook, process, hook. If
        any event of a batch fails, the batch is rolled back and its events are processed
        one by one, each in its own transaction: the failing one is recorded on its row
        (``inbox.journal_failures``), the others are processed.

        A hook that fails is logged and does not stop the others: the event stays processed
        (the hook's work for it is lost, as when the webhook's own follow-up fails).

        Events of one thread (a dialogue, a post's comments) are processed, and their hooks
        run, in journal order, even with several processes calling this at once on
        PostgreSQL: a batch's events and hooks run under their threads' turns
        (``thread_turns``); a process that finds a turn taken leaves the thread's remaining
        events of this round to the process holding it (it has them in its own list, or the
        next round does). Only an event whose processing failed does not hold its thread up.

        Events set aside as failed or backing off after a failure are not selected
        (``inbox.journal_failures``), and failing events never starve the others: ``limit``
        counts processed events; while fewer were processed, the scan goes on past the
        batch (each event is tried at most once per call).
        """
        thread_key = InboundRecord.event["thread_key"].as_string()
        due = due_for_processing(self.clock.now())
        done = 0
        after = 0  # the scan's position: journal ids already looked at in this call
        busy: set[tuple[str, str]] = set()
        while True:
            with self.factory() as session:
                rows = [
                    (row[0], row[1], row[2])
                    for row in session.execute(
                        select(InboundRecord.id, InboundRecord.channel, thread_key)
                        .where(col(InboundRecord.processed_at).is_(None))
                        .where(*due, col(InboundRecord.id) > after)
                        .order_by(col(InboundRecord.id))
                        .limit(limit)
                    )
                ]
            if rows:
                after = rows[-1][0]
            for chunk in _batches(
                [(rid, (channel, thread or "")) for rid, channel, thread in rows], batch
            ):
                done += self._finish_batch(chunk, busy)
            if len(rows) < limit or done >= limit:
                return done

    def _finish_batch(self, chunk: list[tuple[int, tuple[str, str]]], busy: set[Thread]) -> int:
        """Process a batch (at most one event per thread) under its threads' turns, then run
        the hooks; how many events were processed here."""
        wanted = [(rid, thread) for rid, thread in chunk if thread not in busy]
        if not wanted:
            return 0
        with thread_turns(self.factory, [thread for _, thread in wanted]) as taken:
            busy.update(thread for _, thread in wanted if thread not in taken)
            ids = [rid for rid, thread in wanted if thread in taken]
            if not ids:
                return 0
            if len(ids) == 1:
                return int(self._finish(ids[0]))
            try:
                finished = self._process_batch(ids)
            except Exception:
                log.warning("a batch of %d inbound events failed: one by one", len(ids))
                return sum(self._finish(rid) for rid in ids)
            pool = self._hook_pool
            if pool is None or len(finished) < 2:
                for item in finished:
                    self._after_hook(item)
            else:  # _after_hook never raises (a failing hook is logged)
                list(pool.map(self._after_hook, finished))
            return len(finished)

    def _process_batch(self, ids: list[int]) -> list[Finished]:
        """Process these journal rows in one transaction (rows processed or locked meanwhile
        by another process are left out); raises if any of them fails."""
        with self._transaction() as conn:
            with pipelined(conn):  # PostgreSQL: BEGIN and the rows in one round trip
                sent = _batch_rows(len(ids)).execute(conn, _batch_params(conn, ids))
            rows = sent.all()
            events = [journalled_event(row[2]) for row in rows]
            writes = apply.Writes()  # one statement each for the whole batch
            finished = [
                self._apply_journalled(conn, row, writes, event, found)
                for row, event, found in zip(
                    rows, events, apply.lookup_many(conn, events), strict=True
                )
            ]
            _write_and_commit(conn, writes, batch=True)
        return finished

    def _finish(self, record_id: int) -> bool:
        """Process one pending event and run its channel's hook; whether it was processed here."""
        try:
            finished = self._process(record_id)
        except Exception:  # recorded on the row; the next run tries again
            return False
        if finished is None:  # processed meanwhile by the webhook or another process
            return False
        self._after_hook(finished)
        return True

    def _after_hook(self, finished: Finished) -> None:
        hook = self._after.get(finished.event.channel.value)
        if hook is not None:
            _run_hook(hook, finished, finished.processed.record_id)


def find_open_conversation(session: Session, channel: str, thread_key: str) -> Conversation | None:
    return session.exec(
        select(Conversation)
        .where(Conversation.channel == channel)
        .where(Conversation.thread_key == thread_key[:255])
        .where(col(Conversation.status).in_([s.value for s in OPEN_STATUSES]))
        .order_by(col(Conversation.id).desc())
    ).first()


def find_last_conversation(session: Session, channel: str, thread_key: str) -> Conversation | None:
    return session.exec(
        select(Conversation)
        .where(Conversation.channel == channel)
        .where(Conversation.thread_key == thread_key[:255])
        .order_by(col(Conversation.id).desc())
    ).first()


#: A hook (one transaction: the bot's turn) that PostgreSQL aborted as a deadlock victim is
#: run again this many times in all. The deadlock seen (the bot's turn against the SLA scan's
#: alerts) is gone since conversations are locked ``FOR NO KEY UPDATE``
#: (``workflow.lock_conversation``); this is for the ones not seen yet.
HOOK_ATTEMPTS = 3


def _is_deadlock(exc: sa.exc.OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "40P01"


def _run_hook(hook: AfterProcessing, finished: Finished, record_id: int) -> None:
    """Run an after-processing hook; a failure is logged, a deadlock retried."""
    channel = finished.event.channel.value
    for attempt in range(1, HOOK_ATTEMPTS + 1):
        try:
            hook(finished)
            return
        except sa.exc.OperationalError as exc:
            if _is_deadlock(exc) and attempt < HOOK_ATTEMPTS:
                log.warning("after processing inbound event %s: deadlock, again", record_id)
                continue
            log.exception(
                "after processing inbound event %s (%s): the hook failed", record_id, channel
            )
            return
        except Exception:
            log.exception(
                "after processing inbound event %s (%s): the hook failed", record_id, channel
            )
            return


#: First key of the two-part advisory locks ``thread_turn`` takes (a key space of its own:
#: PostgreSQL keeps one-part and two-part keys apart, so no other lock here can collide).
_TURN_LOCK_CLASS = 0x6F746B  # "otk"


@contextmanager
def thread_turns(
    factory: sessionmaker[Session], threads: Sequence[Thread]
) -> Iterator[set[Thread]]:
    """Try to take the turns of several threads at once; yields the threads taken.

    ``thread_turn`` for a batch: the advisory locks of all the threads are tried in one
    statement on one connection (not one connection per thread), held until the end of the
    block and released together. SQLite: all taken (see ``thread_turn``).
    """
    with factory() as session:
        engine = session.get_bind().engine  # no BEGIN: on SQLite it takes the write lock
    if engine.dialect.name != "postgresql":
        yield set(threads)
        return
    keys = [f"{channel}:{thread_key[:255]}" for channel, thread_key in threads]
    with engine.connect() as conn:
        got = conn.execute(
            sa.text(
                "SELECT k.i, pg_try_advisory_lock(:cls, hashtext(k.key))"
                " FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS k(key, i) ORDER BY k.i"
            ),
            {"cls": _TURN_LOCK_CLASS, "keys": keys},
        ).all()
        conn.commit()  # the locks are the session's, not the transaction's: hold no snapshot
        held = [keys[int(i) - 1] for i, taken in got if taken]
        try:
            yield {threads[int(i) - 1] for i, taken in got if taken}
        finally:
            if held:
                try:
                    conn.execute(
                        sa.text(
                            "SELECT pg_advisory_unlock(:cls, hashtext(k))"
                            " FROM unnest(CAST(:keys AS text[])) AS k"
                        ),
                        {"cls": _TURN_LOCK_CLASS, "keys": held},
                    )
                    conn.commit()
                except sa.exc.SQLAlchemyError:  # never pool a connection that may hold them
                    conn.invalidate()
                    log.warning("%d thread turns not released: connection dropped", len(held))


def _batches(rows: list[tuple[int, Thread]], size: int) -> Iterator[list[tuple[int, Thread]]]:
    """``process_pending``'s batches: the n-th event of each thread in the n-th group (so a
    batch holds at most one event per thread and a thread's events come in journal order),
    each group cut into batches of ``size`` in journal order."""
    groups: list[list[tuple[int, Thread]]] = []
    seen: dict[Thread, int] = {}
    for rid, thread in rows:
        n = seen.get(thread, 0)
        seen[thread] = n + 1
        if n == len(groups):
            groups.append([])
        groups[n].append((rid, thread))
    for group in groups:
        for start in range(0, len(group), max(1, size)):
            yield group[start : start + max(1, size)]


def _write_and_commit(conn: sa.Connection, writes: apply.Writes, *, batch: bool = False) -> None:
    """The transaction's queued writes and its commit, sent together (PostgreSQL: one round
    trip, ``prepared.committed``): one event's writes as one statement
    (``Writes.write_together``), a batch's as one statement per table and set of columns."""
    committed(conn, writes.write if batch else writes.write_together)


#: A batch's rows (``_pending_query``), by batch size: on SQLite ``IN`` one parameter per
#: id, on PostgreSQL ``= ANY`` of one array.
_BATCH_ROWS: dict[int, Prepared] = {}
_IDS = sa.bindparam("ids", type_=sa.ARRAY(sa.Integer))


def _batch_rows(size: int) -> Prepared:
    if size not in _BATCH_ROWS:
        names = [f"id{n}" for n in range(size)]

        def where(dialect: str) -> sa.ColumnElement[bool]:
            if dialect == "postgresql":
                return JOURNAL.c.id == sa.any_(_IDS)
            return JOURNAL.c.id.in_([sa.bindparam(name) for name in names])

        _BATCH_ROWS[size] = Prepared(
            lambda dialect: _pending_query(
                sa.and_(where(dialect), JOURNAL.c.processed_at.is_(None)), dialect
            )
        )
    return _BATCH_ROWS[size]


def _batch_params(conn: sa.Connection, ids: list[int]) -> dict[str, Any]:
    if conn.dialect.name == "postgresql":
        return {"ids": ids}
    return {f"id{n}": rid for n, rid in enumerate(ids)}


@contextmanager
def thread_turn(factory: sessionmaker[Session], channel: str, thread_key: str) -> Iterator[bool]:
    """Try to take a thread's turn for ``process_pending``; yields whether it was taken.

    On PostgreSQL a session-level advisory lock, held on a connection of its own from the
    event's processing to the end of its hook (the bot's answer), released at the end, or by
    the server when the process dies. SQLite: always taken (run one worker there; its
    writers are serialised anyway, but hooks of two processes could interleave).
    """
    with factory() as session:
        engine = session.get_bind().engine  # no BEGIN: on SQLite it takes the write lock
    if engine.dialect.name != "postgresql":
        yield True
        return
    params = {"cls": _TURN_LOCK_CLASS, "key": f"{channel}:{thread_key[:255]}"}
    with engine.connect() as conn:
        taken = conn.execute(
            sa.text("SELECT pg_try_advisory_lock(:cls, hashtext(:key))"), params
        ).scalar()
        conn.commit()  # the lock is the session's, not the transaction's: hold no snapshot
        try:
            yield bool(taken)
        finally:
            if taken:
                try:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:cls, hashtext(:key))"), params)
                    conn.commit()
                except sa.exc.SQLAlchemyError:  # never pool a connection that may hold it
                    conn.invalidate()
                    log.warning("thread turn %s not released: connection dropped", params["key"])
