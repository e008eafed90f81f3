"""Every code of the fault catalogue, triggered through real HTTP and asserted by code.

`CASES` must name a case for every catalogue code: a new code without a test fails here.
Caller faults must never reach the provider; provider faults come from the stub's behaviour.
"""
from __future__ import annotations

import inspect
import socket
from datetime import timedelta
from time import perf_counter

import pytest
import pytest_twisted
import treq
from lxml import etree

from gateway import client
from gateway import contract as c
from gateway.faults import CATALOGUE
from gateway.asyncchannel import wire
from gateway.asyncclient import PushReceiver
from gateway.security import wss, xmldsig
from simulators.gbdfl.population import build_population
from simulators.gbdfl.provider import GbdflProvider
from tests.conftest import (CONSUMER_BIN, ECHO_NS, OTHER_BIN, PASSWORD, bulk_document, echo_request, echo_response,
                            java_date, send_message, start_harness, stop_harness, utc_now)


def _envelope(body_xml: str, ns: str = c.SOAP_NS, header: str = "") -> bytes:
    return (f'<soap:Envelope xmlns:soap="{ns}">{header}<soap:Body>{body_xml}</soap:Body>'
            f'</soap:Envelope>').encode()


def _edit(raw: bytes, old: bytes, new: bytes) -> bytes:
    assert old in raw, old
    return raw.replace(old, new, 1)


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def _response_with(payload: etree._Element | None = None, **kw) -> bytes:
    return client.build_send_message_response(message_id="p-1", payload=payload, **kw)


class Case:
    def __init__(self, body=None, *, content_type="text/xml; charset=utf-8", method="POST", settings=None,
                 provider=None, delay=0.0, before=None, reaches_provider=False, setup=None, path="/bip-sync/",
                 journalled=True):
        self.body = body
        self.content_type = content_type
        self.method = method
        self.settings = settings or {}
        self.provider = provider
        self.delay = delay
        self.before = before
        self.reaches_provider = reaches_provider
        self.path = path
        self.setup = setup
        # False: answered by a party the gateway calls (a push receiver), which keeps no journal.
        self.journalled = journalled


class Kit:
    """What a case may use to build its message: the shared test PKI and the running harness."""

    def __init__(self, pki, harness):
        self.pki = pki
        self.harness = harness

    def signed(self, cert_name: str = "consumer", cert_options: dict | None = None, *, timestamp=None,
               **message) -> bytes:
        options = {"bin": CONSUMER_BIN, **(cert_options or {})}
        issued = self.pki.cert(cert_name, **options)
        return wss.sign_envelope(send_message(**message), issued.key, issued.cert, timestamp_seconds=timestamp)

    def forged_push(self) -> bytes:
        """A push of a made-up message, signed by a trusted certificate that is not the gateway's."""
        operation = wire.operation_of(wire.send_message(service_id="ASYNC_PUSH", sender_id="consumer",
                                                        password=PASSWORD, payload=echo_request()))
        pushed = wire.push_send_message(wire.stored_message(operation, message_id="forged", correlation_id="forged",
                                                            session_id="{forged}"))
        issued = self.pki.cert("consumer", bin=CONSUMER_BIN)
        return wss.sign_envelope(pushed, issued.key, issued.cert)

    def eds(self, text: str = "hello") -> etree._Element:
        person = self.pki.cert("person", kind="person")
        return client.sign_payload(echo_request(text), person.key, person.cert)


def _tree(raw: bytes) -> etree._Element:
    return etree.fromstring(raw)


def _wrapped(raw: bytes) -> bytes:
    """XSW: the signed Body moves into a header wrapper; a new Body carries the attacker's request."""
    root = _tree(raw)
    body = root.find(c.BODY)
    wrapper = etree.SubElement(root.find(c.HEADER), "{urn:attacker}Wrapper")
    wrapper.append(body)
    forged = etree.SubElement(root, c.BODY)
    forged.append(etree.fromstring(send_message(payload=echo_request("forged"))).find(c.BODY)[0])
    return etree.tostring(root)


def _duplicate_id(raw: bytes) -> bytes:
    root = _tree(raw)
    body_id = root.find(c.BODY).get(f"{{{c.WSU_NS}}}Id")
    etree.SubElement(root.find(c.HEADER), "{urn:x}Decoy").set(f"{{{c.WSU_NS}}}Id", body_id)
    return etree.tostring(root)


def _timestamp_only(kit: Kit) -> bytes:
    """Signed, but SignedInfo references only the Timestamp (re-sealed, so the value is genuine)."""
    issued = kit.pki.cert("consumer", bin=CONSUMER_BIN)
    root = _tree(wss.sign_envelope(send_message(), issued.key, issued.cert, timestamp_seconds=300))
    signature = root.find(f".//{{{c.DS_NS}}}Signature")
    signed_info = signature.find(f"{{{c.DS_NS}}}SignedInfo")
    body_uri = "#" + root.find(c.BODY).get(f"{{{c.WSU_NS}}}Id")
    for reference in signed_info.findall(f"{{{c.DS_NS}}}Reference"):
        if reference.get("URI") == body_uri:
            signed_info.remove(reference)
    xmldsig.seal(signature, issued.key)
    return etree.tostring(root)


def _retext(raw: bytes, tag: str, change) -> bytes:
    root = _tree(raw)
    el = root.find(f".//{tag}")
    el.text = change(el.text)
    return etree.tostring(root)


def _algorithms(raw: bytes, signature_uri: str, digest_uri: str) -> bytes:
    root = _tree(raw)
    root.find(f".//{{{c.DS_NS}}}SignatureMethod").set("Algorithm", signature_uri)
    for digest in root.iter(f"{{{c.DS_NS}}}DigestMethod"):
        digest.set("Algorithm", digest_uri)
    return etree.tostring(root)


def _foreign_ca_signed() -> bytes:
    """Signed with a certificate from a CA the gateway does not trust."""
    from datetime import datetime, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = datetime.now(timezone.utc)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ROGUE CA"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"BIN{CONSUMER_BIN}")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), True)
            .sign(key, hashes.SHA256()))
    return wss.sign_envelope(send_message(), key, cert)


ASYNC = "/bip-async/"


def _async(**fields) -> bytes:
    message = dict(service_id="ASYNC_PULL", sender_id="consumer", password=PASSWORD, payload=echo_request())
    message.update(fields)
    return wire.send_message(**message)


async def _open_exchange(kit: Kit) -> None:
    """consumer sends a REQUEST on ASYNC_PULL; its ids go into the kit."""
    status, answer = await kit.harness.call_async(_async())
    assert status == 200, etree.tostring(answer)
    kit.message_id = answer.findtext("response/messageId")
    kit.correlation_id = answer.findtext("response/correlationId")


async def _delivered(kit: Kit) -> None:
    """The REQUEST pulled by clinic and acknowledged: DELIVERED."""
    await _open_exchange(kit)
    await kit.harness.call_async(wire.get_messages(service_id="ASYNC_PULL", sender_id="clinic", password=PASSWORD))
    status, answer = await kit.harness.call_async(wire.delivery_notification(
        message_id=kit.message_id, service_id="ASYNC_PULL", sender_id="clinic", password=PASSWORD))
    assert status == 200, etree.tostring(answer)


class BrokenReplayGuard:
    def first_seen(self, *args):
        raise RuntimeError("store is down")


_DEEP = "".join("<d>" for _ in range(40)) + "".join("</d>" for _ in range(40))
_BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                   b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                   b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&lol2;'
                   b'</soap:Body></soap:Envelope>')
_XXE = (b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&x;</soap:Body>'
        b'</soap:Envelope>')


async def _locked_out(kit: Kit) -> None:
    for _ in range(kit.harness.app.settings.gateway.lockout_attempts):
        await kit.harness.send(send_message(password="wrong"))

async def _address_locked_out(kit: Kit) -> None:
    for _ in range(kit.harness.app.settings.gateway.address_lockout_attempts):
        await kit.harness.send(send_message(password="wrong"))


CASES: dict[str, Case] = {
    "SHEP-101": Case(lambda: send_message(payload=None) + b" " * 3000, settings={"max_body_bytes": 2048}),
    "SHEP-102": Case(lambda: send_message(), content_type="application/json"),
    "SHEP-103": Case(lambda: send_message(), method="PUT"),
    "SHEP-110": Case(lambda: b"this is not XML"),
    "SHEP-111": Case(lambda: _XXE),
    "SHEP-112": Case(lambda: _edit(send_message(), b"<text>hello</text>", f"<text>{_DEEP}</text>".encode()),
                     settings={"max_depth": 30}),
    "SHEP-120": Case(lambda: _envelope("<x/>", ns=c.SOAP12_NS)),
    "SHEP-121": Case(lambda: _envelope("")),
    "SHEP-122": Case(lambda: _edit(send_message(), b"<soap:Header/>",
                                   b'<soap:Header><x:Trace xmlns:x="urn:x" soap:mustUnderstand="1"/></soap:Header>')),
    "SHEP-123": Case(lambda: _envelope('<x:GetStatus xmlns:x="urn:other"/>')),
    "SHEP-130": Case(lambda: _edit(send_message(message_id="m-1"), b"<messageId>m-1</messageId>", b"")),
    "SHEP-131": Case(lambda: _edit(send_message(service_id="ECHO_STRICT"), b"<serviceId>",
                                   b"<correlationId/><serviceId>")),
    "SHEP-132": Case(lambda: send_message(service_id="ECHO_STRICT", message_date=java_date())),
    "SHEP-133": Case(lambda: _edit(send_message(service_id="ECHO_STRICT"), b"</requestInfo>",
                                   b"<sessionId>{0b5c5a34-2f6e-4c1d-9a51-7f3e2d1c0b9a}</sessionId></requestInfo>")),
    "SHEP-140": Case(lambda: send_message(sender_id="nobody")),
    "SHEP-141": Case(lambda: send_message(password="wrong")),
    # Five wrong passwords (gateway.lockout_attempts): then even the right one is refused.
    "SHEP-142": Case(lambda: send_message(), before=_locked_out, settings={"lockout_delay_seconds": 0.01}),
    # Below the sender's own limit, at the address's: the right password, never verified, is not tried.
    "SHEP-143": Case(lambda: send_message(), before=_address_locked_out,
                     settings={"address_lockout_attempts": 2, "lockout_delay_seconds": 0.01}),
    "SHEP-150": Case(lambda: send_message(service_id="NO_SUCH_SERVICE")),
    "SHEP-151": Case(lambda: send_message(service_id="ECHO_ROUTED", route_id="route-b")),
    "SHEP-152": Case(lambda: send_message(service_id="ASYNC_ONLY")),
    "SHEP-153": Case(lambda: send_message(sender_id="outsider")),
    "SHEP-160": Case(lambda: send_message(message_id="twice"), before=lambda: send_message(message_id="twice")),
    "SHEP-161": Case(lambda: send_message(message_date=(utc_now() - timedelta(hours=2)).isoformat())),
    "SHEP-170": Case(lambda: send_message(payload=None)),
    "SHEP-171": Case(lambda: send_message(payload=etree.Element(f"{{{ECHO_NS}}}Unknown"))),
    "SHEP-180": Case(lambda: send_message(service_id="ECHO_SIGNED")),
    "SHEP-181": Case(lambda kit: _retext(kit.signed(), f"{{{c.WSSE_NS}}}KeyIdentifier", lambda _: "bm90IGEgY2VydA==")),
    "SHEP-182": Case(lambda kit: _duplicate_id(kit.signed())),
    "SHEP-183": Case(lambda kit: _wrapped(kit.signed())),
    "SHEP-184": Case(_timestamp_only),
    "SHEP-185": Case(lambda kit: _retext(kit.signed(), "text", lambda text: text + "!")),
    "SHEP-186": Case(lambda kit: _retext(kit.signed(), f"{{{c.DS_NS}}}SignatureValue",
                                         lambda value: ("A" if value[0] != "A" else "B") + value[1:])),
    "SHEP-187": Case(lambda kit: _algorithms(kit.signed(), "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                                             "http://www.w3.org/2000/09/xmldsig#sha1")),
    "SHEP-188": Case(lambda kit: _algorithms(kit.signed(), "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                                             "http://www.w3.org/2001/04/xmldsig-more#md5")),
    "SHEP-189": Case(lambda kit: kit.signed(timestamp=60), setup="clock+10min"),
    "SHEP-190": Case(lambda kit: _foreign_ca_signed()),
    "SHEP-191": Case(lambda kit: kit.signed("expired", {"expired": True})),
    "SHEP-192": Case(lambda kit: kit.signed("future", {"not_yet_valid": True})),
    "SHEP-193": Case(lambda kit: kit.signed("revoked"), setup="revoke"),
    "SHEP-194": Case(lambda kit: kit.signed("consumer"), setup="revocation-down"),
    "SHEP-195": Case(lambda kit: kit.signed("auth", {"usage": "auth"})),
    "SHEP-196": Case(lambda kit: kit.signed("other-org", {"bin": OTHER_BIN})),
    "SHEP-197": Case(lambda: send_message(service_id="ECHO_EDS", style="escaped")),
    "SHEP-198": Case(lambda kit: send_message(service_id="ECHO_EDS", style="escaped",
                                              payload=_tree(_retext(etree.tostring(kit.eds()), "text",
                                                                            lambda t: "changed")))),
    "SHEP-208": Case(lambda kit: kit.signed(service_id="ECHO_SIGNED"), reaches_provider=True),
    "SHEP-210": Case(lambda: _async(message_type="UPDATE"), path=ASYNC),
    "SHEP-211": Case(lambda: _async(message_type="UPDATE", correlation_id="no-such-exchange", sender_id="clinic"),
                     path=ASYNC),
    "SHEP-212": Case(lambda kit: _async(message_type="UPDATE", correlation_id=kit.correlation_id,
                                        sender_id="outsider"), before=_open_exchange, path=ASYNC),
    "SHEP-213": Case(lambda: wire.get_message_status(message_id="no-such", sender_id="consumer", password=PASSWORD),
                     path=ASYNC),
    "SHEP-214": Case(lambda kit: wire.delivery_notification(message_id=kit.message_id, service_id="ASYNC_PULL",
                                                            sender_id="clinic", password=PASSWORD),
                     before=_delivered, path=ASYNC),
    "SHEP-215": Case(lambda: _async(properties={"expiresAt": "tomorrow"}), path=ASYNC),
    "SHEP-199": Case(lambda kit: kit.forged_push(), setup="push-receiver", path="/push", journalled=False),
    "SHEP-201": Case(lambda: send_message(service_id="ECHO_SLOW"), delay=2.0, reaches_provider=True),
    "SHEP-202": Case(lambda: send_message(), setup="unreachable"),
    "SHEP-203": Case(lambda: send_message(), provider=lambda raw: (503, b"maintenance"), reaches_provider=True),
    "SHEP-204": Case(lambda: send_message(), provider=lambda raw: (200, b"<html>hello</html>"),
                     reaches_provider=True),
    "SHEP-205": Case(lambda: send_message(),
                     provider=lambda raw: (200, _edit(_response_with(echo_response()), b"<code>SCSS001</code>", b"")),
                     reaches_provider=True),
    "SHEP-206": Case(lambda: send_message(), provider=lambda raw: (200, _response_with(etree.Element("junk"))),
                     reaches_provider=True),
    # Many reads: the gateway stops reading mid-answer.
    "SHEP-207": Case(lambda: send_message(), provider=lambda raw: (200, _response_with(bulk_document(1_000_000))),
                     settings={"max_response_bytes": 100_000}, reaches_provider=True),
    "SHEP-299": Case(lambda: send_message(), setup="broken-store"),
}


def test_every_catalogue_code_has_an_http_case():
    assert sorted(CASES) == sorted(CATALOGUE)


@pytest.mark.parametrize("code", sorted(CATALOGUE))
@pytest_twisted.ensureDeferred
async def test_fault_through_http(tmp_path, pki, code):
    case = CASES[code]
    harness = await start_harness(tmp_path, pki, **case.settings)
    try:
        if case.provider:
            harness.stub.answer = case.provider
        harness.stub.delay = case.delay
        if case.setup == "unreachable":
            provider = harness.app.settings.registry.participant("provider")
            object.__setattr__(provider, "endpoint", f"http://127.0.0.1:{_closed_port()}/gone")
        if case.setup == "push-receiver":
            harness.app.site.resource.putChild(b"push", PushReceiver(
                lambda message: None, gateway_certificate=harness.app.env.security.signing.certificate))
        if case.setup == "broken-store":
            harness.app.env.replay_guard = BrokenReplayGuard()
        kit = Kit(pki, harness)
        if case.setup == "clock+10min":
            harness.app.env.clock = lambda: utc_now() + timedelta(minutes=10)
        if case.setup == "revoke":
            issued = pki.cert("revoked", bin=CONSUMER_BIN)
            if all(c["status"] != "revoked" for c in pki.pki.certificates() if c["serial"] == str(issued.serial)):
                pki.pki.revoke(issued.serial, "key_compromise")
        if case.setup == "revocation-down":
            revocation = harness.app.env.security.validator.revocation

            def unreachable(url, body, timeout):
                raise OSError("connection refused (test)")
            revocation.fetch = unreachable
        if inspect.iscoroutinefunction(case.before):
            await case.before(kit)
        elif case.before:
            first = await harness.send(case.before())
            assert first.ok, first.fault
            harness.stub.received.clear()

        body = case.body(kit) if case.body.__code__.co_argcount else case.body()
        url = harness.app.base_url + case.path
        if case.method == "POST":
            status, raw = await harness.post(body, content_type=case.content_type, url=url)
        else:
            response = await treq.request(case.method, url, data=body, persistent=False)
            status, raw = response.code, await response.content()

        if case.journalled:
            await _journalled_fault(harness, code, status, raw, asynchronous=case.path == ASYNC)
        else:
            _catalogue_fault(code, status, raw, c.async_schema())
        assert bool(harness.stub.received) == case.reaches_provider
    finally:
        await stop_harness(harness)


def _catalogue_fault(code: str, status: int, raw: bytes, schema) -> client.SyncReply:
    spec = CATALOGUE[code]
    assert status == spec.http_status
    schema.assertValid(etree.ElementTree(etree.fromstring(raw)))
    reply = client.read_reply(status, raw)
    assert not reply.ok
    assert reply.fault["errorCode"] == code
    assert reply.fault["faultcode"] == f"soap:{spec.soap_faultcode}"
    assert reply.fault["errorMessage"] == spec.ru
    return reply


async def _journalled_fault(harness, code: str, status: int, raw: bytes, *, asynchronous: bool = False) -> None:
    """The catalogue's fault for `code` (status, contract-valid envelope, texts), journalled as an answer."""
    reply = _catalogue_fault(code, status, raw, c.async_schema() if asynchronous else c.sync_schema())
    assert reply.fault["sessionId"].startswith("{")

    records = await harness.app.run_in_pool(lambda: harness.app.journal.query(session_id=reply.session_id))
    assert records, "the refusal was not journalled"
    assert records[-1]["hop"] == "response-out"
    assert records[-1]["fault_code"] == code
    assert any(r["fault_code"] == code for r in records if r["hop"].endswith("-in"))


@pytest_twisted.ensureDeferred
async def test_billion_laughs_is_refused_without_expansion(harness):
    status, raw = await harness.post(_BILLION_LAUGHS)
    reply = client.read_reply(status, raw)
    assert reply.fault["errorCode"] == "SHEP-111"
    assert b"lollol" not in raw
    assert harness.stub.received == []


@pytest_twisted.ensureDeferred
async def test_xxe_content_never_leaks(harness):
    status, raw = await harness.post(_XXE)
    assert b"root:" not in raw
    assert client.read_reply(status, raw).fault["errorCode"] == "SHEP-111"


def _padded(size: int) -> bytes:
    """A valid SendMessage of exactly `size` bytes: white space after the envelope is still well-formed XML."""
    message = send_message()
    return message + b" " * (size - len(message))


@pytest_twisted.ensureDeferred
async def test_body_over_the_default_limit_is_refused(harness):
    limit = harness.app.settings.gateway.max_body_bytes
    assert limit == 10 * 1024 * 1024  # the shipped default
    status, raw = await harness.post(_padded(limit + 1))
    await _journalled_fault(harness, "SHEP-101", status, raw)
    assert harness.stub.received == []


# Above 100,000 bytes, and always when chunked, Twisted spools the body to a temporary file.
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest_twisted.ensureDeferred
async def test_the_limit_is_exact_with_or_without_content_length(tmp_path, pki, chunked):
    limit = 150_000
    harness = await start_harness(tmp_path, pki, max_body_bytes=limit)
    try:
        post = harness.post_chunked if chunked else harness.post
        status, raw = await post(_padded(limit))
        assert client.read_reply(status, raw).ok
        status, raw = await post(_padded(limit + 1))
        await _journalled_fault(harness, "SHEP-101", status, raw)
        assert len(harness.stub.received) == 1
    finally:
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_a_form_content_type_is_refused_by_the_pipeline(harness):
    # Twisted would parse a form body itself and answer a malformed multipart one with a bare 400.
    for content_type in ("multipart/form-data; boundary=zz", "application/x-www-form-urlencoded"):
        status, raw = await harness.post(send_message(), content_type=content_type)
        await _journalled_fault(harness, "SHEP-102", status, raw)


@pytest.mark.parametrize("path, content_type, status, says", [
    ("/demo/echo", "text/xml", 413, b"larger than this site accepts"),
    ("/pki/ocsp", "application/ocsp-request", 413, b"an OCSP request is at most"),
    ("/push", "text/xml", 413, b"<errorCode>SHEP-101</errorCode>"),
    ("/gbdfl", "text/xml", 500, b"larger than this site accepts"),
])
@pytest_twisted.ensureDeferred
async def test_other_resources_of_the_site_refuse_a_body_over_its_limit(tmp_path, pki, path, content_type, status,
                                                                        says):
    # Past the site's limit the body is not buffered: a resource must refuse it, not read it as empty.
    harness = await start_harness(tmp_path, pki, max_body_bytes=2048)
    try:
        operator = pki.cert("gbdfl-operator")
        root = harness.app.site.resource
        root.putChild(b"push", PushReceiver(lambda message: None))
        root.putChild(b"gbdfl", GbdflProvider(build_population(size=0), operator.key, operator.cert))
        for post in (harness.post, harness.post_chunked):
            answer, raw = await post(_padded(3000), content_type=content_type, url=harness.app.base_url + path)
            assert (answer, says in raw) == (status, True), raw
    finally:
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_provider_fault_passes_through_with_gateway_session(harness):
    def provider_fault(raw):
        return 500, (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault>'
                     b'<faultcode>S:Server</faultcode><faultstring>not found</faultstring><detail>'
                     b'<ns2:SendMessageFault1_SendMessageFault xmlns:ns2="http://bip.bee.kz/SyncChannel/v10/Types">'
                     b'<errorCode>999</errorCode><errorMessage>service not found by ServiceId</errorMessage>'
                     b'<errorDate>2026-11-25T10:00:00+06:00</errorDate>'
                     b'</ns2:SendMessageFault1_SendMessageFault></detail></S:Fault></S:Body></S:Envelope>')

    harness.stub.answer = provider_fault
    reply = await harness.send(send_message())
    assert reply.http_status == 500
    assert reply.fault["errorCode"] == "999"
    assert reply.fault["errorMessage"] == "service not found by ServiceId"
    assert reply.session_id.startswith("{")
    records = await harness.app.run_in_pool(lambda: harness.app.journal.query(session_id=reply.session_id))
    assert [r["hop"] for r in records] == ["request-in", "request-out", "response-in", "response-out"]


@pytest_twisted.ensureDeferred
async def test_timeout_answers_promptly(harness):
    harness.stub.delay = 3.0
    start = perf_counter()
    reply = await harness.send(send_message(service_id="ECHO_SLOW"))
    assert reply.fault["errorCode"] == "SHEP-201"
    assert perf_counter() - start < 2.0
