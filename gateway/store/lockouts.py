"""Failed logins and lockouts, one rule for every party that checks passwords: the gateway's participants
(`sender_lockouts`), the portal's citizens (`portal_citizens`) and the АЖО's employees (`ajo_logins`).

A table holds a one-column primary key, `failed_logins` and `locked_until`; the functions run inside the
caller's write transaction, on a row that exists (`ensure_row`).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite


def in_force(locked_until: datetime | None, now: datetime) -> datetime | None:
    """The end of the lockout, if it is not over at `now`."""
    return locked_until if locked_until is not None and locked_until > now else None


def ensure_row(conn: Connection, table: sa.Table, key: str) -> None:
    """For tables whose rows are made on the first failure: the row, if missing, with no failure yet."""
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    conn.execute(insert(table).values({_key(table).name: key, "failed_logins": 0}).on_conflict_do_nothing())


def login_failed(conn: Connection, table: sa.Table, key: str, now: datetime, attempts: int,
                 minutes: float) -> datetime | None:
    """A wrong password: the `attempts`-th in a row locks for `minutes` and the count starts afresh. While
    locked nothing is counted. Returns the end of the lockout in force, if any."""
    row = _locked_row(conn, table, key)
    if in_force(row.locked_until, now):
        return row.locked_until
    failures = row.failed_logins + 1
    until = now + timedelta(minutes=minutes) if failures >= attempts else None
    conn.execute(sa.update(table).where(_key(table) == key)
                 .values(failed_logins=0 if until else failures, locked_until=until))
    return until


def login_succeeded(conn: Connection, table: sa.Table, key: str, now: datetime) -> datetime | None:
    """The right password: the failures are forgotten, unless a lockout is in force (returned, and kept)."""
    row = _locked_row(conn, table, key)
    if in_force(row.locked_until, now):
        return row.locked_until
    if row.failed_logins or row.locked_until is not None:
        conn.execute(sa.update(table).where(_key(table) == key).values(failed_logins=0, locked_until=None))
    return None


def _key(table: sa.Table) -> sa.Column:
    (column,) = table.primary_key.columns
    return column


def _locked_row(conn: Connection, table: sa.Table, key: str):
    # FOR UPDATE on PostgreSQL; SQLite's write transactions are exclusive already: concurrent failures all count.
    return conn.execute(sa.select(table.c.failed_logins, table.c.locked_until).where(_key(table) == key)
                        .with_for_update()).one()


class AddressLockouts:
    """Wrong passwords per client address (the store's `address_lockouts`), with the gateway's limits."""

    def __init__(self, store, settings, clock: Callable[[], datetime]):
        self.store, self.settings, self.clock = store, settings, clock

    def locked_until(self, address: str) -> datetime | None:
        """The end of the address's lockout, if one is in force."""
        return in_force(self.store.address_locked_until(address), self.clock())

    def failed(self, address: str) -> datetime | None:
        return self.store.address_failed(address, self.clock(), self.settings.address_lockout_attempts,
                                         self.settings.address_lockout_minutes)
