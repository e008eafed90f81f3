"""zeep, an independent SOAP stack, against the running gateway: WSDL over HTTP, round trips, faults.

zeep blocks, so every zeep call runs in a thread (`threads.deferToThread`) while the reactor keeps
serving the gateway and the provider stub.

About `forbid_external`: zeep 4.3.3's `Settings(forbid_external=True)` refuses *every* transitive
http(s) fetch (`wsdl:import`, `xs:import`), including those to the WSDL's own server, so no
multi-document WSDL (ours: two WSDLs and the XSDs) can load over HTTP with it. The same protection
(no fetch anywhere but the gateway, no local files) is enforced here by `GatewayOnlyTransport`,
with `forbid_dtd=True` as the notes ask (library notes §4).
"""
from __future__ import annotations

import re
import uuid
from copy import deepcopy
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import pytest_twisted
import zeep
from lxml import etree
from twisted.internet import threads
from zeep import xsd

from gateway import contract as c
from simulators import echo as echo_provider
from tests.conftest import ECHO_NS, PASSWORD, ROOT
from tests.schema_oracle import PARSER, SchemaOracle

GUID = re.compile(r"^\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}$")
PLACEHOLDER = "@@inline-payload@@"
HTTP_TIMEOUT = 15


class GatewayOnlyTransport(zeep.Transport):
    """Fetches only the gateway's own `/bip-sync/?...` URLs and keeps the exact bytes of each exchange."""

    def __init__(self, origin: str):
        super().__init__(timeout=HTTP_TIMEOUT, operation_timeout=HTTP_TIMEOUT)
        self.session.trust_env = False  # no proxy between us and 127.0.0.1
        self.prefix = f"{origin}/bip-sync/?"
        self.loaded: list[str] = []
        self.exchanges: list[tuple[bytes, int, bytes]] = []

    def load(self, url):
        if not str(url).startswith(self.prefix):
            raise AssertionError(f"zeep tried to load {url!r}, which is not a document of the gateway")
        self.loaded.append(str(url))
        return super().load(url)

    def post(self, address, message, headers):
        response = super().post(address, message, headers)
        self.exchanges.append((message, response.status_code, response.content))
        return response


class InlinePayload(zeep.Plugin):
    """Puts an XML element into `data` (xs:anyType): swaps the placeholder string for it (notes §4 b)."""

    def __init__(self) -> None:
        self.element: etree._Element | None = None

    def egress(self, envelope, http_headers, operation, binding_options):
        for data in envelope.iter("data"):
            if data.text == PLACEHOLDER and self.element is not None:
                data.text = None
                data.attrib.pop(c.XSI_TYPE, None)
                data.append(deepcopy(self.element))
        return envelope, http_headers


def make_client(wsdl_url: str, origin: str, plugins=()) -> tuple[zeep.Client, GatewayOnlyTransport]:
    transport = GatewayOnlyTransport(origin)
    client = zeep.Client(wsdl_url, transport=transport, plugins=list(plugins),
                         settings=zeep.Settings(forbid_dtd=True))
    return client, transport


async def client_for(harness, plugins=()) -> tuple[zeep.Client, GatewayOnlyTransport]:
    base = harness.app.base_url
    return await threads.deferToThread(make_client, f"{base}/bip-sync/?wsdl", base, plugins)


def sync_port(client: zeep.Client):
    return client.wsdl.services["ISyncChannelHttpService"].ports["SyncChannelHttpPort"]


def service_address(client: zeep.Client) -> str:
    return sync_port(client).binding_options["address"]


def request(data, *, service_id: str = "ECHO", sender_id: str = "consumer", password: str = PASSWORD) -> dict:
    return {
        "requestInfo": {
            "messageId": str(uuid.uuid4()),
            "serviceId": service_id,
            "messageDate": datetime.now(timezone.utc),
            "sender": {"senderId": sender_id, "password": password},
        },
        "requestData": {"data": data},
    }


def call(client: zeep.Client, req: dict):
    """SendMessage in a worker thread; returns the answer or the exception zeep raised."""
    try:
        return client.service.SendMessage(request=req)
    except Exception as exc:  # noqa: BLE001 - handed back to the reactor thread for the assertions
        return exc


def echo_document(text: str) -> str:
    return f'<e:EchoRequest xmlns:e="{ECHO_NS}"><text>{escape(text)}</text></e:EchoRequest>'


def use_echo_provider(harness) -> None:
    """The stub answers like the shipped demo provider, which reads all three data styles."""
    harness.stub.answer = echo_provider.answer


SYNC_SCHEMA = SchemaOracle(ROOT / "xsd" / c.SYNC_DRIVER_XSD)


def valid_on_the_wire(tmp_path: Path, raw: bytes) -> None:
    """Each validator of tests/schema_oracle.py accepts the message as it crossed the wire."""
    SYNC_SCHEMA.assert_valid(etree.fromstring(raw, PARSER), tmp_path)


def assert_echoed(answer, text: str) -> None:
    assert not isinstance(answer, Exception), repr(answer)
    info = answer.responseInfo
    assert info.status.code == "SCSS001"
    assert GUID.match(info.sessionId), info.sessionId
    content = answer.responseData.data
    assert isinstance(content, list) and len(content) == 1, content
    assert etree.QName(content[0]).text == f"{{{ECHO_NS}}}EchoResponse"
    assert content[0].findtext("text") == text


@pytest_twisted.ensureDeferred
async def test_wsdl_loads_over_http_from_the_gateway_alone(harness):
    client, transport = await client_for(harness)
    assert transport.loaded[0] == f"{harness.app.base_url}/bip-sync/?wsdl"
    assert f"{harness.app.base_url}/bip-sync/?wsdl=SyncChannel-v10-Interfaces.wsdl" in transport.loaded
    assert any("?xsd=SyncChannel-v10-Types.xsd" in url for url in transport.loaded), transport.loaded
    assert any("?xsd=common-v10.xsd" in url for url in transport.loaded), transport.loaded
    assert service_address(client) == harness.url
    operation = sync_port(client).binding.get("SendMessage")
    assert operation.input.body.qname == etree.QName(c.SEND_MESSAGE)
    assert operation.output.body.qname == etree.QName(c.SEND_MESSAGE_RESPONSE)


@pytest_twisted.ensureDeferred
async def test_service_address_follows_the_host_spelling_the_client_used(harness):
    port = harness.app.port.getHost().port
    origin = f"http://localhost:{port}"
    client, transport = await threads.deferToThread(make_client, f"{origin}/bip-sync/?wsdl", origin)
    address = service_address(client)
    assert address == f"{origin}/bip-sync/"
    assert "localhost" in address
    # Every import was followed under the same spelling, not under 127.0.0.1.
    assert len(transport.loaded) > 2 and all(url.startswith(f"{origin}/") for url in transport.loaded)


@pytest_twisted.ensureDeferred
async def test_round_trip_escaped_payload(harness, tmp_path):
    use_echo_provider(harness)
    client, transport = await client_for(harness)
    document = echo_document("сәлем <&> escaped")
    answer = await threads.deferToThread(call, client, request(xsd.AnyObject(xsd.String(), document)))
    assert_echoed(answer, "сәлем <&> escaped")

    # The provider got the escaped document as the text of data, typed xs:string.
    assert len(harness.stub.received) == 1
    data = etree.fromstring(harness.stub.received[0]).find(f"{c.BODY}/{c.SEND_MESSAGE}/request/requestData/data")
    assert data.text == document
    assert len(data) == 0

    (sent, status, received), = transport.exchanges
    assert status == 200
    valid_on_the_wire(tmp_path, sent)
    valid_on_the_wire(tmp_path, received)


@pytest_twisted.ensureDeferred
async def test_round_trip_inline_payload_through_egress_plugin(harness, tmp_path):
    use_echo_provider(harness)
    inline = InlinePayload()
    client, transport = await client_for(harness, plugins=[inline])
    inline.element = etree.fromstring(echo_document("inline сәлем"))
    answer = await threads.deferToThread(call, client, request(xsd.AnyObject(xsd.String(), PLACEHOLDER)))
    assert_echoed(answer, "inline сәлем")

    (sent, status, received), = transport.exchanges
    assert status == 200
    data = etree.fromstring(sent).find(f"{c.BODY}/{c.SEND_MESSAGE}/request/requestData/data")
    assert data.get(c.XSI_TYPE) is None and data.text is None
    assert [etree.QName(el).text for el in data] == [f"{{{ECHO_NS}}}EchoRequest"]
    forwarded = etree.fromstring(harness.stub.received[0])
    assert forwarded.findtext(f".//requestData/data/{{{ECHO_NS}}}EchoRequest/text") == "inline сәлем"

    valid_on_the_wire(tmp_path, sent)
    valid_on_the_wire(tmp_path, received)


@pytest_twisted.ensureDeferred
async def test_wrong_password_raises_fault_with_catalogue_code(harness, tmp_path):
    client, transport = await client_for(harness)
    req = request(xsd.AnyObject(xsd.String(), echo_document("x")), password="wrong")
    error = await threads.deferToThread(call, client, req)
    assert isinstance(error, zeep.exceptions.Fault), repr(error)
    assert "SHEP-141" in error.message
    assert error.detail is not None
    info = error.detail.find(c.SYNC_FAULT)
    assert info is not None, etree.tostring(error.detail)
    assert info.findtext("errorCode") == "SHEP-141"
    assert GUID.match(info.findtext("sessionId") or ""), etree.tostring(info)
    assert harness.stub.received == []

    (sent, status, received), = transport.exchanges
    assert status == 500
    valid_on_the_wire(tmp_path, sent)
    valid_on_the_wire(tmp_path, received)
