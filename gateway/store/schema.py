"""Tables of the gateway's persistent state."""

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; naive datetimes are refused rather than guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timezone-aware datetime required, got naive {moment!r}")
    return moment.astimezone(UTC)


class UTCDateTime(TypeDecorator):
    """Timestamp written and read as tz-aware UTC on every dialect.

    SQLite keeps no offset, so values are normalised to UTC on the way in
    (which also keeps its text comparison chronological) and labelled UTC on
    the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else as_utc(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

# Replay guard: one row per (sender, message id), refreshed once the window has passed.
seen_messages = Table(
    "seen_messages",
    metadata,
    Column("sender_id", String, primary_key=True),
    Column("message_id", String, primary_key=True),
    Column("seen_at", UTCDateTime(), nullable=False),
    Column("session_id", String),  # the session that accepted it (NULL: recorded before revision 0003)
)

# seq is assigned by the journal (last + 1) so a gap can only mean a deletion.
journal = Table(
    "journal",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hop", String(32), nullable=False),
    Column("direction", String(8), nullable=False),  # in | out | internal (a delivery state change)
    Column("from_party", String),
    Column("to_party", String),
    Column("service_id", String),
    Column("message_id", String),
    Column("correlation_id", String),
    Column("session_id", String),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("verdicts", Text, nullable=False),
    Column("deviations", Text, nullable=False),
    Column("fault_code", String),
    Column("http_status", Integer),
    Column("body", LargeBinary),
    Column("body_sha256", String(64)),
    Column("body_size", BigInteger),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_journal_message_id", "message_id"),
    Index("ix_journal_session_id", "session_id"),
    Index("ix_journal_service_id", "service_id"),
    Index("ix_journal_from_party", "from_party"),
    Index("ix_journal_started_at", "started_at"),
)

# The chain's head, moved in the same transaction as each append so a deleted tail shows.
journal_head = Table(
    "journal_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    CheckConstraint("id = 1", name="journal_head_single_row"),
)

# AsyncChannel store-and-forward: one row per message the gateway accepted, until it is delivered
# (or given up). `message` holds the AsyncMessage exactly as it will be delivered.
async_messages = Table(
    "async_messages",
    metadata,
    Column("message_id", String, primary_key=True),
    Column("correlation_id", String, nullable=False),
    Column("service_id", String, nullable=False),
    Column("message_type", String, nullable=False),
    Column("sender_id", String, nullable=False),
    Column("recipient_id", String, nullable=False),
    Column("delivery", String, nullable=False),  # push | pull
    Column("state", String, nullable=False),  # ON_DELIVERY | DELIVERED | NOT_DELIVERED | DELIVERY_STOPPED
    Column("status_code", String, nullable=False),
    Column("status_message", String, nullable=False),
    Column("session_id", String, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    # Pull: when a handed-out, unacknowledged message becomes visible again. Push: the next attempt.
    Column("due_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("message", LargeBinary, nullable=False),
    Index("ix_async_recipient", "recipient_id", "service_id", "state", "due_at"),
    Index("ix_async_correlation", "correlation_id"),
    Index("ix_async_due", "delivery", "state", "due_at"),
)

# Participants' wrong passwords and lockouts (gateway/store/lockouts.py): a row for each that ever failed.
sender_lockouts = Table(
    "sender_lockouts",
    metadata,
    Column("sender_id", String, primary_key=True),
    Column("failed_logins", Integer, nullable=False),  # in a row, since a success or the last lockout
    Column("locked_until", UTCDateTime()),
)

# Wrong passwords from one client address, whoever they were for (gateway/checks/sender.py, the operator API).
address_lockouts = Table(
    "address_lockouts",
    metadata,
    Column("address", String, primary_key=True),
    Column("failed_logins", Integer, nullable=False),  # since the last lockout (a success does not reset it)
    Column("locked_until", UTCDateTime()),
)

# The store's copy of each signed checkpoint (gateway/checkpoints.py), `checkpoint` being the line exactly as
# appended to journal-checkpoints.jsonl: that file, outside the database, stays the authority. `id` and not
# `seq` is the key: worker processes may each sign a range that ends at the same record.
journal_checkpoints = Table(
    "journal_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("first_seq", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("written_at", UTCDateTime(), nullable=False),
    Column("checkpoint", Text, nullable=False),
    Index("ix_journal_checkpoints_seq", "seq"),
)
