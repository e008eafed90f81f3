"""The gateway's registry of participants and services (реестр ШЭП)."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

SYNC = "sync"
ASYNC = "async"
CHANNELS = frozenset({SYNC, ASYNC})
# In allowed_senders: any authenticated participant.
ANY_SENDER = "*"


@dataclass(frozen=True)
class Participant:
    """A participant of the gateway (участник ШЭП), identified by its senderId."""

    id: str
    # None: the participant cannot send (receive-only).
    password_hash: str | None
    # Sync SOAP endpoint of a provider. May be relative ("/demo/echo"); the
    # caller resolves it against the server's own base URL.
    endpoint: str | None
    description: str = ""
    # БИН of the organisation: a transport signature from this participant must carry it (OU=BIN…).
    bin: str | None = None
    # A pinned certificate (PEM): when set, only this certificate may sign for the participant.
    certificate: Path | None = None
    # Its IAsyncChannelClient endpoint: async messages are pushed there; without one, it pulls them.
    async_endpoint: str | None = None
    # Sent with every push to async_endpoint (PUSH_SECRET_HEADER): the receiver's proof, when pushes are unsigned.
    push_secret: str | None = None


@dataclass(frozen=True)
class Service:
    """A service registered on the gateway (сервис в реестре ШЭП)."""

    id: str
    provider: str
    channel: str
    # Absolute; the config loader resolves it against the config file's directory.
    payload_schema: Path | None
    timeout_seconds: float
    allowed_senders: frozenset[str]
    # Allowed routeId values; empty means routeId must be absent or empty.
    routes: frozenset[str]
    # Refuse tolerated client deviations instead of noting them.
    strict: bool
    description: str = ""
    # Both hops (consumer → gateway → provider and back) carry a verified WS-Security signature.
    require_transport_signature: bool = False
    # The request's business document carries an enveloped EDS (ЭЦП) of a trusted SIGN certificate.
    require_payload_signature: bool = False

    def allows(self, sender_id: str) -> bool:
        return ANY_SENDER in self.allowed_senders or sender_id in self.allowed_senders


class ServiceRegistry:
    def __init__(self, participants: Iterable[Participant], services: Iterable[Service]):
        self._participants = MappingProxyType(_by_id(participants, "participant"))
        self._services = MappingProxyType(_by_id(services, "service"))

    @property
    def participants(self) -> Mapping[str, Participant]:
        return self._participants

    @property
    def services(self) -> Mapping[str, Service]:
        return self._services

    def participant(self, sender_id: str) -> Participant | None:
        return self._participants.get(sender_id)

    def service(self, service_id: str) -> Service | None:
        return self._services.get(service_id)


def _by_id(items, kind: str) -> dict:
    result = {}
    for item in items:
        # A silent overwrite would make one of the two definitions unreachable.
        if item.id in result:
            raise ValueError(f"duplicate {kind} id {item.id!r}")
        result[item.id] = item
    return result
