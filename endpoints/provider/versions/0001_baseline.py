"""The АЖО's tables as metadata.create_all made them before there were migrations.

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
        "ajo_sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("clinic_bin", sa.String(12), nullable=False),
        sa.Column("employee_iin", sa.String(12), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ajo_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("registration_number", sa.String(40), unique=True),
        sa.Column("request_number", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("message_id", sa.String(64), unique=True),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("clinic_bin", sa.String(12), nullable=False),
        sa.Column("applicant_iin", sa.String(12), nullable=False),
        sa.Column("employee_iin", sa.String(12)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("registered_at", sa.String(40)),
        sa.Column("decided_at", sa.String(40)),
        sa.Column("request_xml", sa.LargeBinary(), nullable=False),
        sa.Column("registration_xml", sa.LargeBinary()),
        sa.Column("result_xml", sa.LargeBinary()),
        sa.Column("coupon_number", sa.String(40)),
        sa.Column("update_sent", sa.Boolean(), nullable=False),
        sa.Column("response_sent", sa.Boolean(), nullable=False),
    )
    op.create_index("ajo_requests_number", "ajo_requests", ["request_number"])
    op.create_table(
        "ajo_attachments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("iin", sa.String(12), nullable=False),
        sa.Column("surname", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("patronymic", sa.String(100)),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("address", sa.Text()),
        sa.Column("clinic_bin", sa.String(12), nullable=False),
        sa.Column("clinic_name", sa.Text(), nullable=False),
        sa.Column("district_number", sa.String(16), nullable=False),
        sa.Column("district_kind", sa.String(16), nullable=False),
        sa.Column("doctor", sa.Text(), nullable=False),
        sa.Column("attach_date", sa.Date(), nullable=False),
        sa.Column("detach_date", sa.Date()),
        sa.Column("detach_reason", sa.Text()),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("coupon_number", sa.String(40), nullable=False),
        sa.Column("home_visit", sa.Boolean(), nullable=False),
        sa.Column("counted_change", sa.Boolean(), nullable=False),
    )
    op.create_index("ajo_attachments_iin", "ajo_attachments", ["iin"])
    op.create_index("ajo_attachments_clinic", "ajo_attachments", ["clinic_bin", "district_number"])
    # One organisation at a time: a partial unique index on the active attachments.
    active = sa.text("detach_date IS NULL")
    op.create_index("ajo_attachments_active", "ajo_attachments", ["iin"], unique=True,
                    sqlite_where=active, postgresql_where=active)


def downgrade() -> None:
    for table in ("ajo_attachments", "ajo_requests", "ajo_sessions"):
        op.drop_table(table)
