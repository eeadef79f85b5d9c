"""Counters of new web-chat conversations per client address and per chat session, per hour
and per minute (``inbox/quota.py``, docs/webchat.md).

Revision ID: webchat_quota
Revises: application_lifecycle
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "webchat_quota"
down_revision = "application_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "key", "slot", name="uq_quota_counter_scope_key_slot"),
    )
    with op.batch_alter_table("quota_counter") as batch:
        batch.create_index("ix_quota_counter_scope_slot", ["scope", "slot"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quota_counter") as batch:
        batch.drop_index("ix_quota_counter_scope_slot")
    op.drop_table("quota_counter")
