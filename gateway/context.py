"""The message context: what travels the pipeline of one hop, and what checks may consult."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Awaitable, Callable, Protocol

from lxml import etree

from gateway.config import GatewaySettings
from gateway.passwords import PasswordVerifier
from gateway.registry import Participant, Service, ServiceRegistry
from gateway.shapes import SYNC_SHAPES

if TYPE_CHECKING:
    from gateway.checks.payload import PayloadSchemas
    from gateway.shapes import Shape
    from gateway.security.trust import GatewaySecurity


class Exchanges(Protocol):
    def exchange(self, correlation_id: str): ...


@dataclass(frozen=True)
class MessageClaim:
    """A (sender, messageId) pair to record as seen, in the transaction that accepts the message: a request that
    is never accepted (the store failed, or a later check refused it) leaves nothing behind."""
    sender_id: str
    message_id: str
    session_id: str
    seen_at: datetime
    stale_before: datetime  # a pair last seen before this is a new message
    # A resend answered with its first copy's recorded outcome takes the pair over from that copy's session.
    replaces: str | None = None


@dataclass(frozen=True)
class FirstSeen:
    """The accepted message a resend repeats: its session, and whether its sender got an answer."""
    session_id: str | None  # None for a pair recorded before sessions were
    seen_at: datetime
    answered: bool  # False: the gateway's last answer in that session was SHEP-299, or it gave none
    provider_answered: bool  # the provider's answer (response-in) is in the journal


class ReplayGuard(Protocol):
    def first_seen(self, sender_id: str, message_id: str, now: datetime, window) -> FirstSeen | None: ...


class Lockouts(Protocol):
    """Participants' failed password checks, in the store so that every worker sees them."""

    def login_state(self, sender_id: str) -> tuple[int, datetime | None] | None: ...

    def login_failed(self, sender_id: str, now: datetime, attempts: int, minutes: float) -> datetime | None: ...

    def login_succeeded(self, sender_id: str, now: datetime) -> datetime | None: ...

    def address_locked_until(self, address: str) -> datetime | None: ...

    def address_failed(self, address: str, now: datetime, attempts: int, minutes: float) -> datetime | None: ...


@dataclass
class Verdict:
    check: str
    verdict: str  # pass | fail | note
    detail: str | None
    ms: float

    def as_dict(self) -> dict:
        return {"check": self.check, "verdict": self.verdict, "detail": self.detail, "ms": round(self.ms, 3)}


@dataclass(frozen=True)
class Deviation:
    """A client variation the gateway tolerates: what it was, and the fault a strict service refuses it with."""
    what: str
    fault: str


@dataclass
class Environment:
    """What checks may consult besides the message: settings, registry, clock, and narrow I/O."""
    settings: GatewaySettings
    registry: ServiceRegistry
    passwords: PasswordVerifier
    replay_guard: ReplayGuard
    lockouts: Lockouts
    payload_schemas: "PayloadSchemas"
    clock: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]]  # on the reactor: a delayed answer holds no thread
    security: "GatewaySecurity | None" = None
    exchanges: "Exchanges | None" = None  # the AsyncChannel's record of open exchanges


@dataclass
class MessageInfo:
    """The ids, sender and date of a schema-valid request, read through its Shape."""
    message_id: str | None
    correlation_id: str | None
    service_id: str | None
    message_date: str | None
    route_id: str | None
    sender_id: str | None
    password: str | None
    message_type: str | None = None


@dataclass
class MessageContext:
    env: Environment
    raw: bytes
    method: str = "POST"
    content_type: str | None = None
    body_too_large: bool = False
    received_at: datetime | None = None
    session_id: str = field(default_factory=lambda: "{%s}" % uuid.uuid4())
    tree: etree._ElementTree | None = None
    operation: etree._Element | None = None  # the single child of soap:Body
    # The operations this address serves (the SyncChannel unless the channel says otherwise).
    shapes: "dict[str, Shape]" = field(default_factory=lambda: SYNC_SHAPES)
    shape: "Shape | None" = None  # the operation found (or expected, on the answer hop)
    info: MessageInfo | None = None
    sender: Participant | None = None
    # identify_sender: the (password, hash) pair still to verify (not verified before); the channel verifies it
    # away from the work pool and leaves the answer in password_valid for authenticate_sender.
    password_to_verify: tuple[str, str] | None = None
    password_valid: bool | None = None
    service: Service | None = None
    deviations: list[Deviation] = field(default_factory=list)
    # A tolerated bare date in the request's own date (Shape.bare_date): the day it names.
    message_day: date | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    # Set by the response hop: the provider's HTTP status and whether it answered with a fault.
    http_status: int | None = None
    is_fault: bool = False
    # Signatures: the endpoint demands WS-Security; the certificates proven to have signed.
    wss_endpoint: bool = False
    client_address: str | None = None  # the TCP peer (None when checks run on their own)
    signer_cert: object | None = None
    payload_signer_cert: object | None = None
    # AsyncChannel sendMessage: where the message goes and under which exchange, until when.
    recipient_id: str | None = None
    correlation_id: str | None = None
    expires_at: datetime | None = None
    # reject_replay: the pair to record when the message is accepted, or the session a resend repeats.
    replay_claim: MessageClaim | None = None
    resend_of: FirstSeen | None = None
    _detail: str | None = None

    def note(self, detail: str) -> None:
        """Attach a detail to the running check's verdict."""
        self._detail = detail if self._detail is None else f"{self._detail}; {detail}"

    def deviate(self, what: str, fault: str = "STRICT_DEVIATION") -> None:
        """Record a tolerated client variation; a strict service refuses it later with `fault`."""
        self.deviations.append(Deviation(what, fault))
        self.note(what)

