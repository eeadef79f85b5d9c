"""The inbox's tables. Channel-agnostic: a platform is only a ``channel`` string here.

Modelled on Chatwoot's split: citizens with per-channel identities (contact inboxes),
conversations with messages, and the SLA as its own record attached to a conversation.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=sa.DateTime(timezone=True), nullable=nullable, index=index)


def _json() -> Any:
    return Field(default_factory=dict, sa_type=sa.JSON, nullable=False)


class ConversationStatus(StrEnum):
    new = "new"
    bot = "bot"
    waiting_operator = "waiting_operator"
    answered = "answered"
    closed = "closed"


OPEN_STATUSES = (
    ConversationStatus.new,
    ConversationStatus.bot,
    ConversationStatus.waiting_operator,
    ConversationStatus.answered,
)
#: Partial-index conditions (perf_0002); keep in step with OPEN_STATUSES / SlaClockStatus.
_OPEN_SQL = "status IN ('new', 'bot', 'waiting_operator', 'answered')"
_WARN_SQL = "status = 'running' AND warned_at IS NULL"
#: Partial-index condition of failed journal rows still listed (journal_0005).
_FAILED_SQL = "failed_at IS NOT NULL AND processed_at IS NULL AND dismissed_at IS NULL"
#: Partial unique indexes of live consents and subscriptions (consent_mailings).
_CONSENT_LIVE_SQL = "withdrawn_at IS NULL"
_SUBSCRIPTION_LIVE_SQL = "cancelled_at IS NULL"


class Direction(StrEnum):
    inbound = "in"
    outbound = "out"
    note = "note"  # internal operator note, never sent


class AuthorKind(StrEnum):
    citizen = "citizen"
    bot = "bot"
    operator = "operator"
    agency = "agency"  # the agency replied outside Otklik (seen on the platform)


class DeliveryStatus(StrEnum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    failed = "failed"  # gave up after retries; an operator must act
    #: A proactive message not sent: the citizen withdrew consent (or unsubscribed) before it
    #: left (``inbox.consent.withhold``).
    withheld = "withheld"


class Role(StrEnum):
    operator = "operator"
    supervisor = "supervisor"
    admin = "admin"


class InboundRecord(SQLModel, table=True):
    """Every native event as received, stored before it is acknowledged (the inbound journal)."""

    __tablename__ = "inbound_event"
    __table_args__ = (
        sa.UniqueConstraint("channel", "external_id", name="uq_inbound_channel_ext"),
        # The administrators' list of failed events and the dashboard's count of them.
        sa.Index(
            "ix_inbound_failed",
            "id",
            postgresql_where=sa.text(_FAILED_SQL),
            sqlite_where=sa.text(_FAILED_SQL),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=255)
    received_at: datetime = _ts(nullable=False)
    #: The normalized event (JSON), from which processing can be redone after a crash.
    event: dict[str, Any] = _json()
    processed_at: datetime | None = _ts(index=True)
    #: The last processing failure (personal data masked).
    error: str | None = None
    message_id: int | None = Field(default=None, foreign_key="message.id")
    # Failing events (inbox/journal_failures.py): counted, backed off, then set aside.
    #: Failed processing attempts (failures of the database itself are not counted).
    attempts: int = 0
    #: ``process_pending`` leaves the event alone until then (back-off after a failure).
    retry_after: datetime | None = _ts()
    #: Set aside after ``journal_max_attempts`` failures: no longer tried until an
    #: administrator retries it (UI or ``otklik journal retry``).
    failed_at: datetime | None = _ts()
    #: An administrator dismissed the failed event: kept in the journal, no longer listed.
    dismissed_at: datetime | None = _ts()


class Citizen(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    display_name: str | None = Field(default=None, max_length=255)
    created_at: datetime = _ts(nullable=False)
    #: A personal manager (the standard's «персональный менеджер»), if assigned.
    manager_id: int | None = Field(default=None, foreign_key="operator.id")
    #: Set when this record was merged into another one (history then lives there).
    merged_into_id: int | None = Field(default=None, foreign_key="citizen.id")


class Identity(SQLModel, table=True):
    """One citizen's account on one channel (Telegram user, VK user, email address, phone)."""

    __table_args__ = (
        sa.UniqueConstraint("channel", "external_id", name="uq_identity_channel_ext"),
    )

    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=255)
    username: str | None = Field(default=None, max_length=255)
    display_name: str | None = Field(default=None, max_length=255)


class Operator(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=100, unique=True)
    display_name: str = Field(max_length=255)
    role: str = Field(default=Role.operator.value, max_length=20)
    password_hash: str = Field(default="", max_length=255)
    active: bool = True
    #: Sessions that logged in before this moment are over: set by logging out (which ends
    #: the operator's sessions on every device) and by an administrator's password reset.
    sessions_valid_after: datetime | None = _ts()


class Conversation(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_conversation_thread", "channel", "thread_key"),
        sa.Index("ix_conversation_queue", "status", "due_at"),
        # The queue: open conversations by deadline, read in order (perf_0002).
        sa.Index(
            "ix_conversation_open_due",
            "due_at",
            postgresql_where=sa.text(_OPEN_SQL),
            sqlite_where=sa.text(_OPEN_SQL),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: Human-facing appeal number, e.g. 2026-000123 (given after insert: year + id).
    number: str | None = Field(default=None, max_length=32, unique=True)
    channel: str = Field(max_length=20)
    thread_key: str = Field(max_length=255)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    kind: str = Field(max_length=20)  # mention | comment | appeal | other
    rule_id: str = Field(max_length=100)
    status: str = Field(default=ConversationStatus.new.value, max_length=20)
    is_public: bool = False
    source_url: str | None = Field(default=None, max_length=1000)
    #: Where replies go (chat id, peer id, comment thread, email headers).
    reply_target: dict[str, Any] = _json()
    opened_at: datetime = _ts(nullable=False)
    #: The response deadline of the active SLA clock (denormalised for the queue).
    due_at: datetime | None = _ts()
    first_response_at: datetime | None = _ts()
    last_message_at: datetime | None = _ts()
    closed_at: datetime | None = _ts()
    assignee_id: int | None = Field(default=None, foreign_key="operator.id", index=True)
    topic: str | None = Field(default=None, max_length=100)
    life_situation: str | None = Field(default=None, max_length=100)
    #: Optimistic lock counter, bumped on every state change.
    version: int = 1


class Message(SQLModel, table=True):
    __table_args__ = (
        # Inbound duplicates are impossible by construction; outbound have no external id yet.
        sa.Index("ix_message_conversation", "conversation_id", "id"),
        sa.Index("ix_message_outbox", "delivery_status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    direction: str = Field(max_length=10)
    author_kind: str = Field(max_length=20)
    operator_id: int | None = Field(default=None, foreign_key="operator.id")
    channel: str = Field(max_length=20)
    external_id: str | None = Field(default=None, max_length=255)
    text: str = Field(default="", sa_type=sa.Text)
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    is_public: bool = False
    published_at: datetime = _ts(nullable=False)
    # Outbox fields (outbound only): stored first, delivered by a worker, never twice.
    delivery_status: str | None = Field(default=None, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    delivered_at: datetime | None = _ts()
    #: Rendering and provenance: buttons offered, KB entry and template used, readability.
    meta: dict[str, Any] = _json()
    #: Per-message key the sender passes to the platform where it supports one.
    idempotency_key: str | None = Field(default=None, max_length=64, unique=True)
    reply_target: dict[str, Any] = _json()


class Assignment(SQLModel, table=True):
    """Who had the conversation when; the current one has ``ended_at`` null."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    operator_id: int = Field(foreign_key="operator.id")
    assigned_by_id: int | None = Field(default=None, foreign_key="operator.id")
    started_at: datetime = _ts(nullable=False)
    ended_at: datetime | None = _ts()
    reason: str | None = Field(default=None, max_length=255)


class SlaClockStatus(StrEnum):
    running = "running"
    met = "met"
    breached = "breached"  # still running: a late answer is recorded too
    breached_met = "breached_met"  # answered, but after the deadline
    cancelled = "cancelled"


class SlaClock(SQLModel, table=True):
    """One response deadline on a conversation (Chatwoot's applied SLA)."""

    __tablename__ = "sla_clock"
    __table_args__ = (
        sa.Index("ix_sla_scan", "status", "due_at"),
        # The warning half of the SLA scan (perf_0002).
        sa.Index(
            "ix_sla_warn",
            "warn_at",
            postgresql_where=sa.text(_WARN_SQL),
            sqlite_where=sa.text(_WARN_SQL),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    rule_id: str = Field(max_length=100)
    kind: str = Field(max_length=20)
    started_at: datetime = _ts(nullable=False)
    due_at: datetime = _ts(nullable=False)
    warn_at: datetime = _ts(nullable=False)
    status: str = Field(default=SlaClockStatus.running.value, max_length=20)
    warned_at: datetime | None = _ts()
    breached_at: datetime | None = _ts()
    met_at: datetime | None = _ts()


class AuditEvent(SQLModel, table=True):
    """Everything that happened, who did it and why; alerts are audit events too."""

    __tablename__ = "audit_event"
    __table_args__ = (sa.Index("ix_audit_conversation", "conversation_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(nullable=False, index=True)
    kind: str = Field(max_length=50, index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    operator_id: int | None = Field(default=None, foreign_key="operator.id")
    actor: str = Field(default="system", max_length=100)
    data: dict[str, Any] = _json()


class ModerationDecision(SQLModel, table=True):
    __tablename__ = "moderation_decision"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    rule_id: str = Field(max_length=100)
    action: str = Field(max_length=20)  # allow | flag | hide
    reason: str = Field(sa_type=sa.Text)
    decided_at: datetime = _ts(nullable=False)
    #: "auto" or the operator's login who confirmed or overrode it.
    decided_by: str = Field(default="auto", max_length=100)


class Rating(SQLModel, table=True):
    """A citizen's 1-5 rating of a closed conversation (CSAT)."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, sa_type=sa.Text)
    kb_entry_id: str | None = Field(default=None, max_length=100)
    rated_at: datetime = _ts(nullable=False)


class Application(SQLModel, table=True):
    """An application (заявление) a citizen submitted through the bot, tracked by number.

    Its status is changed by the agency (``inbox/applications.py``: operators in the UI, the
    back-office API, the CLI); every change is an ``ApplicationStatusChange`` row.
    """

    __table_args__ = (sa.Index("ix_application_status_created", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str | None = Field(default=None, max_length=32, unique=True)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    service: str = Field(max_length=100)
    fields: dict[str, Any] = _json()
    #: ``inbox.application_status.ApplicationStatus``.
    status: str = Field(default="submitted", max_length=30)
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    #: The date the agency gave with the current status: when the work should be done (in
    #: work), or when it becomes possible (refused for now: «why not now and when»).
    expected_date: date | None = None
    #: Optimistic lock counter, bumped on every status change (a stale form is refused).
    version: int = 1


class ApplicationStatusChange(SQLModel, table=True):
    """One change of an application's status: who, when, from → to, and what was said.

    ``comment`` and ``reason`` are for the citizen (they go into the notification and the
    bot's status answer); ``internal_note`` never leaves the agency. ``message_id`` is the
    citizen's notification in the outbox, written in the same transaction (unique: one
    message per change). A back-office retry carries the same idempotency key and finds
    this row instead of changing the status again (unique per API token).
    """

    __tablename__ = "application_status_change"
    __table_args__ = (
        sa.Index("ix_application_status_change_app", "application_id", "id"),
        sa.UniqueConstraint(
            "api_token_id", "idempotency_key", name="uq_application_status_change_idempotency"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id")
    from_status: str = Field(max_length=30)
    to_status: str = Field(max_length=30)
    changed_at: datetime = _ts(nullable=False)
    #: ``operator`` (the web UI), ``api`` (a back-office system's token) or ``cli``.
    actor_kind: str = Field(max_length=20)
    #: The operator's login, the API token's name or the command line's system user.
    actor: str = Field(max_length=100)
    operator_id: int | None = Field(default=None, foreign_key="operator.id")
    api_token_id: int | None = Field(default=None, foreign_key="api_token.id")
    comment: str | None = Field(default=None, sa_type=sa.Text)
    #: Why it is refused (refused only).
    reason: str | None = Field(default=None, sa_type=sa.Text)
    expected_date: date | None = None
    internal_note: str | None = Field(default=None, sa_type=sa.Text)
    message_id: int | None = Field(default=None, foreign_key="message.id", unique=True)
    idempotency_key: str | None = Field(default=None, max_length=100)
    #: A digest of the request that carried ``idempotency_key``: the same key with another
    #: request is refused rather than answered with this change.
    request_hash: str | None = Field(default=None, max_length=64)


class ApiToken(SQLModel, table=True):
    """A token of the agency's back-office system for ``/api/v1`` (``inbox/api_tokens.py``).

    Only the SHA-256 of the token is stored; the token itself is shown once, when created.
    """

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    #: The token's first characters, so that people can tell tokens apart in lists.
    prefix: str = Field(max_length=16)
    #: Space-separated scopes, e.g. ``applications:read applications:write``.
    scopes: str = Field(max_length=200)
    created_at: datetime = _ts(nullable=False)
    created_by: str = Field(max_length=100)
    revoked_at: datetime | None = _ts()
    last_used_at: datetime | None = _ts()


class LoginThrottle(SQLModel, table=True):
    """Failed logins of one login name or one client address, and the lock they caused.

    Kept in the database, not in memory, so that every web process of a deployment sees the
    same counters (``inbox/throttle.py``). Rows exist for unknown login names too: whether a
    name exists must not change how it is throttled.
    """

    __tablename__ = "login_throttle"
    __table_args__ = (sa.UniqueConstraint("scope", "key", name="uq_login_throttle_scope_key"),)

    id: int | None = Field(default=None, primary_key=True)
    #: ``login`` (the name typed) or ``ip`` (the client address).
    scope: str = Field(max_length=10)
    key: str = Field(max_length=255)
    #: Failures since ``window_start``; the window restarts after ``login_failure_window``.
    failures: int = 0
    window_start: datetime | None = _ts()
    locked_until: datetime | None = _ts()


class QuotaCounter(SQLModel, table=True):
    """How many times one key used one quota in one clock window (``inbox/quota.py``): new
    web-chat conversations per client address and per chat session, per hour and minute.

    In the database, not in memory, so that every web process sees the same counts; one row
    per key and window, changed by one conditional ``UPDATE`` (atomic on both databases).
    """

    __tablename__ = "quota_counter"
    __table_args__ = (
        sa.UniqueConstraint("scope", "key", "slot", name="uq_quota_counter_scope_key_slot"),
        sa.Index("ix_quota_counter_scope_slot", "scope", "slot"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: Which quota, e.g. ``webchat-address``.
    scope: str = Field(max_length=30)
    key: str = Field(max_length=255)
    #: The clock window this row counts: whole windows (the quota's length) since the epoch.
    slot: int
    count: int = 0


class SharedComplaint(SQLModel, table=True):
    """One problem many citizens reported (same place, same topic): a shared complaint.

    Operators work it as one item (``inbox/complaints.py``): one status (the application
    lifecycle, ``inbox.application_status``), one answer and expected date, one SLA clock
    (the open clock of ``conversation_id``, the appeal it started from). Its public tracker
    page is ``/complaints/<slug>``: the slug is random (128 bits), never the id.
    """

    __tablename__ = "shared_complaint"
    __table_args__ = (sa.Index("ix_shared_complaint_match", "topic", "place_key", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=32, unique=True)
    #: The problem, as the public tracker shows it (written by an operator, no personal data).
    title: str = Field(max_length=300)
    #: The place as shown (an address, a street, a yard).
    place: str = Field(max_length=300)
    #: ``inbox.places.place_key(place)``: what matching compares.
    place_key: str = Field(max_length=300)
    #: A service id of the bot's catalog (``rules/catalog.yaml``): lighting, roads…
    topic: str = Field(max_length=100)
    #: ``inbox.application_status.ApplicationStatus``.
    status: str = Field(default="submitted", max_length=30)
    #: The agency's current answer, public (the tracker shows it).
    answer: str | None = Field(default=None, sa_type=sa.Text)
    expected_date: date | None = None
    #: The appeal the complaint started from: its SLA clock is the complaint's clock.
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    created_by: str = Field(max_length=100)
    #: Optimistic lock counter, bumped on every change.
    version: int = 1


class ComplaintSupporter(SQLModel, table=True):
    """A citizen who supports a shared complaint (+1), with the conversation they are told in.

    One row per citizen and complaint: a second +1 is no support.
    """

    __tablename__ = "complaint_supporter"
    __table_args__ = (
        sa.UniqueConstraint("complaint_id", "citizen_id", name="uq_complaint_supporter_citizen"),
        sa.Index("ix_complaint_supporter_conversation", "conversation_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    complaint_id: int = Field(foreign_key="shared_complaint.id")
    citizen_id: int = Field(foreign_key="citizen.id")
    conversation_id: int = Field(foreign_key="conversation.id")
    joined_at: datetime = _ts(nullable=False)
    #: ``operator`` (merged by an operator), ``bot`` (the citizen pressed +1), ``api``, ``cli``.
    via: str = Field(max_length=20)


class ComplaintStatusChange(SQLModel, table=True):
    """One change of a shared complaint's status: who, when, from → to, the public answer.

    Every supporter's notification is a ``message`` row whose idempotency key is
    ``complaint-<change id>-<supporter id>`` (unique in the outbox): once each, even if the
    change is retried or the process restarts mid-send.
    """

    __tablename__ = "complaint_status_change"
    __table_args__ = (sa.Index("ix_complaint_status_change_complaint", "complaint_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    complaint_id: int = Field(foreign_key="shared_complaint.id")
    from_status: str = Field(max_length=30)
    to_status: str = Field(max_length=30)
    changed_at: datetime = _ts(nullable=False)
    #: ``operator``, ``api`` or ``cli`` (as ``ApplicationStatusChange.actor_kind``).
    actor_kind: str = Field(max_length=20)
    actor: str = Field(max_length=100)
    operator_id: int | None = Field(default=None, foreign_key="operator.id")
    api_token_id: int | None = Field(default=None, foreign_key="api_token.id")
    #: The agency's answer with this change (public; every supporter gets it).
    answer: str | None = Field(default=None, sa_type=sa.Text)
    expected_date: date | None = None
    internal_note: str | None = Field(default=None, sa_type=sa.Text)
    #: Supporters told (messages queued) with this change.
    notified: int = 0


class Consent(SQLModel, table=True):
    """A citizen's consent to proactive service (``inbox/consent.py``): for all services of
    a life situation (``scope_kind`` ``situation``) or for one (``service``), ids of
    ``rules/proactive.yaml``. ``wording`` is the text the citizen was shown when agreeing.

    A withdrawn consent keeps its row (``withdrawn_*``): the registry is the history. At most
    one live consent per citizen and scope (a partial unique index).
    """

    __table_args__ = (
        sa.Index(
            "uq_consent_live",
            "citizen_id",
            "scope_kind",
            "scope_id",
            unique=True,
            postgresql_where=sa.text(_CONSENT_LIVE_SQL),
            sqlite_where=sa.text(_CONSENT_LIVE_SQL),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    scope_kind: str = Field(max_length=20)
    scope_id: str = Field(max_length=30)
    wording: str = Field(sa_type=sa.Text)
    given_at: datetime = _ts(nullable=False)
    #: ``bot`` (the citizen pressed «Согласен»), ``operator`` (on the citizen's request), ``cli``.
    given_via: str = Field(max_length=20)
    #: Who recorded it: ``citizen``, an operator's login, the command line's system user.
    given_by: str = Field(max_length=100)
    #: The conversation it was given or requested in, if any.
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    withdrawn_at: datetime | None = _ts()
    withdrawn_via: str | None = Field(default=None, max_length=20)
    withdrawn_by: str | None = Field(default=None, max_length=100)


class Subscription(SQLModel, table=True):
    """A citizen's subscription to a mailing topic (``rules/proactive.yaml`` ``topics``),
    delivered to one conversation's channel at once, daily or weekly (a digest).

    It needs a live consent to the topic's service (or its life situation): subscribing in
    the bot gives that consent; withdrawing the consent cancels the subscription.
    """

    __table_args__ = (
        sa.Index(
            "uq_subscription_live",
            "citizen_id",
            "topic",
            unique=True,
            postgresql_where=sa.text(_SUBSCRIPTION_LIVE_SQL),
            sqlite_where=sa.text(_SUBSCRIPTION_LIVE_SQL),
        ),
        sa.Index("ix_subscription_topic", "topic", "area"),
    )

    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    topic: str = Field(max_length=30)
    #: The district chosen (topics with areas); None: the whole city.
    area: str | None = Field(default=None, max_length=30)
    #: ``now``, ``daily`` or ``weekly``.
    frequency: str = Field(max_length=10)
    #: Where the mailings go (the channel and thread the citizen subscribed from).
    conversation_id: int = Field(foreign_key="conversation.id")
    created_at: datetime = _ts(nullable=False)
    cancelled_at: datetime | None = _ts()
    #: The last digest sent (daily and weekly subscriptions).
    last_digest_at: datetime | None = _ts()


class Mailing(SQLModel, table=True):
    """A mailing a supervisor made (``inbox/mailings.py``): to the subscribers of a topic
    (and district), sent at ``scheduled_at`` through the outbox."""

    __table_args__ = (sa.Index("ix_mailing_due", "status", "scheduled_at"),)

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=30)
    #: Only the subscribers of this district (None: every subscriber of the topic).
    area: str | None = Field(default=None, max_length=30)
    text: str = Field(sa_type=sa.Text)
    #: ``draft``, ``scheduled``, ``sending``, ``sent`` or ``cancelled``.
    status: str = Field(default="draft", max_length=20)
    scheduled_at: datetime | None = _ts()
    created_at: datetime = _ts(nullable=False)
    created_by: str = Field(max_length=100)
    operator_id: int | None = Field(default=None, foreign_key="operator.id")
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()


class MailingRecipient(SQLModel, table=True):
    """One recipient of one mailing, created before anything is sent: unique per mailing and
    citizen, so a crash and a second run never make a second message.

    ``message_id`` is the outbox message that carries it: its own (at once) or the digest
    it went into (daily, weekly; None until the digest is made).
    """

    __tablename__ = "mailing_recipient"
    __table_args__ = (
        sa.UniqueConstraint("mailing_id", "citizen_id", name="uq_mailing_recipient"),
        sa.Index("ix_mailing_recipient_digest", "subscription_id", "message_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    mailing_id: int = Field(foreign_key="mailing.id")
    citizen_id: int = Field(foreign_key="citizen.id")
    subscription_id: int = Field(foreign_key="subscription.id")
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    created_at: datetime = _ts(nullable=False)
    #: No live consent covered it when the mailing was written: nothing was sent.
    skipped: bool = False


class IdentityLinkCode(SQLModel, table=True):
    """A one-time code a citizen asked for in one chat channel to link another one
    (``inbox/identity_links.py``). Only the code's SHA-256 is kept."""

    __tablename__ = "identity_link_code"

    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    channel: str = Field(max_length=20)
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime = _ts(nullable=False)
    #: Set once: the code was used (or replaced by a newer one).
    used_at: datetime | None = _ts()
    #: The record that was merged by it.
    linked_citizen_id: int | None = Field(default=None, foreign_key="citizen.id")


class KBRevision(SQLModel, table=True):
    """One version of one KB entry written by the agency (an override of a shipped entry, or
    an entry of its own), kept apart from the shipped files: see inbox/kb_workflow.py.

    ``status``: ``draft`` (waiting for review), ``returned`` (sent back with ``comment``),
    ``published`` (the bot answers with the newest published row of an entry), ``discarded``
    (a later draft replaced it) or ``conflict`` (``otklik kb merge`` could not merge it; the
    fields in ``conflicts`` wait for a person). Published rows are never changed again, so every
    published version stays and can be compared with any other.
    """

    __tablename__ = "kb_revision"
    __table_args__ = (sa.Index("ix_kb_revision_entry", "entry_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    entry_id: str = Field(max_length=200)
    status: str = Field(default="draft", max_length=20, index=True)
    #: The entry's fields (KBEntry without the private ones).
    data: dict[str, Any] = _json()
    #: The shipped entry this one was based on and its content hash (None: the agency's own).
    base_data: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    base_hash: str | None = Field(default=None, max_length=64)
    #: Published versions of an entry are 1, 2, 3...; None until published.
    version: int | None = None
    author_id: int | None = Field(default=None, foreign_key="operator.id")
    author: str = Field(max_length=100)
    created_at: datetime = _ts(nullable=False)
    reviewer_id: int | None = Field(default=None, foreign_key="operator.id")
    reviewer: str | None = Field(default=None, max_length=100)
    reviewed_at: datetime | None = _ts()
    comment: str | None = Field(default=None, sa_type=sa.Text)
    #: Where the draft came from: ``ui`` (draft page), ``admin`` (entry page), ``new``,
    #: ``retire``, ``restore`` (a retired entry brought back), ``version`` (an older version
    #: brought back), ``sheet`` (spreadsheet import, UI or ``otklik kb import``) or ``merge``.
    origin: str = Field(default="ui", max_length=20)
    #: ``otklik kb merge``: {field: {"base": ..., "ours": ..., "theirs": ...}} left to a person.
    conflicts: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
