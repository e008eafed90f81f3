"""The test bench: a gateway of its own, in this process on a loopback port, that routes one service to the
system under test. Requests go through it exactly as through `shep serve` (the same pipeline, the same
forward, signed with the gateway's certificate from the emulator's PKI, which the system under test trusts),
and the gateway's own answer checks (`pipeline.RESPONSE_CHECKS`) judge what comes back: the bench adds no
second opinion of the contract.

Its store and journal live in a temporary folder; the PKI is the state dir's, so a provider that accepts
only the gateway's signature (the clinic's АЖО, the ЖТ ММБ simulator) accepts the bench's forwards.
"""
from __future__ import annotations

import base64
import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from twisted.internet import task, threads

from gateway import client
from gateway import contract as c
from gateway.asyncchannel import wire
from gateway.app import GatewayApp
from gateway.config import Settings
from gateway.context import MessageContext
from gateway.faults import Fault
from gateway.passwords import hash_password
from gateway.pipeline import RESPONSE_CHECKS, run_checks
from gateway.registry import Participant, Service, ServiceRegistry
from gateway.security.wss import sign_envelope
from gateway.shapes import PUSH_SEND, SYNC_SEND

SENDER = "shep-conformance"
# Is it a contract answer at all (HTTP status, SOAP envelope, the SyncChannel schemas), whatever its payload.
CONTRACT_CHECKS = [check for check in RESPONSE_CHECKS
                   if check.__name__ not in ("verify_provider_signature", "validate_response_payload")]
SENDER_BIN = "990340000014"  # synthetic: the bench's own organisation certificate carries it


class BenchError(Exception):
    """The bench cannot be set up for this target: a one-line reason."""


@dataclass
class Hop:
    hop: str
    body: bytes | None
    http_status: int | None
    fault_code: str | None
    verdicts: list[dict]


@dataclass
class Exchange:
    """One request sent through the bench: the gateway's answer to the bench's sender (for a sync service the
    provider's answer passed on, for an async one the acceptance) and the journal's hops of its session."""
    sent: bytes
    status: int | None
    raw: bytes | None
    fault: dict | None  # the gateway's answer was a fault: its ErrorInfo
    error: str | None  # the bench could not even read an answer
    session_id: str | None
    hops: dict[str, Hop] = field(default_factory=dict)

    @property
    def forwarded(self) -> bytes | None:
        hop = self.hops.get("request-out")
        return hop.body if hop else None

    @property
    def answer(self) -> Hop | None:
        return self.hops.get("response-in")


@dataclass
class Judged:
    """The gateway's answer checks run over bytes the bench got straight from the provider."""
    http_status: int
    body: bytes
    verdicts: list[dict]
    fault: Fault | None
    is_fault: bool


def bench_settings(settings: Settings, service_id: str, url: str) -> tuple[Settings, str]:
    """`settings` with only `service_id`, its provider at `url` (its SendMessage endpoint, or for an async
    service its IAsyncChannelClient endpoint, pushed to) and the bench's sender allowed to call it; the
    sender's password."""
    service = settings.registry.service(service_id)
    if service is None:
        known = ", ".join(sorted(settings.registry.services)) or "none"
        raise BenchError(f"no service {service_id!r} in {settings.source} (services: {known})")
    provider = settings.registry.participant(service.provider)
    if service.channel == "sync":
        provider = dataclasses.replace(provider, endpoint=url, async_endpoint=None)
    else:
        provider = dataclasses.replace(provider, endpoint=None, async_endpoint=url)
    password = secrets.token_urlsafe(16)
    sender = Participant(SENDER, password_hash=hash_password(password, iterations=1000), endpoint=None,
                         description="the conformance bench's own sender", bin=SENDER_BIN)
    service = dataclasses.replace(service, allowed_senders=frozenset({SENDER}), routes=frozenset())
    bench = dataclasses.replace(settings, registry=ServiceRegistry([provider, sender], [service]), endpoints={},
                                operators={},
                                gateway=dataclasses.replace(settings.gateway, checkpoint_tsa_url=None))
    return bench, password


class Bench:
    def __init__(self, settings: Settings, service_id: str, url: str, *, pki_dir: Path, work_dir: Path, reactor):
        self.url = url
        self.settings, self._password = bench_settings(settings, service_id, url)
        self.service: Service = self.settings.registry.service(service_id)
        self.app = GatewayApp(self.settings, reactor=reactor, state_dir=work_dir, pki_state_dir=pki_dir)
        self.work_dir = work_dir
        self._credentials = None

    def start(self) -> None:
        self.app.listen(0, "127.0.0.1")
        self._credentials = self.app.pki.credentials(self.work_dir / "sender", "organization", bin=SENDER_BIN)

    async def stop(self) -> None:
        await self.app.stop()

    @property
    def gateway_url(self) -> str:
        return f"{self.app.base_url}/bip-sync/"

    @property
    def channel(self) -> str:
        return self.service.channel

    @property
    def shape(self):
        """What the provider answers: SendMessage's answer, or the push's (IAsyncChannelClient sendMessage)."""
        return SYNC_SEND if self.channel == "sync" else PUSH_SEND

    @property
    def timeout(self) -> float:
        gw = self.settings.gateway
        return self.service.timeout_seconds if self.channel == "sync" else gw.async_push_timeout_seconds

    def sign_payload(self, payload: etree._Element, kind: str, **subject) -> etree._Element:
        """The payload's EDS, as its author (a citizen: kind "person") signs it, by the emulator's PKI."""
        folder = self.work_dir / f"signer-{kind}-{subject.get('iin') or subject.get('bin') or ''}"
        return client.sign_payload(payload, *self.app.pki.credentials(folder, kind, **subject))

    async def send(self, payload, *, style: str = "inline", xsi_type: str | None = None,
                   message_id: str | None = None) -> Exchange:
        """A signed request from the bench's sender through the bench's gateway to the system under test:
        SendMessage (answered by the provider), or sendMessage (then pushed to the receiver; waited for)."""
        if self.channel == "sync":
            body = client.build_send_message(service_id=self.service.id, sender_id=SENDER, password=self._password,
                                             payload=payload, style=style, xsi_type=xsi_type, message_id=message_id)
        else:
            body = wire.send_message(service_id=self.service.id, sender_id=SENDER, password=self._password,
                                     payload=payload)
        body = client.sign_request(body, *self._credentials)
        address = self.gateway_url if self.channel == "sync" else f"{self.app.base_url}/bip-async/"
        status, raw = await threads.deferToThread(client.post, address, body, self.timeout + 30)
        try:
            operation = wire.operation_of(raw)
        except (ValueError, etree.XMLSyntaxError) as exc:
            return Exchange(body, status, raw, None, f"the bench's gateway answered something unreadable: {exc}",
                            None)
        fault = client.read_reply(status, raw).fault if operation.tag == c.FAULT else None
        session = operation.findtext(".//sessionId") if fault is None else (fault or {}).get("sessionId")
        if not session:
            return Exchange(body, status, raw, fault, None if fault else "no sessionId in the answer", None)
        hops = self.hops(session)
        if self.channel != "sync" and fault is None:
            hops = await self._pushed(session)
        return Exchange(body, status, raw, fault, None, session, hops)

    async def _pushed(self, session_id: str) -> dict[str, Hop]:
        """The hops once the push to the receiver has its answer (or the wait ends: the hops so far)."""
        deadline = time.monotonic() + self.timeout + 10
        while True:
            hops = self.hops(session_id)
            if "response-in" in hops or time.monotonic() > deadline:
                return hops
            await task.deferLater(self.app.reactor, 0.1)

    def hops(self, session_id: str) -> dict[str, Hop]:
        records = self.app.journal.query(session_id=session_id, include_body=True, limit=20)
        return {r["hop"]: Hop(r["hop"], _bytes(r["body_base64"]), r["http_status"], r["fault_code"],
                              r["verdicts"] or []) for r in records}

    def seal(self, raw: bytes) -> bytes:
        """Bytes signed as the gateway signs what it forwards (its own certificate, from the emulator's PKI)."""
        identity = self.app.env.security.signing
        return sign_envelope(raw, identity.key, identity.certificate, key_info=identity.key_info)

    async def post_direct(self, body: bytes) -> tuple[int, bytes]:
        """Straight to the system under test, bypassing the bench's gateway: what a faulty gateway could send."""
        return await threads.deferToThread(client.post, self.url, body, self.timeout + 5)

    def judge(self, http_status: int, body: bytes, checks=RESPONSE_CHECKS) -> Judged:
        """The gateway's answer checks (or some of them) over an answer the bench got directly."""
        ctx = MessageContext(env=self.app.env, raw=body, http_status=http_status, service=self.service,
                             shape=self.shape, received_at=self.app.env.clock(), recipient_id=self.service.provider)
        fault = None
        try:
            run_checks(checks, ctx)
        except Fault as refused:
            fault = refused
        return Judged(http_status, body, [v.as_dict() for v in ctx.verdicts], fault, ctx.is_fault)


def _bytes(encoded: str | None) -> bytes | None:
    return None if encoded is None else base64.b64decode(encoded)
