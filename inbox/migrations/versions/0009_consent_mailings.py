"""Consent to proactive service, subscriptions to mailing topics, mailings and recipients.

``consent`` is the registry (given, with the wording shown, and withdrawn; at most one live
consent per citizen and scope); ``subscription`` is what a citizen gets and how often;
``mailing`` and ``mailing_recipient`` are a supervisor's mailing and its recipients, one row
per mailing and citizen made before sending (docs/operator-ui.md, docs/citizen-bot.md).

Revision ID: consent_mailings
Revises: lowercase_logins
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "consent_mailings"
down_revision = "lowercase_logins"
branch_labels = None
depends_on = None

_STRING = sqlmodel.sql.sqltypes.AutoString
_CONSENT_LIVE = sa.text("withdrawn_at IS NULL")
_SUBSCRIPTION_LIVE = sa.text("cancelled_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("scope_kind", _STRING(length=20), nullable=False),
        sa.Column("scope_id", _STRING(length=30), nullable=False),
        sa.Column("wording", sa.Text(), nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("given_via", _STRING(length=20), nullable=False),
        sa.Column("given_by", _STRING(length=100), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_via", _STRING(length=20), nullable=True),
        sa.Column("withdrawn_by", _STRING(length=100), nullable=True),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizen.id"]),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consent_citizen_id", "consent", ["citizen_id"])
    op.create_index(
        "uq_consent_live", "consent", ["citizen_id", "scope_kind", "scope_id"], unique=True,
        postgresql_where=_CONSENT_LIVE, sqlite_where=_CONSENT_LIVE,
    )  # fmt: skip
    op.create_table(
        "subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("topic", _STRING(length=30), nullable=False),
        sa.Column("area", _STRING(length=30), nullable=True),
        sa.Column("frequency", _STRING(length=10), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_digest_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizen.id"]),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_subscription_citizen_id", "subscription", ["citizen_id"])
    op.create_index("ix_subscription_topic", "subscription", ["topic", "area"])
    op.create_index(
        "uq_subscription_live", "subscription", ["citizen_id", "topic"], unique=True,
        postgresql_where=_SUBSCRIPTION_LIVE, sqlite_where=_SUBSCRIPTION_LIVE,
    )  # fmt: skip
    op.create_table(
        "mailing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", _STRING(length=30), nullable=False),
        sa.Column("area", _STRING(length=30), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", _STRING(length=20), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", _STRING(length=100), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["operator_id"], ["operator.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mailing_due", "mailing", ["status", "scheduled_at"])
    op.create_table(
        "mailing_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailing_id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizen.id"]),
        sa.ForeignKeyConstraint(["mailing_id"], ["mailing.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscription.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mailing_id", "citizen_id", name="uq_mailing_recipient"),
    )
    op.create_index("ix_mailing_recipient_message_id", "mailing_recipient", ["message_id"])
    op.create_index(
        "ix_mailing_recipient_digest", "mailing_recipient", ["subscription_id", "message_id"]
    )


def downgrade() -> None:
    op.drop_table("mailing_recipient")
    op.drop_table("mailing")
    op.drop_table("subscription")
    op.drop_table("consent")
