"""The bench of `shep conformance client`: a gateway of its own, in this process on a loopback port, that the
integrator's client calls. It is the provider bench's gateway (`bench_settings`: the one service, the one
sender, the emulator's PKI) with two additions: a stub provider behind the service, which answers every
request with an empty SendMessageResponse (and the retry scenario's first one with HTTP 503, so the gateway
answers SHEP-203), and an AsyncChannel service whose recipient is the client, where the bench queues messages
for it to pull.

The client is scored from the bench's journal: the gateway's own verdicts of each request it sent, and the
async hops of what it pulled and acknowledged. The bench adds no second reading of the contract.
"""
from __future__ import annotations

import base64
import dataclasses
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lxml import etree
from twisted.internet import threads
from twisted.web import resource, server

from gateway import client
from gateway import contract as c
from gateway.app import GatewayApp
from gateway.asyncclient import AsyncGatewayClient
from gateway.config import Settings
from gateway.conformance.bench import SENDER, SENDER_BIN, BenchError, bench_settings
from gateway.passwords import hash_password
from gateway.registry import Participant, Service, ServiceRegistry

CASE_PROPERTY = "conformanceCase"  # the property by which a client's request names its scenario
ASYNC_SERVICE = "SHEP_CONFORMANCE_Async"
PUTTER = "shep-conformance-bench"  # the bench's own sender of the messages the client pulls
PUT_PAYLOAD = '<c:Pull xmlns:c="urn:shep-emulator:conformance"><n>{n}</n></c:Pull>'
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
STUB_BIN = "990340000024"  # synthetic: the stub provider's certificate, when the service wants signed answers


@dataclass
class Request:
    """One request-in the client sent, as the bench's gateway journalled it."""
    seq: int
    at: datetime
    session_id: str | None
    message_id: str | None
    operation: str  # SendMessage, getMessages, sendDeliveryNotification, …
    case: str | None  # its conformanceCase property
    style: str | None  # the data style found in it: inline, typed, escaped
    verdicts: list[dict]
    fault_code: str | None  # what the gateway answered it (None: a success)
    body: bytes

    @property
    def refused_by(self) -> dict | None:
        return next((v for v in self.verdicts if v["verdict"] == "fail"), None)


@dataclass
class Observed:
    """Everything the client did so far, read from the journal; `put` the ids the bench queued for it."""
    requests: list[Request] = field(default_factory=list)
    put: list[str] = field(default_factory=list)
    pulled: dict[str, int] = field(default_factory=dict)  # messageId: times handed out
    acknowledged: dict[str, list[Request]] = field(default_factory=dict)  # messageId: its notifications

    def of_case(self, case: str) -> list[Request]:
        return [r for r in self.requests if r.case == case]


def client_settings(settings: Settings, service_id: str, stub_url: str) -> tuple[Settings, str, str]:
    """The provider bench's settings with the stub as provider, plus the async service the client pulls from;
    the client's password and the putter's."""
    bench, _ = bench_settings(settings, service_id, stub_url)
    if bench.registry.service(service_id).channel != "sync":
        raise BenchError(f"service {service_id!r} is on the {bench.registry.service(service_id).channel} channel; "
                         "the client mode's --service is the SyncChannel service the client calls (the async "
                         f"cases use {ASYNC_SERVICE})")
    # Hex: a password the integrator pastes into a command line must not start with "-".
    password, putter_password = secrets.token_hex(16), secrets.token_hex(16)
    client = dataclasses.replace(bench.registry.participant(SENDER),
                                 password_hash=hash_password(password, iterations=1000))
    putter = Participant(PUTTER, password_hash=hash_password(putter_password, iterations=1000), endpoint=None,
                         description="the conformance bench's sender of messages to pull")
    pull = Service(ASYNC_SERVICE, provider=SENDER, channel="async", payload_schema=None, timeout_seconds=30,
                   allowed_senders=frozenset({PUTTER}), routes=frozenset(), strict=False,
                   description="messages the conformance bench queues for the client to pull")
    registry = bench.registry
    service = registry.service(service_id)
    stub = dataclasses.replace(registry.participant(service.provider), bin=registry.participant(
        service.provider).bin or STUB_BIN, certificate=None)  # the stub signs with a certificate of its own
    participants = [client if p.id == SENDER else stub if p.id == stub.id else p
                    for p in registry.participants.values()]
    registry = ServiceRegistry([*participants, putter], [*registry.services.values(), pull])
    return dataclasses.replace(bench, registry=registry), password, putter_password


class StubProvider(resource.Resource):
    """The service's provider on the bench: an empty SendMessageResponse to everything, signed when the service
    requires transport signatures; the first request of each case in `fail_once` gets HTTP 503 instead."""

    isLeaf = True

    def __init__(self, fail_once: set[str]):
        super().__init__()
        self.fail_once = set(fail_once)
        self.sign: tuple | None = None

    def render_POST(self, request):
        request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
        root = c.PARSER.parse(request.content.read()).getroot()
        case = _case_of(root)
        if case in self.fail_once:
            self.fail_once.discard(case)
            request.setResponseCode(503)
            return b"the conformance bench's provider is unavailable, once, on purpose"
        body = client.build_send_message_response(message_id=root.findtext(".//{*}requestInfo/messageId"),
                                                  session_id=root.findtext(".//{*}requestInfo/sessionId"))
        return client.sign_request(body, *self.sign) if self.sign else body


class ClientBench:
    def __init__(self, settings: Settings, service_id: str, *, pki_dir: Path, work_dir: Path, reactor,
                 fail_once: set[str] = frozenset()):
        self.reactor = reactor
        self.work_dir = work_dir
        self.stub = StubProvider(fail_once)
        self._stub_port = reactor.listenTCP(0, server.Site(self.stub), interface="127.0.0.1")
        stub_url = f"http://127.0.0.1:{self._stub_port.getHost().port}/provider"
        self.settings, self.password, self._putter_password = client_settings(settings, service_id, stub_url)
        self.service: Service = self.settings.registry.service(service_id)
        self.app = GatewayApp(self.settings, reactor=reactor, state_dir=work_dir, pki_state_dir=pki_dir)
        self.credentials: tuple[Path, Path] | None = None
        self.observed = Observed()
        self.started = datetime.now(timezone.utc)
        self._seen_seq = 0

    def start(self, port: int = 0) -> None:
        self.app.listen(port, "127.0.0.1")
        folder = self.work_dir / "client"
        self.app.pki.credentials(folder, "organization", bin=SENDER_BIN)
        self.credentials = (folder / "cert.pem", folder / "key.pem")
        provider = self.settings.registry.participant(self.service.provider)
        if self.service.require_transport_signature:
            self.stub.sign = self.app.pki.credentials(self.work_dir / "provider", "organization", bin=provider.bin)

    async def stop(self) -> None:
        await self._stub_port.stopListening()
        await self.app.stop()

    @property
    def base_url(self) -> str:
        return self.app.base_url

    async def put(self, count: int) -> None:
        """Queue `count` messages for the client to pull (sent by the bench's putter, as any sender would)."""
        putter = AsyncGatewayClient(self.base_url, PUTTER, self._putter_password)
        for n in range(1, count + 1):
            payload = c.PARSER.parse(PUT_PAYLOAD.format(n=n).encode()).getroot()
            sent = await threads.deferToThread(putter.send, ASYNC_SERVICE, payload)
            self.observed.put.append(sent.message_id)

    async def observe(self) -> Observed:
        """Read the journal's new records into `observed` (in a pool thread: the store blocks)."""
        await threads.deferToThread(self._read)
        return self.observed

    def _read(self) -> None:
        records = self.app.journal.query(since=self.started, limit=100_000, include_body=True)
        answers = {r["session_id"]: r for r in records if r["hop"] == "response-out"}
        for r in records:
            if r["seq"] <= self._seen_seq or r["hop"] != "request-in" or r["from_party"] != SENDER:
                continue
            answer = answers.get(r["session_id"])
            if answer is None and r["session_id"] is not None:
                break  # not answered yet: read it at the next look
            self._seen_seq = r["seq"]
            self._add(r, answer or {"fault_code": "(no answer recorded)", "body_base64": None})

    def _add(self, record: dict, answer: dict) -> None:
        body = base64.b64decode(record["body_base64"]) if record["body_base64"] else b""
        root = _parse(body)
        operation = root.find(f"{{{c.SOAP_NS}}}Body/*") if root is not None else None
        request = Request(record["seq"], datetime.fromisoformat(record["started_at"]), record["session_id"],
                          record["message_id"], etree.QName(operation).localname if operation is not None else "?",
                          _case_of(root), _style_of(root), record["verdicts"] or [], answer["fault_code"], body)
        self.observed.requests.append(request)
        if request.operation == "sendDeliveryNotification":  # refused ones too: a second one is a second
            self.observed.acknowledged.setdefault(record["message_id"], []).append(request)
        elif request.operation == "getMessages" and answer["fault_code"] is None and answer["body_base64"]:
            handed_out = _parse(base64.b64decode(answer["body_base64"]))
            for message_id in handed_out.iterfind(".//{*}messages/messageInfo/messageId"):
                self.observed.pulled[message_id.text] = self.observed.pulled.get(message_id.text, 0) + 1


def _parse(body: bytes) -> etree._Element | None:
    try:
        return c.PARSER.parse(body).getroot()
    except (ValueError, etree.XMLSyntaxError):
        return None


def _case_of(root: etree._Element | None) -> str | None:
    if root is None:
        return None
    for prop in root.iterfind(".//{*}properties"):
        if prop.findtext("{*}key") == CASE_PROPERTY:
            return prop.findtext("{*}value")
    return None


def _style_of(root: etree._Element | None) -> str | None:
    """How `data` carries the payload: its child element (inline, or typed with xsi:type), or escaped text."""
    data = root.find(".//{*}requestData/data") if root is not None else None
    if data is None:
        return None
    if any(isinstance(child.tag, str) for child in data):
        return "typed" if data.get(XSI_TYPE) else "inline"
    return "escaped" if (data.text or "").strip().startswith("<") else None
