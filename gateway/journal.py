"""Hash-chained journal of every hop of every message."""

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, select

from gateway.context import MessageClaim
from gateway.store import Store
from gateway.store.schema import as_utc, journal, journal_head

GENESIS_HASH = "0" * 64
# What a sender's password becomes in the journal (the bytes, their digest and the chain are of that).
REDACTED = b"[redacted]"
# The contract's `sender/password` element (unqualified, any prefix), its content up to its end tag: text,
# CDATA, comments or entity references alike, so no spelling of the value survives.
_PASSWORD = re.compile(rb"(<(?:[A-Za-z_][\w.-]*:)?password(?:\s[^>]*)?(?<!/)>)(.*?)"
                       rb"(</(?:[A-Za-z_][\w.-]*:)?password\s*>)", re.DOTALL)


def redact_credentials(body: bytes) -> bytes:
    """The hop's bytes with every password element's value replaced by REDACTED."""
    if b"password" not in body:
        return body
    return _PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), body)

# A check's verdicts (JournalEntry.verdicts), as `query(verdict=…)` takes them.
VERDICTS = ("pass", "fail", "note", "skip")

# Records per fetch while verifying: bounds memory even with large stored bodies.
_VERIFY_CHUNK = 200


@dataclass
class JournalEntry:
    """One hop of one message, as seen by the gateway."""

    hop: str  # "request-in", "request-out", "response-in", "response-out"
    direction: str  # "in" | "out"
    from_party: str | None
    to_party: str | None
    service_id: str | None
    message_id: str | None
    correlation_id: str | None
    session_id: str | None
    started_at: datetime
    finished_at: datetime
    verdicts: list[dict]  # {"check", "verdict": pass|fail|note|skip, "detail", "ms"}
    fault_code: str | None
    http_status: int | None
    body: bytes | None  # the bytes on the wire for this hop
    deviations: list[str] = field(default_factory=list)  # tolerated client variations


@dataclass
class JournalVerification:
    """Outcome of walking the chain; broken_seq is the first record that fails."""

    ok: bool
    checked: int  # records found intact before the break
    broken_seq: int | None
    reason: str | None


class Journal:
    """Append-only record of hops; any edit or deletion breaks the chain."""

    # Hops held through an outage, at most: beyond, a hop that cannot be recorded is answered SHEP-299 unheld.
    MAX_HELD = 1000

    def __init__(self, store: Store, store_bytes: bool = True):
        self.store = store
        self.store_bytes = store_bytes
        self._held: list[JournalEntry] = []
        self._held_lock = threading.Lock()

    def append(self, entry: JournalEntry) -> int:
        """Record one hop and return its seq."""
        return self.append_many([entry])[0]

    def append_many(self, entries: list[JournalEntry], claim: MessageClaim | None = None) -> list[int]:
        """Record hops in one transaction and return their seqs; with `claim`, the message's (sender, messageId)
        too, or nothing and a MESSAGE_REPLAYED fault when another request with them was accepted first. Hops
        held through an outage go first."""
        with self._held_lock:
            held, self._held = self._held, []
        if not entries and not held:
            return []
        try:
            with self.store.exclusive() as conn:
                if claim is not None:
                    self.store.claim_in(conn, claim)
                seqs = self.append_in(conn, held + entries)
        except BaseException:
            with self._held_lock:
                self._held[:0] = held
            raise
        return seqs[len(held):]

    def hold(self, entries: list[JournalEntry]) -> bool:
        """Keep hops the store could not take (an outage) until an append succeeds; False when too many are held
        already. Held hops live in this process only: docs/architecture.md says what that means."""
        with self._held_lock:
            if len(self._held) + len(entries) > self.MAX_HELD:
                return False
            self._held.extend(entries)
            return True

    @property
    def held(self) -> int:
        return len(self._held)

    def flush_held(self) -> None:
        """Write the held hops now (on a timer and before a resend is judged)."""
        if self._held:
            self.append_many([])

    def append_in(self, conn, entries: list[JournalEntry]) -> list[int]:
        """Record hops inside the caller's `store.exclusive()` transaction (with the state they describe)."""
        seq, prev_hash = _head(conn)
        rows = []
        for entry in entries:
            seq += 1
            row = self._row(entry, seq, prev_hash)
            prev_hash = row["hash"]
            rows.append(row)
        if rows:
            conn.execute(_INSERT_RECORDS, rows)
            head = {"seq": seq, "hash": prev_hash}
            if conn.execute(_MOVE_HEAD, head).rowcount == 0:
                conn.execute(journal_head.insert().values(id=1, **head))
        return [row["seq"] for row in rows]

    def size(self) -> int:
        """The number of records, read from the chain's head (one row)."""
        with self.store.snapshot() as conn:
            return _head(conn)[0]

    def query(
        self,
        *,
        message_id: str | None = None,
        session_id: str | None = None,
        service_id: str | None = None,
        sender: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        verdict: str | None = None,
        limit: int = 100,
        include_body: bool = False,
        newest_first: bool = False,
    ) -> list[dict]:
        """JSON-ready records matching all given filters, oldest first (or newest first).

        `sender` matches from_party; `since` (inclusive) and `until` (exclusive)
        bound started_at; `verdict` (one of VERDICTS) keeps the records with a check of that verdict.
        """
        columns = [c for c in journal.c if include_body or c.name != "body"]
        order = journal.c.seq.desc() if newest_first else journal.c.seq
        stmt = select(*columns).order_by(order).limit(limit)
        if verdict is not None:
            if verdict not in VERDICTS:
                raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
            # The verdicts are stored as canonical JSON (no spaces): the pair's spelling is exact.
            stmt = stmt.where(journal.c.verdicts.contains(f'"verdict":"{verdict}"', autoescape=True))
        for column, value in (
            (journal.c.message_id, message_id),
            (journal.c.session_id, session_id),
            (journal.c.service_id, service_id),
            (journal.c.from_party, sender),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if since is not None:
            stmt = stmt.where(journal.c.started_at >= since)
        if until is not None:
            stmt = stmt.where(journal.c.started_at < until)
        with self.store.snapshot() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_as_json(row, include_body) for row in rows]

    def count(self, *, hop: str, since: datetime) -> int:
        """The records of `hop` that started at or after `since` (ix_journal_started_at bounds the walk)."""
        with self.store.snapshot() as conn:
            return conn.execute(select(func.count()).select_from(journal).where(
                journal.c.started_at >= since, journal.c.hop == hop)).scalar_one()

    def recorded_answer(self, session_id: str) -> tuple[int, bytes] | None:
        """(HTTP status, bytes) of the provider's answer recorded in a session (its response-in hop, checks
        passed); None when that hop's bytes are not kept (gateway.journal_store_bytes = false)."""
        with self.store.snapshot() as conn:
            row = conn.execute(select(journal.c.body, journal.c.http_status).where(
                journal.c.session_id == session_id, journal.c.hop == "response-in", journal.c.fault_code.is_(None))
                .order_by(journal.c.seq.desc()).limit(1)).first()
        if row is None or row.body is None:
            return None
        return row.http_status, row.body

    def verify(self) -> JournalVerification:
        """Walk the chain from the first record and report the first break, if any."""
        stmt = (
            select(journal)
            .order_by(journal.c.seq)
            .execution_options(yield_per=_VERIFY_CHUNK)
        )
        with self.store.snapshot() as conn:
            head_seq, head_hash = _head(conn)
            checked, prev_seq, prev_hash = 0, 0, GENESIS_HASH
            # Closing the result matters on an early return: it holds a server-side cursor.
            with conn.execute(stmt) as records:
                for row in records.mappings():
                    problem = _record_problem(row, prev_seq, prev_hash, head_seq)
                    if problem:
                        return _broken(checked, *problem)
                    prev_seq, prev_hash = row["seq"], row["hash"]
                    checked += 1
        if prev_seq < head_seq:
            return _broken(
                checked,
                prev_seq + 1,
                f"the last record(s) after {prev_seq} were deleted (head says {head_seq})",
            )
        if prev_hash != head_hash:
            return _broken(
                checked, prev_seq, f"record {prev_seq} does not match the head"
            )
        return JournalVerification(
            ok=True, checked=checked, broken_seq=None, reason=None
        )

    def _row(self, entry: JournalEntry, seq: int, prev_hash: str) -> dict:
        body = None if entry.body is None else redact_credentials(entry.body)
        fields = {
            "seq": seq,
            "hop": entry.hop,
            "direction": entry.direction,
            "from_party": entry.from_party,
            "to_party": entry.to_party,
            "service_id": entry.service_id,
            "message_id": entry.message_id,
            "correlation_id": entry.correlation_id,
            "session_id": entry.session_id,
            "started_at": as_utc(entry.started_at),
            "finished_at": as_utc(entry.finished_at),
            "verdicts": entry.verdicts,
            "deviations": entry.deviations,
            "fault_code": entry.fault_code,
            "http_status": entry.http_status,
            "body_sha256": None if body is None else _sha256(body),
            "body_size": None if body is None else len(body),
            "prev_hash": prev_hash,
        }
        return {
            **fields,
            "hash": _chain_hash(fields),
            "verdicts": _canonical_json(entry.verdicts),
            "deviations": _canonical_json(entry.deviations),
            "body": body if self.store_bytes else None,
        }


# Built once: on the hot path, building a statement per call costs more than executing it.
_READ_HEAD = select(journal_head.c.seq, journal_head.c.hash)
_MOVE_HEAD = journal_head.update().values(seq=bindparam("seq"), hash=bindparam("hash"))
_INSERT_RECORDS = journal.insert()


def _head(conn: Connection) -> tuple[int, str]:
    head = conn.execute(_READ_HEAD).first()
    return (head.seq, head.hash) if head else (0, GENESIS_HASH)


def _record_problem(row, prev_seq: int, prev_hash: str, head_seq: int):
    """(seq, reason) of the first flaw of a record read after `prev_seq`, or None."""
    seq = row["seq"]
    if seq != prev_seq + 1:
        return (
            prev_seq + 1,
            f"record {prev_seq + 1} is missing (seq gap after {prev_seq})",
        )
    if seq > head_seq:
        return seq, f"record {seq} lies beyond the head (head says {head_seq})"
    if _chain_hash(_hashed_fields(row)) != row["hash"]:
        return seq, f"record {seq} was modified (hash mismatch)"
    if row["prev_hash"] != prev_hash:
        return seq, f"record {seq} does not link to record {prev_seq}"
    if row["body"] is not None and _sha256(row["body"]) != row["body_sha256"]:
        return seq, f"body of record {seq} does not match its SHA-256"
    return None


def _hashed_fields(row) -> dict:
    """The fields a stored record's hash covers, as they were at append time."""
    fields = {c.name: row[c.name] for c in journal.c if c.name not in ("hash", "body")}
    fields["verdicts"] = _parsed(row["verdicts"])
    fields["deviations"] = _parsed(row["deviations"])
    return fields


def _parsed(stored: str):
    # Text that no longer parses stays a string: it cannot hash like the original list,
    # and queries over a tampered journal still answer.
    try:
        return json.loads(stored)
    except ValueError:
        return stored


def _chain_hash(fields: dict) -> str:
    # The body enters through body_sha256, so dropping stored bytes keeps the chain intact.
    return _sha256((fields["prev_hash"] + _canonical_json(fields)).encode())


def _canonical_json(value) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_iso
    )


def _iso(value):
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _as_json(row, include_body: bool) -> dict:
    record = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in row.items()
        if name != "body"
    }
    record["verdicts"] = _parsed(row["verdicts"])
    record["deviations"] = _parsed(row["deviations"])
    if include_body:
        body = row["body"]
        record["body_base64"] = (
            None if body is None else base64.b64encode(body).decode("ascii")
        )
    return record


def _broken(checked: int, seq: int, reason: str) -> JournalVerification:
    return JournalVerification(ok=False, checked=checked, broken_seq=seq, reason=reason)
