"""Shared fixtures: a gateway on a loopback port 0 with its own store (the store under test), and a provider stub."""
from __future__ import annotations

import atexit
import dataclasses
import http.client
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import pytest
import pytest_twisted
import sqlalchemy
import treq
from lxml import etree
from twisted.internet import reactor, threads
from twisted.web import resource, server

from gateway import client
from gateway.asyncchannel import wire
from gateway.app import GatewayApp
from gateway.config import GatewaySettings, Settings
from gateway.passwords import hash_password
from gateway.registry import Participant, Service, ServiceRegistry
from simulators.pki.ca import TestPKI
from simulators.pki.web import pki_resource
from tests import html_oracle, system_tools
from tests.store_under_test import StoreUnderTest, close_store, open_store, store_under_test

ROOT = Path(__file__).resolve().parent.parent
# A `shep` a test starts without --state-dir or SHEP_STATE_DIR finds the per-user default under here, never in
# the home of whoever runs the tests (gateway/statedir.py); removed when the run ends.
_STATE_HOME = tempfile.mkdtemp(prefix="shep-tests-state-home-")
os.environ["XDG_STATE_HOME"] = _STATE_HOME
os.environ.pop("SHEP_STATE_DIR", None)
atexit.register(shutil.rmtree, _STATE_HOME, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    """Every test names its state dir: one that fell back on the per-user default fails the run."""
    used = sorted(str(path) for path in Path(_STATE_HOME).iterdir())
    if used:
        session.config.get_terminal_writer().line(
            f"a test used the per-user default state dir (no --state-dir or SHEP_STATE_DIR): {used}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True, scope="module")
def pages_are_valid_html():
    """Every page a test module fetched through tests/web_client.py passes the HTML validator
    (tests/html_oracle.py): an invalid page fails the module at its teardown, naming the page and the error."""
    yield
    errors = html_oracle.check_pending()
    assert not errors, "pages the HTML validator refuses:\n" + "\n".join(errors)


ECHO_NS = "urn:shep-emulator:demo:echo"
ECHO_XSD = ROOT / "gateway" / "defaults" / "demo-echo.xsd"
PASSWORD = "consumer-secret"
CONSUMER_BIN = "230540004989"
PROVIDER_BIN = "081140000436"
OTHER_BIN = "161140016747"
# Low iterations keep the tests fast; the format is the production one.
PASSWORD_HASH = hash_password(PASSWORD, iterations=1000)


def echo_request(text: str = "hello") -> etree._Element:
    payload = etree.Element(f"{{{ECHO_NS}}}EchoRequest", nsmap={"echo": ECHO_NS})
    etree.SubElement(payload, "text").text = text
    return payload


def echo_response(text: str = "hello") -> etree._Element:
    payload = etree.Element(f"{{{ECHO_NS}}}EchoResponse", nsmap={"echo": ECHO_NS})
    etree.SubElement(payload, "text").text = text
    return payload


BULK_NS = "urn:shep-emulator:test:bulk"


def bulk_document(padding: int) -> etree._Element:
    """A business document for a service without a payload schema, carrying `padding` bytes of base64-like
    content (an attachment, say) in one text node."""
    document = etree.Element(f"{{{BULK_NS}}}Document", nsmap={"b": BULK_NS})
    etree.SubElement(document, "text").text = "bulk"
    etree.SubElement(document, "content").text = "QUJD" * (padding // 4) + "Q" * (padding % 4)
    return document


def send_message(**overrides) -> bytes:
    """A valid SendMessage from `consumer` to `ECHO` unless overridden."""
    fields = dict(service_id="ECHO", sender_id="consumer", password=PASSWORD, payload=echo_request())
    fields.update(overrides)
    return client.build_send_message(**fields)


class ProviderStub(resource.Resource):
    """A provider endpoint whose answer each test chooses; it records what it received."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.received: list[bytes] = []
        self.answer: Callable[[bytes], tuple[int, bytes]] = self.echo
        self.delay: float = 0.0

    @staticmethod
    def echo(raw: bytes) -> tuple[int, bytes]:
        root = etree.fromstring(raw)
        info = root.find(".//requestInfo")
        return 200, client.build_send_message_response(
            message_id="provider-" + info.findtext("messageId"), correlation_id=info.findtext("correlationId"),
            payload=echo_response(root.findtext(".//text") or ""))

    def render_POST(self, request):
        raw = request.content.read()
        self.received.append(raw)
        status, body = self.answer(raw)

        def reply():
            if not request._disconnected:
                request.setResponseCode(status)
                request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
                request.write(body)
                request.finish()

        if not self.delay:
            reply()
            return server.NOT_DONE_YET
        call = reactor.callLater(self.delay, reply)
        request.notifyFinish().addErrback(lambda _: call.active() and call.cancel())
        return server.NOT_DONE_YET


def default_settings(provider_url: str, *, participants=(), services=(), operators=(),
                     **gateway_overrides) -> Settings:
    participants = [
        *participants,
        Participant("consumer", PASSWORD_HASH, None, bin=CONSUMER_BIN),
        Participant("outsider", PASSWORD_HASH, None),
        Participant("provider", None, provider_url, bin=PROVIDER_BIN),
        # AsyncChannel: a provider that pulls its messages, and one the gateway pushes to.
        Participant("clinic", PASSWORD_HASH, None),
        Participant("pusher", PASSWORD_HASH, None, async_endpoint=provider_url + "/async-client"),
    ]
    common = dict(provider="provider", channel="sync", timeout_seconds=5.0,
                  allowed_senders=frozenset({"consumer"}), routes=frozenset(), strict=False)
    services = [
        *services,
        Service("ECHO", payload_schema=ECHO_XSD, **common),
        Service("ECHO_STRICT", payload_schema=ECHO_XSD, **{**common, "strict": True}),
        Service("ECHO_ROUTED", payload_schema=ECHO_XSD, **{**common, "routes": frozenset({"route-a"})}),
        Service("ECHO_SLOW", payload_schema=ECHO_XSD, **{**common, "timeout_seconds": 0.3}),
        Service("OPAQUE", payload_schema=None, **common),
        Service("ASYNC_ONLY", payload_schema=None, **{**common, "channel": "async"}),
        Service("ECHO_SIGNED", payload_schema=ECHO_XSD, **{**common, "require_transport_signature": True}),
        Service("ECHO_EDS", payload_schema=None, **{**common, "require_payload_signature": True}),
        Service("ASYNC_PULL", payload_schema=ECHO_XSD, **{**common, "channel": "async", "provider": "clinic",
                                                          "allowed_senders": frozenset({"consumer", "outsider"})}),
        Service("ASYNC_PUSH", payload_schema=ECHO_XSD, **{**common, "channel": "async", "provider": "pusher"}),
        Service("ASYNC_STRICT", payload_schema=ECHO_XSD, **{**common, "channel": "async", "provider": "clinic",
                                                            "strict": True}),
    ]
    gw = dataclasses.replace(GatewaySettings(), **gateway_overrides)
    return Settings(source=Path("tests"), gateway=gw, registry=ServiceRegistry(participants, services),
                    operators={operator.name: operator for operator in operators})


class Harness:
    """A running gateway and provider stub; `post` talks real HTTP on loopback."""

    def __init__(self, app: GatewayApp, stub: ProviderStub, provider_port):
        self.app = app
        self.stub = stub
        self.provider_port = provider_port
        self.url = f"{app.base_url}/bip-sync/"
        self.async_url = f"{app.base_url}/bip-async/"

    async def post(self, body: bytes, content_type: str = "text/xml; charset=utf-8",
                   url: str | None = None) -> tuple[int, bytes]:
        response = await treq.post(url or self.url, data=body, headers={"Content-Type": content_type},
                                   persistent=False)
        return response.code, await response.content()

    async def post_chunked(self, body: bytes, content_type: str = "text/xml; charset=utf-8",
                           url: str | None = None, piece: int = 64 * 1024) -> tuple[int, bytes]:
        """`post` with Transfer-Encoding: chunked (no Content-Length), `piece` bytes a chunk."""
        address = urlsplit(url or self.url)

        def post() -> tuple[int, bytes]:
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
            try:
                # An iterable body of unknown length: http.client sends it chunked.
                connection.request("POST", address.path, body=(body[i:i + piece] for i in range(0, len(body), piece)),
                                   headers={"Content-Type": content_type})
                response = connection.getresponse()
                return response.status, response.read()
            finally:
                connection.close()
        return await threads.deferToThread(post)

    async def get(self, path: str, headers: dict | None = None, base: str | None = None) -> tuple[int, bytes]:
        response = await treq.get(f"{base or self.app.base_url}{path}", headers=headers, persistent=False)
        return response.code, await response.content()

    async def send(self, body: bytes) -> client.SyncReply:
        status, raw = await self.post(body)
        return client.read_reply(status, raw)

    async def call_async(self, body: bytes) -> tuple[int, etree._Element]:
        """An AsyncChannel call: the HTTP status and the element inside soap:Body."""
        status, raw = await self.post(body, url=self.async_url)
        return status, wire.operation_of(raw)


async def start_harness(tmp_path: Path, pki: "SharedPKI", *, participants=(), services=(), operators=(),
                        reach_store=None, **gateway_overrides) -> Harness:
    """Extra `participants` and `services` (registry objects) join the defaults; endpoints may be relative
    ("/portal/…") to reach resources mounted on the gateway's own site (`harness.app.site.resource`).
    `operators` (gateway.operators.Operator) guard the operator API; `host` (default loopback) is where it listens.
    `reach_store(url)`: the URL the gateway uses for the store under test (e.g. through a relay)."""
    stub = ProviderStub()
    provider_port = reactor.listenTCP(0, server.Site(stub), interface="127.0.0.1")
    provider_url = f"http://127.0.0.1:{provider_port.getHost().port}/provider"
    settings = default_settings(provider_url, participants=participants, services=services, operators=operators,
                                **gateway_overrides)
    store = open_store(tmp_path, "h")
    try:
        app = GatewayApp(settings, reactor=reactor, state_dir=tmp_path,
                         store_url=reach_store(store.url) if reach_store else store.url,
                         persistent_connections=False, pki_state_dir=pki.state_dir)
        app.test_store = store
        app.listen(port=0, host=settings.gateway.host)
    except BaseException:
        await provider_port.stopListening()
        close_store(store)
        raise
    return Harness(app, stub, provider_port)


async def stop_harness(harness: Harness) -> None:
    await harness.app.stop()
    await harness.provider_port.stopListening()
    close_store(harness.app.test_store)


@pytest.fixture
def tested_store(tmp_path) -> Iterator[StoreUnderTest]:
    """The store under test (tests/store_under_test.py) with `tmp_path / "state"` as its state dir."""
    with store_under_test(tmp_path / "state") as store:
        yield store


@pytest.fixture
def store_engine(tested_store) -> Iterator[sqlalchemy.Engine]:
    """A plain engine on the store under test, for the parties' tables (portal, АЖО) without a gateway."""
    engine = sqlalchemy.create_engine(tested_store.url)
    yield engine
    engine.dispose()


@pytest_twisted.async_yield_fixture
async def harness(tmp_path, pki):
    h = await start_harness(tmp_path, pki)
    yield h
    await stop_harness(h)


@dataclasses.dataclass
class SharedPKI:
    """One test PKI for the session (key generation is slow), served on its own loopback port."""
    pki: TestPKI
    state_dir: Path
    base_url: str
    issued: dict = dataclasses.field(default_factory=dict)

    def cert(self, name: str, **options):
        """A certificate issued once per session under `name` (kind organization, RSA, SIGN by default)."""
        if name not in self.issued:
            fields = dict(kind="organization", alg="rsa", usage="sign")
            fields.update(options)
            self.issued[name] = self.pki.issue(fields.pop("kind"), fields.pop("alg"), fields.pop("usage"), **fields)
        return self.issued[name]


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("pki")
    test_pki = TestPKI(state_dir)
    root = resource.Resource()
    root.putChild(b"pki", pki_resource(test_pki))
    port = reactor.listenTCP(0, server.Site(root), interface="127.0.0.1")
    base_url = f"http://127.0.0.1:{port.getHost().port}"
    test_pki.init(base_url)
    yield SharedPKI(test_pki, state_dir, base_url)
    pytest_twisted.blockon(port.stopListening())


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


KAZAKHSTAN = timezone(timedelta(hours=5), "UTC+05")


def java_date(moment: datetime | None = None) -> str:
    """A date as Java's SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss.SSSZ") writes it in Kazakhstan: +0500, no colon."""
    local = (moment or utc_now()).astimezone(KAZAKHSTAN)
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond // 1000:03d}{local:%z}"


def pytest_terminal_summary(terminalreporter) -> None:
    """The independent checkers that ran, and what was skipped for want of a system tool (tests/system_tools.py)."""
    system_tools.summary(terminalreporter)
