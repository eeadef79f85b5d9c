"""Applying one journalled event to the inbox in few SQL statements (``Inbox`` step 2).

What ``Inbox._apply`` does (citizen, conversation, message, SLA clock, moderation, audit), as
SQLAlchemy Core statements built once and run on the driver's cursor (``inbox.prepared``)
within the caller's transaction: no ORM objects, so no unit-of-work flushes, no autoflush
before each lookup and no SQLModel validation of rows built from values that are already
valid (they come from a validated ``InboundEvent`` and the rules).

Statements for a message in an open dialogue of a known citizen: the author (identity
joined with citizen) and the open conversation with "has an open SLA clock" in one query,
the message, the SLA clock if none is open (none looked up for a conversation opened here),
the conversation's update, the audit rows. The writes nothing reads back are queued
(``Writes``) and run at the end: per event as one statement on PostgreSQL
(``Writes.write_together``), or one statement each for a whole ``process_pending`` batch.
Callers take the thread's lock with the journal row, and add the processed mark.

On PostgreSQL the lookup also draws the id of the event's message, so it is queued with the
other writes instead of inserted at once; a first contact's citizen and identity are one
statement. A message in an open dialogue is then two round trips after ``BEGIN`` is sent with
the first (``Inbox.ingest``: the journal row and the lookup; the writes with the commit), a
first contact four (+ citizen and identity, + the conversation: ``tests/test_round_trips.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.events import InboundEvent
from inbox.models import (
    OPEN_STATUSES,
    AuditEvent,
    AuthorKind,
    Citizen,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    ModerationDecision,
    SlaClock,
    SlaClockStatus,
)
from inbox.prepared import Prepared, execute_together
from inbox.sla import satisfy_values
from rules.engine import Classification, ResponseRules
from rules.moderation import Moderation

CONVERSATION: sa.Table = Conversation.__table__  # type: ignore[attr-defined]
MESSAGE: sa.Table = Message.__table__  # type: ignore[attr-defined]
SLA_CLOCK: sa.Table = SlaClock.__table__  # type: ignore[attr-defined]
AUDIT: sa.Table = AuditEvent.__table__  # type: ignore[attr-defined]
IDENTITY: sa.Table = Identity.__table__  # type: ignore[attr-defined]
CITIZEN: sa.Table = Citizen.__table__  # type: ignore[attr-defined]
MODERATION: sa.Table = ModerationDecision.__table__  # type: ignore[attr-defined]

# Constant status lists rendered into the SQL text: as bound lists, SQLAlchemy would expand
# ("post-compile") them at every execution, ~0.1 ms per lookup in the profile.
_OPEN: list[sa.ColumnElement[Any]] = [sa.literal_column(f"'{s.value}'") for s in OPEN_STATUSES]
_OPEN_CLOCK: list[sa.ColumnElement[Any]] = [
    sa.literal_column(f"'{s.value}'") for s in (SlaClockStatus.running, SlaClockStatus.breached)
]


@dataclass
class Thread:
    """The columns of a conversation that applying an event reads or changes."""

    id: int
    status: str
    version: int
    reply_target: dict[str, Any]
    first_response_at: datetime | None
    #: Whether an SLA clock is open (running or breached) on it.
    clock_open: bool
    new: bool = False
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Applied:
    conversation_id: int | None
    message_id: int | None


class Writes:
    """Writes of one transaction that nothing later in it reads back, run together at the
    end: the audit rows, new SLA clocks, the conversations' updates, moderation decisions,
    on PostgreSQL the event's message (its id drawn by the lookup), and whatever the caller
    queues (the journal's processed marks).

    Per event in ``Inbox.ingest`` and ``Inbox.process`` (``write_together``: one statement on
    PostgreSQL); per batch in ``process_pending`` (``write``), where each statement then runs
    once for the whole batch (the driver's ``executemany``: pipelined on psycopg, so one
    round trip instead of one per event). That is safe because a batch holds at most one
    event per thread: no event of it reads a row another one's queued writes change (a
    conversation, its clock), and every row they refer to is inserted before them (a
    conversation right away, a message in the first stage).
    """

    #: The stages a row is queued in, written in this order: the rows others refer to come
    #: first (messages, inserted with ids drawn beforehand), the rest after.
    MESSAGES, LATER = 0, 1

    def __init__(self) -> None:
        #: Per stage: (statement, its parameters' names) -> rows, in the order first queued.
        self._stages: tuple[dict[tuple[Prepared, frozenset[str]], list[dict[str, Any]]], ...] = (
            {},
            {},
        )

    def queue(self, statement: Prepared, row: dict[str, Any], *, stage: int = LATER) -> None:
        self._stages[stage].setdefault((statement, frozenset(row)), []).append(row)

    def add(
        self, kind: str, at: datetime, /, *, conversation_id: int | None = None, **data: Any
    ) -> None:
        """An audit row (the signature of ``inbox.audit.record``'s values)."""
        self.queue(
            _NEW_AUDIT,
            {
                "at": at,
                "kind": kind,
                "conversation_id": conversation_id,
                "operator_id": None,
                "actor": "system",
                "data": data,
            },
        )

    def write(self, conn: sa.Connection) -> None:
        """Run what was queued: one statement (``executemany``) per statement and set of
        columns (a batch's writes)."""
        stages, self._stages = self._stages, ({}, {})
        for queued in stages:
            for (statement, _), rows in queued.items():
                statement.execute_many(conn, rows)

    def write_together(self, conn: sa.Connection) -> None:
        """Run what was queued for one event: its single rows as one statement
        (``prepared.execute_together``: one event's rows are all different rows, each written
        once, as that requires); a statement queued with several rows (a first contact's two
        audit rows) on its own, with ``executemany``, so that their ids keep the order they
        were queued in (the parts of one statement run in no set order). Several rows of the
        first stage go before the single rows, of the later stage after them, so a row is
        written after the rows it refers to."""
        stages, self._stages = self._stages, ({}, {})
        single = [
            (statement, rows[0])
            for queued in stages
            for (statement, _), rows in queued.items()
            if len(rows) == 1
        ]
        for stage, queued in enumerate(stages):
            if stage == self.LATER:
                execute_together(conn, single)
            for (statement, _), rows in queued.items():
                if len(rows) > 1:
                    statement.execute_many(conn, rows)


def _thread_query(*, open_only: bool) -> sa.Select[Any]:
    c = CONVERSATION.c
    clock_open = (
        sa.select(SLA_CLOCK.c.id)
        .where(SLA_CLOCK.c.conversation_id == c.id, SLA_CLOCK.c.status.in_(_OPEN_CLOCK))
        .exists()
    )
    query = sa.select(
        c.id,
        c.status,
        c.version,
        c.reply_target,
        c.first_response_at,
        clock_open.label("clock_open"),
    ).where(c.channel == sa.bindparam("channel"), c.thread_key == sa.bindparam("thread_key"))
    if open_only:
        query = query.where(c.status.in_(_OPEN))
    return query.order_by(c.id.desc()).limit(1)


# The statements, built once and run on the driver's cursor (``inbox.prepared``): building one
# per event (and its cache key from the literal values) cost more than running it, and
# ``Connection.execute`` of a prebuilt one still ~20-40 µs. Values go as parameters.
_IDENTIFY_QUERY = (
    sa.select(CITIZEN.c.id, CITIZEN.c.merged_into_id)
    .select_from(IDENTITY.join(CITIZEN, CITIZEN.c.id == IDENTITY.c.citizen_id))
    .where(
        IDENTITY.c.channel == sa.bindparam("channel"),
        IDENTITY.c.external_id == sa.bindparam("author_id"),
    )
)


#: A new message id from its table's sequence (PostgreSQL; see ``Lookup.message_id``).
_NEXT_MESSAGE_ID = sa.func.nextval(sa.func.pg_get_serial_sequence("message", "id"))


def _lookup_query(dialect: str) -> sa.Select[Any]:
    """The event's author (citizen id, merged into) and its thread's open conversation in
    one query: each side is an indexed lookup of at most one row, joined onto a one-row
    table so that either may be missing. On PostgreSQL also an id for the event's message
    (``Lookup.message_id``)."""
    author = _IDENTIFY_QUERY.subquery("author")
    thread = _thread_query(open_only=True).subquery("thread")
    one = sa.select(sa.literal_column("1").label("one")).subquery("one")
    drawn = [_NEXT_MESSAGE_ID.label("message_id")] if dialect == "postgresql" else []
    return sa.select(author.c.id, author.c.merged_into_id, *thread.c, *drawn).select_from(
        one.outerjoin(author, sa.true()).outerjoin(thread, sa.true())
    )


_LOOKUP = Prepared(_lookup_query)
_OPEN_THREAD = Prepared(_thread_query(open_only=True))
_LAST_THREAD = Prepared(_thread_query(open_only=False))
_IDENTIFY = Prepared(_IDENTIFY_QUERY)
_MERGED_INTO = Prepared(
    sa.select(CITIZEN.c.merged_into_id).where(CITIZEN.c.id == sa.bindparam("cid"))
)
_NEW_CITIZEN = Prepared(CITIZEN.insert().returning(CITIZEN.c.id))
_NEW_CONVERSATION = Prepared(CONVERSATION.insert().returning(CONVERSATION.c.id))
#: A first contact's citizen and identity in one statement (PostgreSQL): the citizen's id,
#: and the identity's citizen id, NULL if a concurrent first contact created the identity.
_NEW_CITIZEN_AND_IDENTITY = Prepared(
    sa.text(
        "WITH new_citizen AS (INSERT INTO citizen (display_name, created_at)"
        " VALUES (:display_name, :created_at) RETURNING id),"
        " won AS (INSERT INTO identity (citizen_id, channel, external_id, username, display_name)"
        " SELECT id, :channel, :external_id, :username, :display_name FROM new_citizen"
        " ON CONFLICT DO NOTHING RETURNING citizen_id)"
        " SELECT new_citizen.id, won.citizen_id FROM new_citizen LEFT JOIN won ON true"
    ).bindparams(sa.bindparam("created_at", type_=sa.DateTime(timezone=True)))
)
_NEW_MESSAGE = Prepared(MESSAGE.insert().returning(MESSAGE.c.id))
#: A message whose id was drawn from its sequence beforehand (``lookup_many``).
_NEW_MESSAGE_WITH_ID = Prepared(MESSAGE.insert())
_NEW_CLOCK = Prepared(SLA_CLOCK.insert())
_NEW_AUDIT = Prepared(AUDIT.insert())
_NEW_MODERATION = Prepared(MODERATION.insert())
_UPDATE_CONVERSATION = Prepared(
    CONVERSATION.update().where(CONVERSATION.c.id == sa.bindparam("cid"))
)
_IGNORING: dict[str, Prepared] = {}


def insert_ignoring_conflict(table: sa.Table) -> Prepared:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` on either backend (built once)."""
    if table.name not in _IGNORING:

        def build(dialect: str) -> sa.Executable:
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            return insert(table).on_conflict_do_nothing().returning(table.c.id)

        _IGNORING[table.name] = Prepared(build)
    return _IGNORING[table.name]


def find_thread(
    conn: sa.Connection, channel: str, thread_key: str, *, open_only: bool = True
) -> Thread | None:
    """The thread's open (or, ``open_only=False``, latest) conversation: one indexed query
    (``ix_conversation_thread``) that also says whether an SLA clock is open on it."""
    query = _OPEN_THREAD if open_only else _LAST_THREAD
    return _thread(query.first(conn, {"channel": channel, "thread_key": thread_key[:255]}))


def _thread(row: Sequence[Any] | None) -> Thread | None:
    if row is None or row[0] is None:
        return None
    return Thread(row[0], row[1], row[2], row[3] or {}, row[4], bool(row[5]))


class Unset:
    """``identify``'s "not looked up yet"."""

    __slots__ = ()


UNSET = Unset()


@dataclass(frozen=True)
class Lookup:
    """What ``lookup`` found: the author's citizen row (id, merged into) and the open
    conversation, each None if there is none (the author ``UNSET``: not looked up)."""

    author: tuple[int, int | None] | Unset | None
    thread: Thread | None
    #: An id drawn from the message table's sequence for the event's message (PostgreSQL,
    #: with the lookup): the message is then queued with the other writes (sent together
    #: with them and the commit, ``inbox.prepared.pipelined``), not inserted at once with
    #: ``RETURNING``: one round trip less per event. Unused (a gap, as a rollback leaves) if
    #: the event has no message.
    message_id: int | None = None


def lookup(conn: sa.Connection, event: InboundEvent) -> Lookup:
    """The event's author and its thread's open conversation, in one query (on PostgreSQL
    with ids drawn for its message and, where the thread has none open, its conversation)."""
    return lookup_sent(conn, event)()


def lookup_sent(conn: sa.Connection, event: InboundEvent) -> Callable[[], Lookup]:
    """``lookup``'s query sent now, its result read when the returned function is called: in
    a ``pipelined`` block (PostgreSQL) it goes in one round trip with the statements before
    it, and is read after the block."""
    sent = _LOOKUP.execute(
        conn,
        {
            "channel": event.channel.value,
            "author_id": event.author.external_id[:255],
            "thread_key": event.thread_key[:255],
        },
    )

    def read() -> Lookup:
        row = sent.first()
        assert row is not None  # the one-row table
        return _found(row)

    return read


def _found(row: Sequence[Any]) -> Lookup:
    """A ``Lookup`` from a row of ``_LOOKUP`` or ``_LOOKUP_MANY``."""
    author = (int(row[0]), row[1]) if row[0] is not None else None
    return Lookup(author, _thread(row[2:8]), int(row[8]) if len(row) > 8 else None)


_OPEN_SQL = ", ".join(f"'{s.value}'" for s in OPEN_STATUSES)
_OPEN_CLOCK_SQL = ", ".join(
    f"'{s.value}'" for s in (SlaClockStatus.running, SlaClockStatus.breached)
)
#: ``lookup`` for a batch of events (PostgreSQL): the same two indexed lookups per event,
#: laterally joined onto the events' (channel, author, thread) arrays, in their order.
_LOOKUP_MANY = Prepared(
    sa.text(
        "SELECT a.id, a.merged_into_id, t.id, t.status, t.version, t.reply_target,"
        " t.first_response_at, t.clock_open, nextval(pg_get_serial_sequence('message', 'id'))"
        " FROM unnest(CAST(:channels AS varchar[]), CAST(:authors AS varchar[]),"
        " CAST(:threads AS varchar[])) WITH ORDINALITY AS k(channel, author_id, thread_key, i)"
        " LEFT JOIN LATERAL (SELECT citizen.id, citizen.merged_into_id FROM identity"
        " JOIN citizen ON citizen.id = identity.citizen_id"
        " WHERE identity.channel = k.channel AND identity.external_id = k.author_id) AS a"
        " ON true"
        " LEFT JOIN LATERAL (SELECT c.id, c.status, c.version, c.reply_target,"
        " c.first_response_at, EXISTS (SELECT 1 FROM sla_clock"
        " WHERE sla_clock.conversation_id = c.id"
        f" AND sla_clock.status IN ({_OPEN_CLOCK_SQL})) AS clock_open"
        " FROM conversation AS c WHERE c.channel = k.channel AND c.thread_key = k.thread_key"
        f" AND c.status IN ({_OPEN_SQL}) ORDER BY c.id DESC LIMIT 1) AS t ON true"
        " ORDER BY k.i"
    )
)


def lookup_many(conn: sa.Connection, events: Sequence[InboundEvent]) -> list[Lookup]:
    """``lookup`` for each of a batch's events, before any of them is applied: in one query
    on PostgreSQL (one round trip instead of one per event, and a message id drawn for each,
    ``Lookup.message_id``); on SQLite (no round trips, no arrays) one query per event.

    A batch holds at most one event per thread, so each open conversation found stays valid
    while the batch is applied. An author met earlier in the batch is left ``UNSET`` (looked
    up again when its event is applied): that earlier event may create it.
    """
    if conn.dialect.name == "postgresql":
        rows = _LOOKUP_MANY.execute(
            conn,
            {
                "channels": [e.channel.value for e in events],
                "authors": [e.author.external_id[:255] for e in events],
                "threads": [e.thread_key[:255] for e in events],
            },
        ).all()
        found = [_found(row) for row in rows]
    else:
        found = [lookup(conn, event) for event in events]
    seen: set[tuple[str, str]] = set()
    for n, event in enumerate(events):
        author = (event.channel.value, event.author.external_id[:255])
        if author in seen:
            found[n] = replace(found[n], author=UNSET)
        seen.add(author)
    return found


def identify(
    conn: sa.Connection,
    event: InboundEvent,
    now: datetime,
    found: tuple[int, int | None] | Unset | None = UNSET,
) -> int:
    """The citizen id behind the event's author on this channel; created on first contact.

    One indexed query (``uq_identity_channel_ext``) joined with the citizen, unless the
    caller already made it (``found``: ``lookup``'s author); records merged into another
    one are followed (rare: one more query per merge)."""
    channel, external_id = event.channel.value, event.author.external_id[:255]
    if isinstance(found, Unset):
        row = _IDENTIFY.first(conn, {"channel": channel, "author_id": external_id})
        found = (int(row[0]), row[1]) if row is not None else None
    if found is not None:
        citizen_id, merged_into = found
        while merged_into is not None:
            citizen_id = merged_into
            merged_into = _MERGED_INTO.scalar(conn, {"cid": citizen_id})
        return int(citizen_id)
    name = event.author.display_name
    # A concurrent first contact may create the same identity: the unique index decides.
    identity = {
        "channel": channel,
        "external_id": external_id,
        "username": event.author.username,
        "display_name": name,
    }
    if conn.dialect.name == "postgresql":  # one round trip for both rows
        row = _NEW_CITIZEN_AND_IDENTITY.first(conn, {**identity, "created_at": now})
        assert row is not None
        citizen_id, won = row[0], row[1]
    else:
        citizen_id = _NEW_CITIZEN.scalar(conn, {"display_name": name, "created_at": now})
        won = insert_ignoring_conflict(IDENTITY).first(conn, {"citizen_id": citizen_id, **identity})
    if won is None:  # the other transaction won: use its citizen
        conn.execute(CITIZEN.delete().where(CITIZEN.c.id == citizen_id))
        return identify(conn, event, now)
    return int(citizen_id)


def appeal_number(opened_at: datetime, conversation_id: int) -> str:
    return f"{opened_at.year}-{conversation_id:06d}"


@dataclass(frozen=True)
class Rules:
    """What applying needs from the rules, resolved once per event."""

    classification: Classification
    response: ResponseRules
    moderation: Moderation


def apply_event(
    conn: sa.Connection,
    event: InboundEvent,
    rules: Rules,
    now: datetime,
    audit: Writes,
    found: Lookup | None = None,
) -> Applied:
    """Apply the event (``Inbox._apply``'s rules); the writes nothing reads back (audit rows,
    the clock, the conversation's update, moderation) are left queued in ``audit``.

    The caller holds the thread's lock (the ingest paths take it with the journal row,
    ``journal_thread_lock``) and may give the author and open conversation it
    looked up for a whole batch (``found``, see ``lookup_many``)."""
    result = rules.classification
    channel = event.channel.value
    if found is None:
        found = lookup(conn, event)
    thread = found.thread
    if event.facts.is_own:
        message_id = _record_own(conn, found, event, audit)
        return Applied(thread.id if thread else None, message_id)
    if not result.requires_response:
        if not event.text and not event.attachments:
            # a service event (call ended, member joined): the journal is record enough
            return Applied(thread.id if thread else None, None)
        if thread is None and event.attachments:
            # a late attachment (a call's recording) joins its thread even when closed
            thread = find_thread(conn, channel, event.thread_key, open_only=False)
        if thread is None:
            return Applied(None, None)
    citizen_id = identify(conn, event, now, found.author)
    if thread is None:
        thread = _open(conn, event, result, citizen_id, now, audit)
    message_id = _new_message(
        conn,
        found,
        audit,
        dict(
            conversation_id=thread.id,
            direction=Direction.inbound.value,
            author_kind=AuthorKind.citizen.value,
            channel=channel,
            external_id=event.external_id[:255],
            text=event.text,
            attachments=[a.model_dump(mode="json") for a in event.attachments],
            is_public=event.facts.is_public,
            published_at=event.published_at,
            attempts=0,
            meta={},
            reply_target=event.reply_target,
        ),
    )
    changes = thread.changes
    changes["last_message_at"] = event.published_at
    if result.requires_response:
        # an auto-reply in the thread must not redirect our replies to its sender
        changes["reply_target"] = event.reply_target or thread.reply_target
        _start_clock(thread, event.published_at, rules, audit)
        if thread.status == ConversationStatus.answered.value:
            changes["status"] = ConversationStatus.waiting_operator.value
            changes["version"] = thread.version + 1
    audit.queue(_UPDATE_CONVERSATION, {"cid": thread.id, **changes})
    if event.facts.is_public:
        _moderate(rules.moderation, message_id, thread.id, event.text, now, audit)
    audit.add(
        "ingested", now, conversation_id=thread.id, message_id=message_id,
        rule=result.rule_id, kind=result.kind.value,
    )  # fmt: skip
    return Applied(thread.id, message_id)


def _open(
    conn: sa.Connection,
    event: InboundEvent,
    result: Classification,
    citizen_id: int,
    now: datetime,
    audit: Writes,
) -> Thread:
    """Open a conversation for the event's thread, inserted at once (its id, from
    ``RETURNING``, is its appeal number: not drawn beforehand like a message's, since a
    rollback after drawing would leave a gap in the numbers citizens see)."""
    values = dict(
        channel=event.channel.value,
        thread_key=event.thread_key[:255],
        citizen_id=citizen_id,
        kind=result.kind.value,
        rule_id=result.rule_id,
        status=ConversationStatus.new.value,
        is_public=event.facts.is_public,
        source_url=event.source_url,
        reply_target=event.reply_target,
        opened_at=event.published_at,
        version=1,
    )
    conversation_id = int(_NEW_CONVERSATION.scalar(conn, values))
    number = appeal_number(event.published_at, conversation_id)
    audit.add(
        "opened", now, conversation_id=conversation_id, number=number,
        rule=result.rule_id, reason=result.reason,
    )  # fmt: skip
    thread = Thread(conversation_id, ConversationStatus.new.value, 1, event.reply_target, None,
                    clock_open=False, new=True)  # fmt: skip
    thread.changes["number"] = number  # written with the conversation's update
    return thread


def _start_clock(thread: Thread, started_at: datetime, rules: Rules, writes: Writes) -> None:
    """``sla.start_clock`` without its lookup: ``thread.clock_open`` came with the thread (a
    conversation opened here has none)."""
    if thread.clock_open:
        return
    due = rules.response.due_at(started_at, rules.classification)
    if due is None:
        return
    writes.queue(
        _NEW_CLOCK,
        dict(
            conversation_id=thread.id,
            rule_id=rules.classification.rule_id,
            kind=rules.classification.kind.value,
            started_at=started_at,
            due_at=due,
            warn_at=max(started_at, due - rules.response.warn_before),
            status=SlaClockStatus.running.value,
        ),
    )
    thread.clock_open = True
    thread.changes["due_at"] = due


def _new_message(conn: sa.Connection, found: Lookup, writes: Writes, values: dict[str, Any]) -> int:
    """Insert a message: queued with its id drawn beforehand if the lookup drew one (rows
    that refer to it are written after it), else at once, its id from ``RETURNING``."""
    if found.message_id is None:
        return int(_NEW_MESSAGE.scalar(conn, values))
    writes.queue(_NEW_MESSAGE_WITH_ID, {"id": found.message_id, **values}, stage=Writes.MESSAGES)
    return found.message_id


def _record_own(
    conn: sa.Connection, found: Lookup, event: InboundEvent, audit: Writes
) -> int | None:
    """The agency answered on the platform itself: keep it in the thread, stop the clock."""
    thread = found.thread
    if thread is None:
        return None
    message_id = _new_message(
        conn,
        found,
        audit,
        dict(
            conversation_id=thread.id,
            direction=Direction.outbound.value,
            author_kind=AuthorKind.agency.value,
            channel=event.channel.value,
            external_id=event.external_id[:255],
            text=event.text,
            attachments=[],
            is_public=event.facts.is_public,
            published_at=event.published_at,
            delivery_status=DeliveryStatus.sent.value,
            delivered_at=event.published_at,
            attempts=0,
            meta={},
            reply_target={},
        ),
    )
    changes: dict[str, Any] = {
        "first_response_at": thread.first_response_at or event.published_at,
        "status": ConversationStatus.answered.value,
        "version": thread.version + 1,
    }
    if thread.clock_open:
        changes.update(satisfy_values(conn, thread.id, event.published_at, audit.add))
    audit.queue(_UPDATE_CONVERSATION, {"cid": thread.id, **changes})
    return int(message_id)


def _moderate(
    moderation: Moderation,
    message_id: int,
    conversation_id: int,
    text: str,
    now: datetime,
    audit: Writes,
) -> None:
    for verdict in moderation.check(text):
        audit.queue(
            _NEW_MODERATION,
            {
                "message_id": message_id,
                "rule_id": verdict.rule_id,
                "action": verdict.action,
                "reason": verdict.reason,
                "decided_at": now,
                "decided_by": "auto",
            },
        )
        audit.add(
            "moderation", now, conversation_id=conversation_id, message_id=message_id,
            rule=verdict.rule_id, action=verdict.action, reason=verdict.reason,
            evidence=verdict.evidence,
        )  # fmt: skip


def journal_thread_lock(journal: sa.Table | sa.Subquery | sa.CTE) -> sa.ColumnElement[Any]:
    """The lock that serialises processing per thread on PostgreSQL, so one thread never
    opens two conversations (SQLite serialises writers itself: BEGIN IMMEDIATE, see
    inbox.db). A transaction-level advisory lock on ``channel:thread_key``, as an expression
    on a journal row, for the statements that take it with the row (the journal insert's
    ``RETURNING``, the read of pending rows): no round trip of its own."""
    key = journal.c.channel.concat(":").concat(journal.c.event["thread_key"].as_string())
    return sa.func.pg_advisory_xact_lock(sa.func.hashtext(key)).label("thread_lock")
