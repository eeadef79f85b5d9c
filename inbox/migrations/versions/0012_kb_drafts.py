"""KB authoring: drafts, review, published versions and merge conflicts (kb_revision).

See inbox/kb_workflow.py and docs/knowledge-base.md («Черновики, проверка и публикация»).

Revision ID: kb_drafts
Revises: identity_links
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "kb_drafts"
down_revision = "identity_links"
branch_labels = None
depends_on = None

_STRING = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "kb_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", _STRING(length=200), nullable=False),
        sa.Column("status", _STRING(length=20), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("base_data", sa.JSON(), nullable=True),
        sa.Column("base_hash", _STRING(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("author", _STRING(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("reviewer", _STRING(length=100), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("origin", _STRING(length=20), nullable=False),
        sa.Column("conflicts", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["author_id"], ["operator.id"]),
        sa.ForeignKeyConstraint(["reviewer_id"], ["operator.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_kb_revision_entry", "kb_revision", ["entry_id", "status"])
    op.create_index("ix_kb_revision_status", "kb_revision", ["status"])


def downgrade() -> None:
    op.drop_index("ix_kb_revision_status", table_name="kb_revision")
    op.drop_index("ix_kb_revision_entry", table_name="kb_revision")
    op.drop_table("kb_revision")
