"""Persistent state of the gateway behind one small interface (SQLAlchemy Core)."""

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy
from sqlalchemy import Connection, bindparam, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.context import FirstSeen, MessageClaim
from gateway.faults import CATALOGUE, Fault
from gateway.store import lockouts
from gateway.store.schema import address_lockouts, as_utc, journal, seen_messages, sender_lockouts

# The fault a sender gets when the gateway could not record the outcome.
INTERNAL = next(spec.code for spec in CATALOGUE.values() if spec.name == "INTERNAL_ERROR")

# Both dialects spell the upsert the same way; only the construct's home differs.
_UPSERT_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}

# Key of the PostgreSQL advisory lock that serializes exclusive transactions.
_EXCLUSIVE_LOCK_KEY = 0x53484550  # b"SHEP"

# Execution option marking a SQLite transaction as read-only, so it begins deferred.
_SNAPSHOT_OPTION = "shep_snapshot"

_SQLITE_BUSY_TIMEOUT_MS = 10_000

# The errors of a database that cannot be reached or written now (an outage), not of a statement or its data.
UNAVAILABLE = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


def sqlite_url(state_dir: Path) -> str:
    """URL of the SQLite database in `state_dir` (created if missing, 0700: it holds the store and keys)."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return f"sqlite:///{state_dir / 'shep.db'}"


def _private_sqlite_files(database: str) -> None:
    """The database file made, or kept, 0600 before SQLite opens it: SQLite gives its -wal and -shm files
    the database file's mode, so the journal's bytes are nobody else's to read."""
    path = Path(database)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for companion in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if companion.exists():
            companion.chmod(0o600)


class Store:
    """Persistent state of the gateway (SQLite WAL by default, PostgreSQL when scaled)."""

    def __init__(self, url: str):
        self.engine: sqlalchemy.Engine = create_engine(url)
        dialect = self.engine.dialect.name
        if dialect not in _UPSERT_INSERT:
            raise ValueError(
                f"unsupported database {dialect!r}: use sqlite or postgresql"
            )
        if dialect == "sqlite":
            if self.engine.url.database not in (None, "", ":memory:"):
                _private_sqlite_files(self.engine.url.database)
            _tune_sqlite(self.engine)
        self._remember = _remember_statement(dialect)

    def create_schema(self) -> None:
        """Bring the gateway's tables to the latest migration; safe when several processes start at once."""
        from gateway.store import migrations  # it imports this module

        migrations.upgrade(self.engine, "gateway")

    def close(self) -> None:
        self.engine.dispose()

    def exclusive(self) -> AbstractContextManager[Connection]:
        """A write transaction that runs alone among all processes sharing the database."""
        return exclusive(self.engine)

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction that sees one consistent state and never blocks writers."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            else:
                conn.execution_options(**{_SNAPSHOT_OPTION: True})
            with conn.begin():
                yield conn

    def first_seen(self, sender_id: str, message_id: str, now: datetime, window: timedelta) -> FirstSeen | None:
        """Replay guard: the accepted message with this pair seen within the window, and whether its sender
        got an answer (the journal's last response-out of its session is not SHEP-299)."""
        with self.snapshot() as conn:
            row = conn.execute(select(seen_messages.c.session_id, seen_messages.c.seen_at).where(
                seen_messages.c.sender_id == sender_id, seen_messages.c.message_id == message_id,
                seen_messages.c.seen_at >= now - window)).first()
            if row is None:
                return None
            hops = conn.execute(select(journal.c.hop, journal.c.fault_code).where(
                journal.c.session_id == row.session_id, journal.c.hop.in_(("response-in", "response-out")))
                .order_by(journal.c.seq)).all() if row.session_id else []
        answers = [hop.fault_code for hop in hops if hop.hop == "response-out"]
        return FirstSeen(row.session_id, as_utc(row.seen_at), answered=bool(answers) and answers[-1] != INTERNAL,
                         provider_answered=any(hop.hop == "response-in" and hop.fault_code is None for hop in hops))

    def claim_in(self, conn: Connection, claim: MessageClaim) -> None:
        """Record the pair inside the transaction that accepts its message. MESSAGE_REPLAYED when another
        request with it was accepted within the window: the caller's transaction rolls back."""
        if claim.replaces is not None:
            taken = conn.execute(seen_messages.update().where(
                seen_messages.c.sender_id == claim.sender_id, seen_messages.c.message_id == claim.message_id,
                seen_messages.c.session_id == claim.replaces).values(session_id=claim.session_id)).rowcount == 1
        else:
            params = {"sender_id": claim.sender_id, "message_id": claim.message_id, "session_id": claim.session_id,
                      "seen_at": claim.seen_at, "stale_before": claim.stale_before}
            taken = conn.execute(self._remember, params).first() is not None
        if not taken:
            raise Fault("MESSAGE_REPLAYED", f"messageId {claim.message_id!r} from {claim.sender_id!r}: another "
                                            "request with it was accepted first")

    # -- participants' password failures (gateway/checks/sender.py, gateway/store/lockouts.py) ----------

    def login_state(self, sender_id: str) -> tuple[int, datetime | None] | None:
        """(failed_logins, locked_until) of a participant that ever failed; None for the others. On every
        request: a read that takes no write lock."""
        with self.snapshot() as conn:
            row = conn.execute(select(sender_lockouts.c.failed_logins, sender_lockouts.c.locked_until)
                               .where(sender_lockouts.c.sender_id == sender_id)).first()
        return None if row is None else (row.failed_logins, row.locked_until)

    def login_failed(self, sender_id: str, now: datetime, attempts: int, minutes: float) -> datetime | None:
        with self.engine.begin() as conn:
            lockouts.ensure_row(conn, sender_lockouts, sender_id)
            return lockouts.login_failed(conn, sender_lockouts, sender_id, now, attempts, minutes)

    def login_succeeded(self, sender_id: str, now: datetime) -> datetime | None:
        with self.engine.begin() as conn:
            if conn.execute(select(sender_lockouts.c.sender_id)
                            .where(sender_lockouts.c.sender_id == sender_id)).first() is None:
                return None
            return lockouts.login_succeeded(conn, sender_lockouts, sender_id, now)


    # -- failed logins per client address (participants' and operators') ----------------------------------

    def address_locked_until(self, address: str) -> datetime | None:
        """The end of the address's lockout (or a past one); a read that takes no write lock."""
        with self.snapshot() as conn:
            return conn.execute(select(address_lockouts.c.locked_until)
                                .where(address_lockouts.c.address == address)).scalar()

    def address_failed(self, address: str, now: datetime, attempts: int, minutes: float) -> datetime | None:
        with self.engine.begin() as conn:
            lockouts.ensure_row(conn, address_lockouts, address)
            return lockouts.login_failed(conn, address_lockouts, address, now, attempts, minutes)


def _remember_statement(dialect: str):
    """The replay upsert, built once: a statement built per call costs more than the database's work."""
    stamp = seen_messages.c.seen_at.type
    stmt = _UPSERT_INSERT[dialect](seen_messages).values(
        sender_id=bindparam("sender_id"), message_id=bindparam("message_id"),
        seen_at=bindparam("seen_at", type_=stamp), session_id=bindparam("session_id"))
    # One statement decides under the row's lock, so concurrent duplicates get one True;
    # RETURNING yields a row only when the pair was inserted or its stale entry refreshed.
    return stmt.on_conflict_do_update(
        index_elements=[seen_messages.c.sender_id, seen_messages.c.message_id],
        set_={"seen_at": stmt.excluded.seen_at, "session_id": stmt.excluded.session_id},
        where=seen_messages.c.seen_at < bindparam("stale_before", type_=stamp),
    ).returning(seen_messages.c.seen_at)


@contextmanager
def exclusive(engine: sqlalchemy.Engine) -> Iterator[Connection]:
    """A write transaction that runs alone among all processes sharing the database.

    On SQLite only an engine made by `Store` takes the write lock up front (BEGIN IMMEDIATE).
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(_EXCLUSIVE_LOCK_KEY)))
        yield conn


def _switch_to_wal(cursor) -> None:
    """PRAGMA journal_mode = WAL, waiting for other processes opening a new database at the same moment: that
    switch answers "database is locked" at once, without the busy timeout (seen with four processes at start)."""
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _tune_sqlite(engine: sqlalchemy.Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        # Take BEGIN away from sqlite3 so on_begin can choose the lock mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        # Anything not marked as a snapshot may write, so it takes the lock up front: a
        # deferred transaction upgrading to write while another writer is active fails
        # with "database is locked" instead of waiting.
        if conn.get_execution_options().get(_SNAPSHOT_OPTION):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
