"""Application lifecycle driven by the agency: status history, expected dates, API tokens.

Every status change is a row of ``application_status_change`` (who, when, from → to, what
the citizen is told, an internal note, the notification in the outbox); the back-office
system authenticates with ``api_token`` rows (only a hash of each token is stored). See
docs/api.md and docs/operator-ui.md.

Revision ID: application_lifecycle
Revises: journal_attempts
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "application_lifecycle"
down_revision = "journal_attempts"
branch_labels = None
depends_on = None

_STRING = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _STRING(length=100), nullable=False),
        sa.Column("token_hash", _STRING(length=64), nullable=False),
        sa.Column("prefix", _STRING(length=16), nullable=False),
        sa.Column("scopes", _STRING(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", _STRING(length=100), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "application_status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("from_status", _STRING(length=30), nullable=False),
        sa.Column("to_status", _STRING(length=30), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", _STRING(length=20), nullable=False),
        sa.Column("actor", _STRING(length=100), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("api_token_id", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("expected_date", sa.Date(), nullable=True),
        sa.Column("internal_note", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", _STRING(length=100), nullable=True),
        sa.Column("request_hash", _STRING(length=64), nullable=True),
        sa.ForeignKeyConstraint(["api_token_id"], ["api_token.id"]),
        sa.ForeignKeyConstraint(["application_id"], ["application.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.ForeignKeyConstraint(["operator_id"], ["operator.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "api_token_id", "idempotency_key", name="uq_application_status_change_idempotency"
        ),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index(
        "ix_application_status_change_app", "application_status_change", ["application_id", "id"]
    )
    with op.batch_alter_table("application") as batch:
        batch.add_column(sa.Column("expected_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.create_index("ix_application_status_created", ["status", "created_at"])
    # The bot's texts once named a «rejected» status that nothing could set; it is «refused».
    op.execute("UPDATE application SET status = 'refused' WHERE status = 'rejected'")


def downgrade() -> None:
    with op.batch_alter_table("application") as batch:
        batch.drop_index("ix_application_status_created")
        batch.drop_column("version")
        batch.drop_column("expected_date")
    op.drop_index("ix_application_status_change_app", table_name="application_status_change")
    op.drop_table("application_status_change")
    op.drop_table("api_token")
