"""SendMessage through the gateway over real HTTP: the happy path in each data style, and what it journals."""
from __future__ import annotations

import base64
import hashlib
import json
from time import perf_counter

import pytest
import pytest_twisted
from lxml import etree

from gateway import client
from gateway import contract as c
from gateway.faults import CATALOGUE
from gateway.journal import REDACTED, redact_credentials
from gateway.security import wss
from gateway.security.algorithms import AlgorithmPolicy
from tests.conftest import (BULK_NS, CONSUMER_BIN, ECHO_NS, bulk_document, echo_request, java_date, send_message,
                            utc_now)


@pytest_twisted.ensureDeferred
async def test_round_trip_sets_session_and_reaches_provider(harness):
    reply = await harness.send(send_message(payload=echo_request("сәлем")))
    assert reply.ok, reply.fault
    assert reply.http_status == 200
    assert reply.status_code == "SCSS001"
    assert reply.session_id and reply.session_id.startswith("{") and reply.session_id.endswith("}")
    assert reply.data.findtext(f"{{{ECHO_NS}}}EchoResponse/text") == "сәлем"
    assert len(harness.stub.received) == 1
    forwarded = etree.fromstring(harness.stub.received[0])
    info = forwarded.find(f"{c.BODY}/{c.SEND_MESSAGE}/request/requestInfo")
    assert info.findtext("sessionId") == reply.session_id
    assert info.find("sender/password") is None


# The three `data` styles of the contract (§6): untyped inline, escaped string, typed inline.
DATA_STYLES = [("inline", None), ("escaped", None), ("typed", f"{{{ECHO_NS}}}Echo")]


@pytest.mark.parametrize("style, xsi_type", DATA_STYLES)
@pytest_twisted.ensureDeferred
async def test_each_data_style_is_validated_and_forwarded(harness, style, xsi_type):
    reply = await harness.send(send_message(payload=echo_request("style"), style=style, xsi_type=xsi_type))
    assert reply.ok, reply.fault
    assert len(harness.stub.received) == 1


@pytest.mark.parametrize("style, xsi_type", DATA_STYLES)
@pytest_twisted.ensureDeferred
async def test_each_data_style_refuses_an_invalid_payload(harness, style, xsi_type):
    reply = await harness.send(send_message(payload=echo_request("x" * 1001), style=style, xsi_type=xsi_type))
    assert reply.fault["errorCode"] == "SHEP-171"
    assert harness.stub.received == []


def _tolerated(raw: bytes) -> bytes:
    # The variations real clients send (contract §6): other prefixes, empty optionals, a non-GUID
    # sessionId, `data` qualified with the Interfaces namespace, a plain Id on the Body.
    raw = raw.replace(b"soap:", b"soapenv:").replace(b"xmlns:soap=", b"xmlns:soapenv=")
    raw = raw.replace(b"<soapenv:Body>", b'<soapenv:Body Id="body-1">')
    raw = raw.replace(b"<serviceId>", b"<correlationId/><serviceId>")
    raw = raw.replace(b"</requestInfo>", b"<properties/><sessionId>ABCDEFGHIJ0123456789</sessionId></requestInfo>")
    raw = raw.replace(b"<data>", b'<ns4:data xmlns:ns4="http://bip.bee.kz/SyncChannel/v10/Interfaces">')
    return raw.replace(b"</data>", b"</ns4:data>")


@pytest_twisted.ensureDeferred
async def test_tolerated_variations_are_accepted_and_journalled(harness):
    reply = await harness.send(_tolerated(send_message()))
    assert reply.ok, reply.fault
    records = await harness.app.run_in_pool(lambda: harness.app.journal.query(session_id=reply.session_id))
    deviations = records[0]["deviations"]
    assert records[0]["hop"] == "request-in"
    assert len(deviations) == 5, deviations
    assert any("sessionId" in d for d in deviations)
    assert any("Interfaces" in d for d in deviations)
    verdicts = {v["check"]: v["verdict"] for v in records[0]["verdicts"]}
    assert verdicts["tolerate_client_variations"] == "note"
    # The provider receives the normalised message, schema-valid.
    c.sync_schema().assertValid(etree.ElementTree(etree.fromstring(harness.stub.received[0])))


@pytest_twisted.ensureDeferred
async def test_strict_service_refuses_the_same_variations(harness):
    reply = await harness.send(_tolerated(send_message(service_id="ECHO_STRICT")))
    assert reply.fault["errorCode"] == "SHEP-131"
    assert "sessionId" in reply.fault["errorData"]
    assert harness.stub.received == []


TEXT_XML = "text/xml; charset=utf-8"
CLIENT_SESSION = "{0b5c5a34-2f6e-4c1d-9a51-7f3e2d1c0b9a}"


def _with_client_session(raw: bytes) -> bytes:
    return raw.replace(b"</requestInfo>", f"<sessionId>{CLIENT_SESSION}</sessionId></requestInfo>".encode())


# Real clients' shapes (docs/architecture.md, "Tolerated client shapes"): the request for a service and its
# Content-Type, the code a strict service refuses it with, and what the journal's note mentions.
CLIENT_SHAPES = {
    "SOAP 1.2 media type": (lambda service: send_message(service_id=service),
                            "application/soap+xml; charset=utf-8", "SHEP-102", "application/soap+xml"),
    "offset without a colon": (lambda service: send_message(service_id=service, message_date=java_date()),
                               TEXT_XML, "SHEP-132", "offset without a colon"),
    "client sessionId": (lambda service: _with_client_session(send_message(service_id=service)),
                         TEXT_XML, "SHEP-133", CLIENT_SESSION),
}


@pytest.mark.parametrize("shape", CLIENT_SHAPES)
@pytest_twisted.ensureDeferred
async def test_real_clients_shape_is_accepted_and_noted(harness, shape):
    build, content_type, _, mention = CLIENT_SHAPES[shape]
    body = build("ECHO")
    status, raw = await harness.post(body, content_type=content_type)
    reply = client.read_reply(status, raw)
    assert reply.ok, reply.fault
    records = await harness.app.run_in_pool(lambda: harness.app.journal.query(session_id=reply.session_id))
    request_in = records[0]
    # The journal keeps the bytes as they came (but for the password); the note says what was tolerated.
    assert request_in["body_sha256"] == hashlib.sha256(redact_credentials(body)).hexdigest()
    assert len(request_in["deviations"]) == 1 and mention in request_in["deviations"][0]
    assert "note" in {v["verdict"] for v in request_in["verdicts"]}
    # The provider gets a valid message, with the gateway's sessionId.
    forwarded = etree.fromstring(harness.stub.received[0])
    c.sync_schema().assertValid(etree.ElementTree(forwarded))
    assert forwarded.findtext(f"{c.BODY}/{c.SEND_MESSAGE}/request/requestInfo/sessionId") == reply.session_id


@pytest.mark.parametrize("shape", CLIENT_SHAPES)
@pytest_twisted.ensureDeferred
async def test_strict_service_refuses_each_shape_with_its_own_code(harness, shape):
    build, content_type, code, mention = CLIENT_SHAPES[shape]
    status, raw = await harness.post(build("ECHO_STRICT"), content_type=content_type)
    reply = client.read_reply(status, raw)
    assert reply.fault["errorCode"] == code and mention in reply.fault["errorData"]
    assert status == CATALOGUE[code].http_status
    assert harness.stub.received == []


@pytest_twisted.ensureDeferred
async def test_the_provider_gets_the_same_instant_with_a_colon(harness):
    sent = java_date()
    reply = await harness.send(send_message(message_date=sent))
    assert reply.ok, reply.fault
    forwarded = etree.fromstring(harness.stub.received[0])
    assert forwarded.findtext(".//requestInfo/messageDate") == sent[:-2] + ":" + sent[-2:]


@pytest_twisted.ensureDeferred
async def test_a_signed_request_is_verified_as_sent_then_normalised_and_re_signed(harness, pki):
    issued = pki.cert("consumer-rsa", bin=CONSUMER_BIN, alg="rsa")
    body = client.sign_request(_with_client_session(send_message(message_date=java_date())), issued.key, issued.cert)
    reply = await harness.send(body)
    assert reply.ok, reply.fault
    records = await harness.app.run_in_pool(lambda: harness.app.journal.query(session_id=reply.session_id))
    verdicts = {v["check"]: v["verdict"] for v in records[0]["verdicts"]}
    assert verdicts["verify_transport_signature"] == "pass" and verdicts["tolerate_client_variations"] == "note"
    assert len(records[0]["deviations"]) == 2
    gateway_cert = harness.app.env.security.signing.certificate
    verified = wss.verify_envelope(harness.stub.received[0], policy=AlgorithmPolicy(), now=utc_now(),
                                   certificates=lambda issuer, serial: gateway_cert)
    info = verified.body.find(f"{c.SEND_MESSAGE}/request/requestInfo")
    assert info.findtext("sessionId") == reply.session_id and info.findtext("messageDate")[-3] == ":"


@pytest_twisted.ensureDeferred
async def test_a_soap12_envelope_is_still_a_version_mismatch_under_its_media_type(harness):
    envelope = f'<e:Envelope xmlns:e="{c.SOAP12_NS}"><e:Body><x/></e:Body></e:Envelope>'.encode()
    status, raw = await harness.post(envelope, content_type="application/soap+xml")
    assert client.read_reply(status, raw).fault["errorCode"] == "SHEP-120"


@pytest_twisted.ensureDeferred
async def test_a_bare_message_date_is_not_tolerated(harness):
    """messageDate travels to the provider: the gateway does not make up a time of day for it."""
    reply = await harness.send(send_message(message_date=java_date()[:10]))
    assert reply.fault["errorCode"] == "SHEP-130" and "messageDate" in reply.fault["errorData"]


@pytest_twisted.ensureDeferred
async def test_service_without_payload_schema_forwards_any_data(harness):
    reply = await harness.send(send_message(service_id="OPAQUE", payload=etree.Element("{urn:x}Anything")))
    assert reply.ok, reply.fault


@pytest_twisted.ensureDeferred
async def test_routed_service_accepts_its_route(harness):
    reply = await harness.send(send_message(service_id="ECHO_ROUTED", route_id="route-a"))
    assert reply.ok, reply.fault


@pytest_twisted.ensureDeferred
async def test_journal_records_four_hops_with_hashes(harness):
    import hashlib
    body = send_message()
    reply = await harness.send(body)
    records = await harness.app.run_in_pool(
        lambda: harness.app.journal.query(session_id=reply.session_id, include_body=True))
    assert [r["hop"] for r in records] == ["request-in", "request-out", "response-in", "response-out"]
    assert [(r["from_party"], r["to_party"]) for r in records] == [
        ("consumer", "gateway"), ("gateway", "provider"), ("provider", "gateway"), ("gateway", "consumer")]
    assert records[0]["body_sha256"] == hashlib.sha256(redact_credentials(body)).hexdigest()
    assert records[1]["body_sha256"] == hashlib.sha256(harness.stub.received[0]).hexdigest()
    assert records[3]["body_sha256"] == hashlib.sha256(reply.raw).hexdigest()
    assert all(r["message_id"] == records[0]["message_id"] for r in records)
    assert {v["check"] for v in records[2]["verdicts"]} >= {"forward_to_provider", "validate_response_schema"}


@pytest_twisted.ensureDeferred
async def test_wsdl_is_served_with_the_callers_address(harness):
    status, raw = await harness.get("/bip-sync/?wsdl")
    assert status == 200
    doc = etree.fromstring(raw)
    address = doc.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
    assert address == harness.url
    imported = doc.find("{http://schemas.xmlsoap.org/wsdl/}import").get("location")
    assert imported.startswith(harness.url + "?wsdl=")
    status, raw = await harness.get(imported[len(harness.app.base_url):])
    assert status == 200
    locations = [el.get("schemaLocation") for el in etree.fromstring(raw).iter(f"{{{c.XS_NS}}}import")]
    assert locations and all(loc.startswith(harness.url + "?xsd=") for loc in locations)


@pytest.mark.parametrize("query", ["?xsd=../setup.cfg", "?xsd=nope.xsd", "?wsdl=../README.md"])
@pytest_twisted.ensureDeferred
async def test_contract_files_outside_the_contract_are_not_served(harness, query):
    status, raw = await harness.get(f"/bip-sync/{query}")
    assert status == 404
    assert b"[" not in raw and b"setup" not in raw


@pytest_twisted.ensureDeferred
async def test_plain_get_is_a_journalled_fault(harness):
    status, raw = await harness.get("/bip-sync/")
    reply = client.read_reply(status, raw)
    assert status == 405 and reply.fault["errorCode"] == "SHEP-103"


@pytest_twisted.ensureDeferred
async def test_faults_api_lists_the_catalogue(harness):
    status, raw = await harness.get("/api/faults")
    assert status == 200
    faults = json.loads(raw)["faults"]
    assert [f["code"] for f in faults] == sorted(CATALOGUE)
    assert all(f["message"]["kk"] and f["message"]["ru"] and f["message"]["en"] for f in faults)


@pytest_twisted.ensureDeferred
async def test_journal_api_filters_and_rejects_bad_queries(harness):
    ok = await harness.send(send_message(message_id="api-1"))
    await harness.send(send_message(message_id="api-2", password="wrong"))
    status, raw = await harness.get("/api/journal?messageId=api-1")
    records = json.loads(raw)["records"]
    assert status == 200 and len(records) == 4 and {r["session_id"] for r in records} == {ok.session_id}
    status, raw = await harness.get("/api/journal?sender=consumer&limit=2")
    assert status == 200 and len(json.loads(raw)["records"]) == 2
    status, raw = await harness.get("/api/journal?since=2999-01-01T00:00:00Z")
    assert status == 200 and json.loads(raw)["records"] == []
    for bad in ("?bogus=1", "?limit=0", "?limit=abc", "?since=yesterday"):
        status, raw = await harness.get(f"/api/journal{bad}")
        assert status == 400 and "error" in json.loads(raw), bad


@pytest_twisted.ensureDeferred
async def test_health_and_metrics(harness):
    await harness.send(send_message())
    await harness.send(send_message(password="wrong"))
    status, raw = await harness.get("/health")
    assert status == 200 and json.loads(raw)["status"] == "ok"
    status, raw = await harness.get("/metrics")
    text = raw.decode()
    assert status == 200
    assert 'shep_request_duration_seconds_count{address="/bip-sync/",outcome="ok",service="ECHO"} 1.0' in text
    # The wrong password stops the request before lookup_service: its service is not known yet.
    assert ('shep_request_duration_seconds_count{address="/bip-sync/",outcome="caller_fault",service="unknown"} 1.0'
            in text)
    assert 'shep_faults_total{code="SHEP-141"} 1.0' in text
    assert 'shep_check_duration_seconds_count{check="validate_request_schema"}' in text
    assert 'shep_hop_duration_seconds_count{hop="provider"} 1.0' in text


@pytest_twisted.ensureDeferred
async def test_log_lines_carry_the_session_id(harness, caplog):
    import logging

    from gateway.logs import JsonFormatter

    caplog.set_level(logging.INFO, logger="shep")
    reply = await harness.send(send_message(password="wrong"))
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name.startswith("shep.")]
    answered = [line for line in lines if line["logger"] == "shep.sync"]
    assert answered and answered[0]["session_id"] == reply.session_id
    assert answered[0]["fault_code"] == "SHEP-141"
    access = [line for line in lines if line["logger"] == "shep.access" and "/bip-sync/" in line["message"]]
    assert access and access[0]["session_id"] == reply.session_id


def _signed_of_size(pki, size: int) -> tuple[bytes, int]:
    """A signed SendMessage to OPAQUE of exactly `size` bytes, and its padding."""
    issued = pki.cert("consumer-rsa", bin=CONSUMER_BIN, alg="rsa")
    padding = max(size - 4000, 0)
    for _ in range(5):  # the envelope's own length varies by a few bytes (dates): converge on the size
        raw = client.sign_request(send_message(service_id="OPAQUE", payload=bulk_document(padding)),
                                  issued.key, issued.cert)
        if len(raw) == size:
            return raw, padding
        padding += size - len(raw)
    raise AssertionError(f"could not build a message of {size} bytes (last {len(raw)})")


def _answer_in_kind(raw: bytes) -> tuple[int, bytes]:
    """The provider answers with a document as large as the one it got: large answers are read whole too."""
    root = etree.fromstring(raw)
    return 200, client.build_send_message_response(
        message_id="provider-" + root.findtext(".//requestInfo/messageId"),
        payload=bulk_document(len(root.findtext(f".//{{{BULK_NS}}}Document/content"))))


async def _accepted_intact(harness, sent: bytes, padding: int, status: int, raw: bytes) -> None:
    """SCSS001, verified, forwarded whole, answered whole, and journalled with the hash of what was sent."""
    reply = client.read_reply(status, raw)
    assert reply.ok, reply.fault
    assert reply.status_code == "SCSS001"
    forwarded = etree.fromstring(harness.stub.received[-1])
    assert len(forwarded.findtext(f".//{{{BULK_NS}}}Document/content")) == padding
    assert len(reply.data.findtext(f"{{{BULK_NS}}}Document/content")) == padding
    records = await harness.app.run_in_pool(lambda: harness.app.journal.query(session_id=reply.session_id))
    assert [r["hop"] for r in records] == ["request-in", "request-out", "response-in", "response-out"]
    assert records[0]["body_sha256"] == hashlib.sha256(redact_credentials(sent)).hexdigest()
    verdicts = {v["check"]: v for v in records[0]["verdicts"]}
    assert verdicts["limit_body_size"]["detail"] == f"{len(sent)} bytes"
    assert verdicts["verify_transport_signature"]["detail"].startswith("signed by ")


# Twisted keeps a body below 100,000 bytes in memory and spools one of 100,000 or more to a temporary file;
# the last size is just under the default max_body_bytes (10 MiB) and its single text node under libxml2's
# 10,000,000-byte limit.
@pytest.mark.parametrize("size", [99_999, 100_000, 1_000_000, 9_900_000])
@pytest_twisted.ensureDeferred
async def test_signed_message_of_any_size_up_to_the_limit_goes_through(harness, pki, size):
    harness.stub.answer = _answer_in_kind
    sent, padding = _signed_of_size(pki, size)
    start = perf_counter()
    status, raw = await harness.post(sent)
    elapsed = perf_counter() - start
    await _accepted_intact(harness, sent, padding, status, raw)
    assert elapsed < 20, f"{size} bytes took {elapsed:.1f} s"


@pytest_twisted.ensureDeferred
async def test_chunked_signed_message_goes_through(harness, pki):
    harness.stub.answer = _answer_in_kind
    sent, padding = _signed_of_size(pki, 1_000_000)
    status, raw = await harness.post_chunked(sent)
    await _accepted_intact(harness, sent, padding, status, raw)


@pytest_twisted.ensureDeferred
async def test_the_journal_never_keeps_a_password(harness):
    """Accepted or refused, in text, CDATA or entity spelling: over /api/journal no body holds the password,
    and the chain verifies over what is stored."""
    from tests.conftest import PASSWORD

    spellings = [send_message(), send_message(password="wrong-guess"),
                 send_message().replace(f"<password>{PASSWORD}</password>".encode(),
                                        f"<password><![CDATA[{PASSWORD}]]></password>".encode()),
                 send_message().replace(f"<password>{PASSWORD}</password>".encode(),
                                        f"<password>&#{ord(PASSWORD[0])};{PASSWORD[1:]}</password>".encode())]
    for body in spellings:
        assert b"<password>" in body
        await harness.send(body)
    status, raw = await harness.get("/api/journal?body=1&limit=100")
    assert status == 200
    stored = [base64.b64decode(r["body_base64"]) for r in json.loads(raw)["records"] if r.get("body_base64")]
    assert len(stored) >= 4 * 2
    for secret in (PASSWORD.encode(), b"wrong-guess", PASSWORD[1:].encode()):
        assert not any(secret in body for body in stored), secret
    assert sum(REDACTED in body for body in stored) >= 4
    assert (await harness.app.run_in_pool(harness.app.journal.verify)).ok
