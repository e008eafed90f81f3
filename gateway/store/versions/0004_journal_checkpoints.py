"""The store's copy of the journal's signed checkpoints (journal_checkpoints).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journal_checkpoints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=False),
    )
    op.create_index("ix_journal_checkpoints_seq", "journal_checkpoints", ["seq"])


def downgrade() -> None:
    op.drop_index("ix_journal_checkpoints_seq", table_name="journal_checkpoints")
    op.drop_table("journal_checkpoints")
