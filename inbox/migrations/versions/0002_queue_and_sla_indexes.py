"""Indexes for the operator queue and the SLA warning scan (measured: docs/performance.md).

Revision ID: perf_0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = "status IN ('new', 'bot', 'waiting_operator', 'answered')"
WARN = "status = 'running' AND warned_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_conversation_open_due", "conversation", ["due_at"],
        postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_sla_warn", "sla_clock", ["warn_at"],
        postgresql_where=sa.text(WARN), sqlite_where=sa.text(WARN),
    )


def downgrade() -> None:
    op.drop_index("ix_sla_warn", table_name="sla_clock")
    op.drop_index("ix_conversation_open_due", table_name="conversation")
