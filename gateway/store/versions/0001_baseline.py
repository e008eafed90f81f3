"""The gateway's tables as metadata.create_all made them before there were migrations.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_messages",
        sa.Column("sender_id", sa.String(), primary_key=True),
        sa.Column("message_id", sa.String(), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "journal",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hop", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("from_party", sa.String()),
        sa.Column("to_party", sa.String()),
        sa.Column("service_id", sa.String()),
        sa.Column("message_id", sa.String()),
        sa.Column("correlation_id", sa.String()),
        sa.Column("session_id", sa.String()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdicts", sa.Text(), nullable=False),
        sa.Column("deviations", sa.Text(), nullable=False),
        sa.Column("fault_code", sa.String()),
        sa.Column("http_status", sa.Integer()),
        sa.Column("body", sa.LargeBinary()),
        sa.Column("body_sha256", sa.String(64)),
        sa.Column("body_size", sa.BigInteger()),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    for column in ("message_id", "session_id", "service_id", "from_party", "started_at"):
        op.create_index(f"ix_journal_{column}", "journal", [column])
    op.create_table(
        "journal_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="journal_head_single_row"),
    )
    op.create_table(
        "async_messages",
        sa.Column("message_id", sa.String(), primary_key=True),
        sa.Column("correlation_id", sa.String(), nullable=False),
        sa.Column("service_id", sa.String(), nullable=False),
        sa.Column("message_type", sa.String(), nullable=False),
        sa.Column("sender_id", sa.String(), nullable=False),
        sa.Column("recipient_id", sa.String(), nullable=False),
        sa.Column("delivery", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("status_code", sa.String(), nullable=False),
        sa.Column("status_message", sa.String(), nullable=False),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("message", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_async_recipient", "async_messages", ["recipient_id", "service_id", "state", "due_at"])
    op.create_index("ix_async_correlation", "async_messages", ["correlation_id"])
    op.create_index("ix_async_due", "async_messages", ["delivery", "state", "due_at"])


def downgrade() -> None:
    for table in ("async_messages", "journal_head", "journal", "seen_messages"):
        op.drop_table(table)
