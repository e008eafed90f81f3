"""The §14 deadline indicator's facts (portal_deadlines), one row per sent request.

Requests sent before this revision get their clinic from the form, and, when answered, the time of their last
change as the time of the answer (the best the table knew).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    deadlines = op.create_table(
        "portal_deadlines",
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("portal_requests.id"), primary_key=True),
        sa.Column("clinic_bin", sa.String(12), nullable=False),
        sa.Column("deadline", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime()),
    )
    requests = sa.table("portal_requests", sa.column("id", sa.Integer()), sa.column("form", sa.JSON()),
                        sa.column("deadline", sa.DateTime()), sa.column("result_type", sa.String(16)),
                        sa.column("updated_at", sa.DateTime()))
    bind = op.get_bind()
    sent = bind.execute(sa.select(requests).where(requests.c.deadline.is_not(None))).all()
    if sent:
        bind.execute(deadlines.insert(), [
            {"request_id": row.id, "clinic_bin": (row.form or {}).get("clinic_bin") or "", "deadline": row.deadline,
             "answered_at": row.updated_at if row.result_type is not None else None} for row in sent])


def downgrade() -> None:
    op.drop_table("portal_deadlines")
