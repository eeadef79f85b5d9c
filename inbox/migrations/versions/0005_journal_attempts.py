"""Failing journal rows: attempts, back-off, set aside as failed, dismissed (docs/architecture.md).

Also cleans unprocessed journal rows holding a ``\\u0000`` escape (PostgreSQL): such a row
breaks ``event ->> 'thread_key'``, and with it the whole ``process_pending`` scan. New events
are cleaned before they are journalled (``core.codepoints``).

Revision ID: journal_attempts
Revises: 0004
"""

import json

import sqlalchemy as sa
from alembic import op

from core.codepoints import clean_json

revision = "journal_attempts"
down_revision = "0004"
branch_labels = None
depends_on = None

FAILED = "failed_at IS NOT NULL AND processed_at IS NULL AND dismissed_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("inbound_event") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("retry_after", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_inbound_failed", "inbound_event", ["id"],
        postgresql_where=sa.text(FAILED), sqlite_where=sa.text(FAILED),
    )  # fmt: skip
    _clean_pending_rows()


def _clean_pending_rows() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return  # SQLite's JSON functions read such rows
    rows = conn.execute(
        sa.text(
            "SELECT id, event::text FROM inbound_event "
            "WHERE processed_at IS NULL AND strpos(event::text, '\\u0000') > 0"
        )
    ).all()
    for record_id, text in rows:
        cleaned = json.dumps(clean_json(json.loads(text)))
        conn.execute(
            sa.text("UPDATE inbound_event SET event = CAST(:event AS json) WHERE id = :id"),
            {"event": cleaned, "id": record_id},
        )


def downgrade() -> None:
    op.drop_index("ix_inbound_failed", table_name="inbound_event")
    with op.batch_alter_table("inbound_event") as batch:
        batch.drop_column("dismissed_at")
        batch.drop_column("failed_at")
        batch.drop_column("retry_after")
        batch.drop_column("attempts")
