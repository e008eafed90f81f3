"""The portal's own tables (SQLAlchemy Core, own MetaData, `portal_` prefix): they may share the
gateway store's database but never touch the gateway's tables."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, Column, Date, DateTime, ForeignKey, Integer, LargeBinary, MetaData, String, Table,
                        TypeDecorator)


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes on both dialects (SQLite keeps no offset, so store UTC and re-attach it)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the portal stores aware UTC times only")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


metadata = MetaData()

citizens = Table(
    "portal_citizens", metadata,
    Column("iin", String(12), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("surname", String(100), nullable=False),
    Column("name", String(100), nullable=False),
    Column("patronymic", String(100)),
    Column("birth_date", Date, nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", UtcDateTime),
)

sessions = Table(
    "portal_sessions", metadata,
    # sha256 of the bearer token: a leaked table grants no session.
    Column("token_hash", String(64), primary_key=True),
    Column("iin", String(12), ForeignKey("portal_citizens.iin"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

requests = Table(
    "portal_requests", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(40), unique=True),
    Column("owner_iin", String(12), ForeignKey("portal_citizens.iin"), nullable=False, index=True),
    Column("service", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("form", JSON, nullable=False),  # what the citizen entered, with the applicant filled in
    Column("applicant_iin", String(12), nullable=False),
    Column("representative_iin", String(12)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("submitted_at", UtcDateTime),
    Column("deadline", UtcDateTime),
    Column("signer", JSON),  # the certificate that signed: subject, IIN, serial
    Column("message_id", String(64)),
    Column("correlation_id", String(64), index=True),
    Column("session_id", String(64)),
    Column("registration_number", String(64)),
    Column("registered_at", UtcDateTime),
    Column("reasons", JSON),  # REFUSED: the clinic's reasons; ERROR: what failed
    Column("result_type", String(16)),  # COUPON | REFUSAL
    Column("result_document", LargeBinary),  # the signed document as received, re-verified on view
    Column("delivery", JSON),  # getMessageStatus of the REQUEST: state, code, message, date
)

# Regulation §14: one row per sent request, the facts of its deadline indicator (endpoints/portal/quality.py).
deadlines = Table(
    "portal_deadlines", metadata,
    Column("request_id", Integer, ForeignKey("portal_requests.id"), primary_key=True),
    Column("clinic_bin", String(12), nullable=False),
    Column("deadline", UtcDateTime, nullable=False),  # as the status screen shows it
    Column("answered_at", UtcDateTime),  # when the clinic formed the result, as its signed document says
)

inbox = Table(
    "portal_inbox", metadata,
    # Delivery is at least once: a messageId seen here is acknowledged again and not applied twice.
    Column("message_id", String(64), primary_key=True),
    Column("correlation_id", String(64), nullable=False, index=True),
    Column("message_type", String(16), nullable=False),
    Column("document", String(64)),
    Column("received_at", UtcDateTime, nullable=False),
    Column("outcome", String(200), nullable=False),
)
