"""Identity links: one-time codes a citizen uses to link two chat channels into one record.

See inbox/identity_links.py and docs/citizen-bot.md («Связать аккаунты»).

Revision ID: identity_links
Revises: shared_complaints
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "identity_links"
down_revision = "shared_complaints"
branch_labels = None
depends_on = None

_STRING = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "identity_link_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", _STRING(length=64), nullable=False),
        sa.Column("channel", _STRING(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("linked_citizen_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizen.id"]),
        sa.ForeignKeyConstraint(["linked_citizen_id"], ["citizen.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    op.create_index("ix_identity_link_code_citizen_id", "identity_link_code", ["citizen_id"])


def downgrade() -> None:
    op.drop_index("ix_identity_link_code_citizen_id", table_name="identity_link_code")
    op.drop_table("identity_link_code")
