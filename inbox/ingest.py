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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, select

from core.clock import Clock, SystemClock, as_utc
from core.events import InboundEvent
from inbox import audit, sla
from inbox.journal_failures import RetryPolicy, due_for_processing, record_failure
from inbox.models import (
    OPEN_STATUSES,
    AuthorKind,
    Citizen,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Identity,
    InboundRecord,
    Message,
    ModerationDecision,
)
from rules.engine import Classification, ResponseRules
from rules.moderation import Moderation
from rules.profile import AgencyProfile
from rules.reloadable import Reloadable, as_reloadable

log = logging.getLogger(__name__)


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

    # -- step 1 -------------------------------------------------------------------------
    def accept(self, event: InboundEvent) -> Accepted:
        """Store the event durably; safe to acknowledge the platform once this returns."""
        record = InboundRecord(
            channel=event.channel.value,
            external_id=event.external_id[:255],
            received_at=self.clock.now(),
            event=event.model_dump(mode="json"),
        )
        with self.factory() as session:
            session.add(record)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                existing = session.exec(
                    select(InboundRecord.id)
                    .where(InboundRecord.channel == event.channel.value)
                    .where(InboundRecord.external_id == event.external_id[:255])
                ).one()
                assert existing is not None
                return Accepted(record_id=existing, duplicate=True)
            assert record.id is not None
            return Accepted(record_id=record.id, duplicate=False)

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
            with self.factory() as session:
                record = session.exec(
                    select(InboundRecord)
                    .where(InboundRecord.id == record_id)
                    .with_for_update(skip_locked=not wait)
                ).first()
                if record is None or record.processed_at is not None:
                    return None
                event = InboundEvent.model_validate(record.event)
                result = self._apply(session, record, event)
                received_at = as_utc(record.received_at)
                record.processed_at = self.clock.now()
                record.error = None
                record.message_id = result.message_id
                session.commit()
                return Finished(result, event, received_at)
        except Exception as exc:
            log.exception("processing inbound event %s failed", record_id)
            # counted on the row: backed off, set aside as failed after the last attempt
            record_failure(self.factory, record_id, exc, self.clock.now(), self.retry_policy)
            raise

    def ingest(self, event: InboundEvent) -> tuple[Accepted, Processed | None]:
        """Accept, then process. A processing failure does not undo the acceptance: the error
        is recorded on the journal row and ``process_pending`` retries it, so a caller that
        acknowledges the platform after this returns is right to do so."""
        accepted = self.accept(event)
        if accepted.duplicate:
            return accepted, None
        try:
            return accepted, self.process(accepted.record_id)
        except Exception:
            return accepted, None

    def process_pending(self, limit: int = 500) -> int:
        """Finish journalled events left unprocessed (a crash, a failure); returns how many.

        Each event processed here is then handed to its channel's ``after_processing`` hook.
        A hook that fails is logged and does not stop the others: the event stays processed
        (the hook's work for it is lost, as when the webhook's own follow-up fails).

        Events of one thread (a dialogue, a post's comments) are processed, and their hooks
        run, in journal order, even with several processes calling this at once on
        PostgreSQL: the event and its hook run under the thread's turn
        (``thread_turn``); a process that finds the turn taken leaves the thread's remaining
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
            for record_id, channel, thread in rows:
                assert record_id is not None
                after = record_id
                thread_id = (channel, thread or "")
                if thread_id in busy:
                    continue
                with thread_turn(self.factory, *thread_id) as mine:
                    if not mine:  # another process is at this thread: the rest is its work
                        busy.add(thread_id)
                        continue
                    if self._finish(record_id):
                        done += 1
            if len(rows) < limit or done >= limit:
                return done

    def _finish(self, record_id: int) -> bool:
        """Process one pending event and run its channel's hook; whether it was processed here."""
        try:
            finished = self._process(record_id)
        except Exception:  # recorded on the row; the next run tries again
            return False
        if finished is None:  # processed meanwhile by the webhook or another process
            return False
        hook = self._after.get(finished.event.channel.value)
        if hook is not None:
            _run_hook(hook, finished, record_id)
        return True

    # -- the rules ----------------------------------------------------------------------
    def _apply(self, session: Session, record: InboundRecord, event: InboundEvent) -> Processed:
        assert record.id is not None
        result = self.rules.classify(event, self.profile)
        _lock_thread(session, event.channel.value, event.thread_key)
        conversation = find_open_conversation(session, event.channel.value, event.thread_key)
        if event.facts.is_own:
            message_id = self._record_own(session, conversation, event)
            conversation_id = conversation.id if conversation else None
            return Processed(record.id, result, conversation_id, message_id)
        if not result.requires_response:
            if not event.text and not event.attachments:
                # a service event (call ended, member joined): the journal is record enough
                conversation_id = conversation.id if conversation else None
                return Processed(record.id, result, conversation_id, None)
            if conversation is None and event.attachments:
                # a late attachment (a call's recording) joins its thread even when closed
                conversation = find_last_conversation(
                    session, event.channel.value, event.thread_key
                )
            if conversation is None:
                return Processed(record.id, result, None, None)
        citizen = identify(session, event, self.clock.now())
        if conversation is None:
            conversation = self._open(session, event, result, citizen)
        message = Message(
            conversation_id=conversation.id,  # type: ignore[arg-type]
            direction=Direction.inbound.value,
            author_kind=AuthorKind.citizen.value,
            channel=event.channel.value,
            external_id=event.external_id[:255],
            text=event.text,
            attachments=[a.model_dump(mode="json") for a in event.attachments],
            is_public=event.facts.is_public,
            published_at=event.published_at,
            reply_target=event.reply_target,
        )
        session.add(message)
        conversation.last_message_at = event.published_at
        if result.requires_response:
            # an auto-reply in the thread must not redirect our replies to its sender
            conversation.reply_target = event.reply_target or conversation.reply_target
            self._start_clock(session, conversation, event.published_at, result)
            if conversation.status == ConversationStatus.answered.value:
                conversation.status = ConversationStatus.waiting_operator.value
                conversation.version += 1
        session.flush()
        assert message.id is not None
        if event.facts.is_public:
            self._moderate(session, message)
        audit.record(
            session,
            "ingested",
            self.clock.now(),
            conversation_id=conversation.id,
            message_id=message.id,
            rule=result.rule_id,
            kind=result.kind.value,
        )
        return Processed(record.id, result, conversation.id, message.id)

    def _open(
        self, session: Session, event: InboundEvent, result: Classification, citizen: Citizen
    ) -> Conversation:
        conversation = Conversation(
            channel=event.channel.value,
            thread_key=event.thread_key[:255],
            citizen_id=citizen.id,  # type: ignore[arg-type]
            kind=result.kind.value,
            rule_id=result.rule_id,
            is_public=event.facts.is_public,
            source_url=event.source_url,
            reply_target=event.reply_target,
            opened_at=event.published_at,
        )
        session.add(conversation)
        session.flush()
        assert conversation.id is not None
        conversation.number = appeal_number(event.published_at, conversation.id)
        audit.record(
            session,
            "opened",
            self.clock.now(),
            conversation_id=conversation.id,
            number=conversation.number,
            rule=result.rule_id,
            reason=result.reason,
        )
        return conversation

    def _start_clock(
        self,
        session: Session,
        conversation: Conversation,
        started_at: datetime,
        result: Classification,
    ) -> None:
        due = self.rules.due_at(started_at, result)
        if due is None:
            return
        sla.start_clock(
            session,
            conversation,
            rule_id=result.rule_id,
            kind=result.kind.value,
            started_at=started_at,
            due_at=due,
            warn_before=self.rules.warn_before,
        )

    def _record_own(
        self, session: Session, conversation: Conversation | None, event: InboundEvent
    ) -> int | None:
        """The agency answered on the platform itself: keep it in the thread, stop the clock."""
        if conversation is None:
            return None
        message = Message(
            conversation_id=conversation.id,  # type: ignore[arg-type]
            direction=Direction.outbound.value,
            author_kind=AuthorKind.agency.value,
            channel=event.channel.value,
            external_id=event.external_id[:255],
            text=event.text,
            is_public=event.facts.is_public,
            published_at=event.published_at,
            delivery_status=DeliveryStatus.sent.value,
            delivered_at=event.published_at,
        )
        session.add(message)
        conversation.first_response_at = conversation.first_response_at or event.published_at
        sla.satisfy(session, conversation, event.published_at)
        conversation.status = ConversationStatus.answered.value
        conversation.version += 1
        session.flush()
        return message.id

    def _moderate(self, session: Session, message: Message) -> None:
        assert message.id is not None
        for verdict in self.moderation.check(message.text):
            session.add(
                ModerationDecision(
                    message_id=message.id,
                    rule_id=verdict.rule_id,
                    action=verdict.action,
                    reason=verdict.reason,
                    decided_at=self.clock.now(),
                )
            )
            audit.record(
                session,
                "moderation",
                self.clock.now(),
                conversation_id=message.conversation_id,
                message_id=message.id,
                rule=verdict.rule_id,
                action=verdict.action,
                reason=verdict.reason,
                evidence=verdict.evidence,
            )


def appeal_number(opened_at: datetime, conversation_id: int) -> str:
    return f"{opened_at.year}-{conversation_id:06d}"


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


def identify(session: Session, event: InboundEvent, now: datetime) -> Citizen:
    """The citizen behind the event's author on this channel; created on first contact."""
    identity = session.exec(
        select(Identity)
        .where(Identity.channel == event.channel.value)
        .where(Identity.external_id == event.author.external_id[:255])
    ).first()
    if identity is not None:
        citizen = session.get(Citizen, identity.citizen_id)
        assert citizen is not None
        while citizen.merged_into_id is not None:
            merged = session.get(Citizen, citizen.merged_into_id)
            assert merged is not None
            citizen = merged
        return citizen
    try:
        with session.begin_nested():  # a concurrent first contact may create the same identity
            citizen = Citizen(display_name=event.author.display_name, created_at=now)
            session.add(citizen)
            session.flush()
            session.add(
                Identity(
                    citizen_id=citizen.id,  # type: ignore[arg-type]
                    channel=event.channel.value,
                    external_id=event.author.external_id[:255],
                    username=event.author.username,
                    display_name=event.author.display_name,
                )
            )
            session.flush()
    except IntegrityError:
        return identify(session, event, now)  # the other transaction won: use its citizen
    return citizen


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


def _lock_thread(session: Session, channel: str, thread_key: str) -> None:
    """Serialise processing per thread on PostgreSQL, so one thread never opens two conversations.

    SQLite serialises writers itself (BEGIN IMMEDIATE, see inbox.db).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"{channel}:{thread_key}"},
        )
