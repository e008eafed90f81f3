"""Participants' failed password checks and lockouts (sender_lockouts).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sender_lockouts",
        sa.Column("sender_id", sa.String(), primary_key=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("sender_lockouts")
