"""The durable queue of the AsyncChannel: accepted messages, their delivery state, every transition journalled.

Each write runs in one `store.exclusive()` transaction together with its journal records, so what
the journal says and what the queue holds never disagree, whatever process or crash intervenes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select

from gateway.context import MessageClaim
from gateway.journal import Journal, JournalEntry
from gateway.store import Store
from gateway.store.schema import async_messages as table

ON_DELIVERY, DELIVERED, NOT_DELIVERED, DELIVERY_STOPPED = ("ON_DELIVERY", "DELIVERED", "NOT_DELIVERED",
                                                           "DELIVERY_STOPPED")
STATES = (ON_DELIVERY, DELIVERED, NOT_DELIVERED, DELIVERY_STOPPED)
# MessageStatusInfo codes are not published: the project's own (docs/async.md).
STATUS = {
    ON_DELIVERY: ("ASYNC-100", "Сообщение принято шлюзом и ожидает доставки"),
    DELIVERED: ("ASYNC-200", "Сообщение доставлено получателю"),
    NOT_DELIVERED: ("ASYNC-400", "Получатель отказался принять сообщение"),
    DELIVERY_STOPPED: ("ASYNC-500", "Доставка сообщения прекращена"),
}


@dataclass(frozen=True)
class RetryPolicy:
    """Push delivery: exponential backoff from `base` to `cap`, at most `max_attempts` or `max_age`."""
    max_attempts: int = 10
    max_age: timedelta = timedelta(days=1)
    base: float = 1.0
    cap: float = 300.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.cap, self.base * 2 ** max(0, attempts - 1)))


@dataclass
class QueuedMessage:
    message_id: str
    correlation_id: str
    service_id: str
    message_type: str
    sender_id: str
    recipient_id: str
    delivery: str
    state: str
    status_code: str
    status_message: str
    session_id: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    due_at: datetime
    attempts: int
    last_error: str | None
    message: bytes

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "message"}
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        return out


_PENDING = (select(table.c.service_id, func.count().label("count"), func.min(table.c.created_at).label("oldest"))
            .where(table.c.delivery.in_(("push", "pull")), table.c.state == ON_DELIVERY)
            .group_by(table.c.service_id))


def _message(row) -> QueuedMessage:
    return QueuedMessage(**dict(row._mapping))


class NotYours(LookupError):
    """The message does not exist for this participant (never tells whether it exists at all)."""


class NotPending(ValueError):
    """The message is no longer awaiting delivery."""


class AsyncQueue:
    def __init__(self, store: Store, journal: Journal):
        self.store = store
        self.journal = journal

    # -- accepting ------------------------------------------------------------------------------

    def accept(self, message: QueuedMessage, entries: list[JournalEntry], claim: MessageClaim | None = None) -> None:
        """Durable before the sender is answered: the row, the hop records and the sender's messageId (`claim`,
        refused with MESSAGE_REPLAYED when another request with it was accepted first) in one transaction."""
        with self.store.exclusive() as conn:
            if claim is not None:
                self.store.claim_in(conn, claim)
            conn.execute(table.insert().values(**message.__dict__))
            self.journal.append_in(conn, entries + [_transition(message, None, ON_DELIVERY, message.created_at,
                                                                "accepted")])

    def exchange(self, correlation_id: str) -> QueuedMessage | None:
        """The REQUEST that opened the exchange with this correlationId."""
        with self.store.snapshot() as conn:
            row = conn.execute(select(table).where(and_(table.c.correlation_id == correlation_id,
                                                        table.c.message_type == "REQUEST"))).first()
        return _message(row) if row else None

    def pending(self) -> dict[str, tuple[int, datetime]]:
        """Messages awaiting delivery per service: (count, oldest created_at), for /metrics. `delivery IN`
        lets the database walk ix_async_due's ON_DELIVERY entries only: the work grows with what waits, not
        with the delivered history."""
        with self.store.snapshot() as conn:
            rows = conn.execute(_PENDING).all()
        return {row.service_id: (row.count, row.oldest) for row in rows}

    # -- pull -----------------------------------------------------------------------------------

    def pull(self, recipient_id: str, service_id: str, *, now: datetime, visibility: timedelta, amount: int,
             message_id: str | None = None, correlation_id: str | None = None,
             entries: list[JournalEntry] = ()) -> list[QueuedMessage]:
        """Hand out due messages and hide them for `visibility`: unacknowledged, they come back after it."""
        query = (select(table)
                 .where(table.c.recipient_id == recipient_id, table.c.service_id == service_id,
                        table.c.delivery == "pull", table.c.state == ON_DELIVERY, table.c.due_at <= now)
                 .order_by(table.c.created_at).limit(amount))
        if message_id:
            query = query.where(table.c.message_id == message_id)
        if correlation_id:
            query = query.where(table.c.correlation_id == correlation_id)
        with self.store.exclusive() as conn:
            # Expiry in the same write transaction: one lock per call, not two.
            self._expire_in(conn, now)
            messages = [_message(row) for row in conn.execute(query)]
            records = list(entries)
            for message in messages:
                message.attempts += 1
                conn.execute(table.update().where(table.c.message_id == message.message_id)
                             .values(due_at=now + visibility, attempts=message.attempts, updated_at=now))
                records.append(_transition(message, ON_DELIVERY, ON_DELIVERY, now,
                                           f"pulled by {recipient_id} (attempt {message.attempts}); "
                                           f"visible again at {(now + visibility).isoformat()} unless acknowledged"))
            self.journal.append_in(conn, records)
        return messages

    def acknowledge(self, message_id: str, recipient_id: str, *, accepted: bool, resend: bool, now: datetime,
                    error: str | None, entries: list[JournalEntry] = ()) -> QueuedMessage:
        """sendDeliveryNotification: ACCEPTED → DELIVERED; not accepted → RESEND (visible now) or NOT_DELIVERED."""
        with self.store.exclusive() as conn:
            row = conn.execute(select(table).where(table.c.message_id == message_id,
                                                   table.c.recipient_id == recipient_id)).first()
            if row is None:
                raise NotYours(message_id)
            message = _message(row)
            if message.state != ON_DELIVERY:
                raise NotPending(f"message {message_id} is {message.state}")
            if accepted:
                new, detail, due = DELIVERED, f"acknowledged by {recipient_id}", message.due_at
            elif resend:
                new, detail, due = ON_DELIVERY, f"refused by {recipient_id}, to be resent: {error or '-'}", now
            else:
                new, detail, due = NOT_DELIVERED, f"refused by {recipient_id}: {error or '-'}", message.due_at
            self._move(conn, message, new, now, detail, list(entries), due_at=due, last_error=error)
        return message

    # -- push -----------------------------------------------------------------------------------

    def claim_push(self, *, now: datetime, lease: timedelta, limit: int) -> list[QueuedMessage]:
        """Due push messages, leased so no other worker takes them; a crash lets the lease lapse (at-least-once)."""
        with self.store.exclusive() as conn:
            self._expire_in(conn, now)
            rows = conn.execute(select(table).where(table.c.delivery == "push", table.c.state == ON_DELIVERY,
                                                    table.c.due_at <= now)
                                .order_by(table.c.due_at).limit(limit)).all()
            messages = [_message(row) for row in rows]
            for message in messages:
                message.attempts += 1
                conn.execute(table.update().where(table.c.message_id == message.message_id)
                             .values(due_at=now + lease, attempts=message.attempts, updated_at=now))
        return messages

    def push_outcomes(self, outcomes: list[tuple[QueuedMessage, str | None, list[JournalEntry]]], *,
                      now: datetime, policy: RetryPolicy) -> list[QueuedMessage]:
        """After a round of attempts, each (message, error or None, hop records): DELIVERED, or a retry with
        backoff, or DELIVERY_STOPPED when out of attempts/age. One transaction and one journal append for
        the whole round."""
        with self.store.exclusive() as conn:
            records: list[JournalEntry] = []
            updated = [self._push_outcome_in(conn, message, error, now, policy, records, entries)
                       for message, error, entries in outcomes]
            self.journal.append_in(conn, records)
        return updated

    def _push_outcome_in(self, conn, message: QueuedMessage, error: str | None, now: datetime,
                         policy: RetryPolicy, records: list[JournalEntry],
                         entries: list[JournalEntry]) -> QueuedMessage:
        records.extend(entries)
        row = conn.execute(select(table).where(table.c.message_id == message.message_id)).first()
        current = _message(row)
        if current.state != ON_DELIVERY:  # stopped meanwhile (shep queue stop)
            return current
        attempt = f"attempt {current.attempts}"
        if error is None:
            change = (DELIVERED, f"pushed to {current.recipient_id} ({attempt})", {"last_error": None})
        elif current.attempts >= policy.max_attempts or now - current.created_at >= policy.max_age:
            change = (DELIVERY_STOPPED, f"giving up after {attempt}: {error}", {"last_error": error})
        else:
            due = now + policy.delay(current.attempts)
            change = (ON_DELIVERY, f"{attempt} failed: {error}; next at {due.isoformat()}",
                      {"due_at": due, "last_error": error})
        new, detail, changes = change
        records.append(self._apply(conn, current, new, now, detail, **changes))
        return current

    # -- lifecycle --------------------------------------------------------------------------------

    def expire(self, now: datetime) -> list[QueuedMessage]:
        """Messages past their expiry are not delivered any more."""
        with self.store.exclusive() as conn:
            return self._expire_in(conn, now)

    def _expire_in(self, conn, now: datetime) -> list[QueuedMessage]:
        query = select(table).where(table.c.state == ON_DELIVERY, table.c.expires_at.is_not(None),
                                    table.c.expires_at <= now)
        messages = [_message(row) for row in conn.execute(query)]
        for message in messages:
            self._move(conn, message, DELIVERY_STOPPED, now, f"expired at {message.expires_at.isoformat()}",
                       [], last_error="expired")
        return messages

    def status(self, message_id: str, participant_id: str) -> QueuedMessage:
        """For the sender or the recipient of the message only."""
        with self.store.snapshot() as conn:
            row = conn.execute(select(table).where(
                table.c.message_id == message_id,
                or_(table.c.sender_id == participant_id, table.c.recipient_id == participant_id))).first()
        if row is None:
            raise NotYours(message_id)
        return _message(row)

    def list(self, *, state: str | None = None, service_id: str | None = None, participant: str | None = None,
             limit: int = 100) -> list[QueuedMessage]:
        query = select(table).order_by(table.c.created_at).limit(limit)
        if state:
            query = query.where(table.c.state == state)
        if service_id:
            query = query.where(table.c.service_id == service_id)
        if participant:
            query = query.where(or_(table.c.sender_id == participant, table.c.recipient_id == participant))
        with self.store.snapshot() as conn:
            return [_message(row) for row in conn.execute(query)]

    def stop(self, message_id: str, now: datetime, reason: str = "stopped by an operator") -> QueuedMessage:
        with self.store.exclusive() as conn:
            message = self._get(conn, message_id)
            if message.state != ON_DELIVERY:
                raise NotPending(f"message {message_id} is {message.state}")
            self._move(conn, message, DELIVERY_STOPPED, now, reason, [], last_error=reason)
        return message

    def retry(self, message_id: str, now: datetime) -> QueuedMessage:
        """Back on delivery now, with a fresh attempt count (any state but DELIVERED)."""
        with self.store.exclusive() as conn:
            message = self._get(conn, message_id)
            if message.state == DELIVERED:
                raise NotPending(f"message {message_id} is already DELIVERED")
            self._move(conn, message, ON_DELIVERY, now, "retry requested by an operator", [], due_at=now,
                       attempts=0, last_error=None, expires_at=None)
        return message

    def _get(self, conn, message_id: str) -> QueuedMessage:
        row = conn.execute(select(table).where(table.c.message_id == message_id)).first()
        if row is None:
            raise NotYours(message_id)
        return _message(row)

    def _move(self, conn, message: QueuedMessage, new: str, now: datetime, detail: str,
              entries: list[JournalEntry], **changes) -> None:
        self.journal.append_in(conn, entries + [self._apply(conn, message, new, now, detail, **changes)])

    @staticmethod
    def _apply(conn, message: QueuedMessage, new: str, now: datetime, detail: str, **changes) -> JournalEntry:
        """Change the row and `message`; returns the transition's journal record (the caller appends it)."""
        code, text = STATUS[new]
        values = dict(state=new, status_code=code, status_message=text, updated_at=now, **changes)
        conn.execute(table.update().where(table.c.message_id == message.message_id).values(**values))
        old = message.state
        for key, value in values.items():
            setattr(message, key, value)
        return _transition(message, old, new, now, detail)


def _transition(message: QueuedMessage, old: str | None, new: str, now: datetime, detail: str) -> JournalEntry:
    """A delivery state change, in the journal next to the hops."""
    return JournalEntry(
        hop="state", direction="internal", from_party=message.sender_id, to_party=message.recipient_id,
        service_id=message.service_id, message_id=message.message_id, correlation_id=message.correlation_id,
        session_id=message.session_id, started_at=now, finished_at=now,
        verdicts=[{"check": "delivery", "verdict": "note", "detail": f"{old or '-'} → {new}: {detail}", "ms": 0}],
        fault_code=None, http_status=None, body=None)
