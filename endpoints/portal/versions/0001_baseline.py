"""The portal's tables as metadata.create_all made them before there were migrations.

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
        "portal_citizens",
        sa.Column("iin", sa.String(12), primary_key=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("surname", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("patronymic", sa.String(100)),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime()),
    )
    op.create_table(
        "portal_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("iin", sa.String(12), sa.ForeignKey("portal_citizens.iin"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_portal_sessions_iin", "portal_sessions", ["iin"])
    op.create_table(
        "portal_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(40), unique=True),
        sa.Column("owner_iin", sa.String(12), sa.ForeignKey("portal_citizens.iin"), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("form", sa.JSON(), nullable=False),
        sa.Column("applicant_iin", sa.String(12), nullable=False),
        sa.Column("representative_iin", sa.String(12)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("submitted_at", sa.DateTime()),
        sa.Column("deadline", sa.DateTime()),
        sa.Column("signer", sa.JSON()),
        sa.Column("message_id", sa.String(64)),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("session_id", sa.String(64)),
        sa.Column("registration_number", sa.String(64)),
        sa.Column("registered_at", sa.DateTime()),
        sa.Column("reasons", sa.JSON()),
        sa.Column("result_type", sa.String(16)),
        sa.Column("result_document", sa.LargeBinary()),
        sa.Column("delivery", sa.JSON()),
    )
    op.create_index("ix_portal_requests_owner_iin", "portal_requests", ["owner_iin"])
    op.create_index("ix_portal_requests_correlation_id", "portal_requests", ["correlation_id"])
    op.create_table(
        "portal_inbox",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("message_type", sa.String(16), nullable=False),
        sa.Column("document", sa.String(64)),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("outcome", sa.String(200), nullable=False),
    )
    op.create_index("ix_portal_inbox_correlation_id", "portal_inbox", ["correlation_id"])


def downgrade() -> None:
    for table in ("portal_inbox", "portal_requests", "portal_sessions", "portal_citizens"):
        op.drop_table(table)
