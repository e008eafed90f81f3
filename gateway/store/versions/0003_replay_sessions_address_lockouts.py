"""The session that accepted each seen message (seen_messages.session_id: a resend after SHEP-299 finds it), and
failed logins per client address (address_lockouts).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Recreated on SQLite, so the table reads exactly as a new database's (tests/test_migrations.py).
    with op.batch_alter_table("seen_messages", recreate="always") as batch:
        batch.add_column(sa.Column("session_id", sa.String()))
    op.create_table(
        "address_lockouts",
        sa.Column("address", sa.String(), primary_key=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("address_lockouts")
    with op.batch_alter_table("seen_messages", recreate="always") as batch:
        batch.drop_column("session_id")
