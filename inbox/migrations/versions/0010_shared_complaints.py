"""Shared complaints (+1): one problem of one place, its supporters and its status history.

See inbox/complaints.py and docs/operator-ui.md («Общие жалобы»).

Revision ID: shared_complaints
Revises: consent_mailings
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "shared_complaints"
down_revision = "consent_mailings"
branch_labels = None
depends_on = None

_STRING = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "shared_complaint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", _STRING(length=32), nullable=False),
        sa.Column("title", _STRING(length=300), nullable=False),
        sa.Column("place", _STRING(length=300), nullable=False),
        sa.Column("place_key", _STRING(length=300), nullable=False),
        sa.Column("topic", _STRING(length=100), nullable=False),
        sa.Column("status", _STRING(length=30), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("expected_date", sa.Date(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", _STRING(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_index(
        "ix_shared_complaint_match", "shared_complaint", ["topic", "place_key", "status"]
    )
    op.create_table(
        "complaint_supporter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("via", _STRING(length=20), nullable=False),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizen.id"]),
        sa.ForeignKeyConstraint(["complaint_id"], ["shared_complaint.id"]),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("complaint_id", "citizen_id", name="uq_complaint_supporter_citizen"),
    )
    op.create_index(
        "ix_complaint_supporter_conversation", "complaint_supporter", ["conversation_id"]
    )
    op.create_table(
        "complaint_status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("from_status", _STRING(length=30), nullable=False),
        sa.Column("to_status", _STRING(length=30), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", _STRING(length=20), nullable=False),
        sa.Column("actor", _STRING(length=100), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("api_token_id", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("expected_date", sa.Date(), nullable=True),
        sa.Column("internal_note", sa.Text(), nullable=True),
        sa.Column("notified", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["api_token_id"], ["api_token.id"]),
        sa.ForeignKeyConstraint(["complaint_id"], ["shared_complaint.id"]),
        sa.ForeignKeyConstraint(["operator_id"], ["operator.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_complaint_status_change_complaint", "complaint_status_change", ["complaint_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_complaint_status_change_complaint", table_name="complaint_status_change")
    op.drop_table("complaint_status_change")
    op.drop_index("ix_complaint_supporter_conversation", table_name="complaint_supporter")
    op.drop_table("complaint_supporter")
    op.drop_index("ix_shared_complaint_match", table_name="shared_complaint")
    op.drop_table("shared_complaint")
