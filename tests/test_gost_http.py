"""GOST-signed traffic through the gateway over real HTTP: a SendMessage signed by the OpenSSL GOST engine
(laid out from a template, not by our signer) is accepted at /bip-sync-wss-gost/ for both generations, the
gateway's GOST-signed answer verifies with that engine, and the refusal cases get their fault codes."""
from __future__ import annotations

import base64

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway import client
from gateway.journal import redact_credentials
from gateway.security import xmldsig
from gateway.security.gost import x509 as gost_x509
from gateway.security.gost.keys import GOST2004, GOST2015
from tests.conftest import CONSUMER_BIN, ECHO_NS, echo_request, send_message, start_harness, stop_harness
from tests.gost_oracles import (OpenSSL, needs_gost34311, needs_openssl_gost, openssl_signed_envelope,
                                openssl_verifies_envelope)

pytestmark = needs_openssl_gost


@pytest_twisted.async_yield_fixture
async def gost_harness(tmp_path, pki):
    """A gateway that signs with its GOST 2015 certificate, as the real one does."""
    h = await start_harness(tmp_path, pki, signing_alg="gost2015")
    yield h
    await stop_harness(h)


@pytest.fixture
def openssl(tmp_path) -> OpenSSL:
    return OpenSSL(tmp_path)


def _consumer(pki, alg: str):
    return pki.cert(f"consumer-{alg}", bin=CONSUMER_BIN, alg=alg)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


async def _post_wss(harness, body: bytes) -> client.SyncReply:
    status, raw = await harness.post(body, url=harness.app.base_url + "/bip-sync-wss-gost/")
    return client.read_reply(status, raw)


@pytest.mark.parametrize("alg", ["gost2015", pytest.param("gost2004", marks=needs_gost34311)])
@pytest_twisted.ensureDeferred
async def test_openssl_signed_request_accepted_and_answer_verifies_with_openssl(gost_harness, pki, openssl, alg):
    issued = _consumer(pki, alg)
    request = openssl_signed_envelope(send_message(payload=echo_request("ГОСТ")), openssl, issued.key,
                                      _der(issued.cert))
    reply = await _post_wss(gost_harness, request)
    assert reply.ok, reply.fault
    assert reply.data.findtext(f"{{{ECHO_NS}}}EchoResponse/text") == "ГОСТ"

    gateway_cert = gost_harness.app.env.security.signing.certificate
    assert gateway_cert.signature_algorithm_oid.dotted_string == GOST2015.signature_oid
    gateway_key = gost_x509.public_key(gateway_cert)
    assert openssl_verifies_envelope(reply.raw, openssl, gateway_key)
    assert not openssl_verifies_envelope(reply.raw.replace("ГОСТ".encode(), b"GOST"), openssl, gateway_key)
    # What the provider got is GOST-signed by the gateway too, and our own verifier agrees with the engine.
    assert openssl_verifies_envelope(gost_harness.stub.received[-1], openssl, gateway_key)
    client.verify_reply_signature(reply.raw, gateway_cert)

    records = await gost_harness.app.run_in_pool(
        lambda: gost_harness.app.journal.query(session_id=reply.session_id, include_body=True))
    verdicts = {v["check"]: v for v in records[0]["verdicts"]}
    assert verdicts["verify_transport_signature"]["verdict"] == "pass"
    assert f"({alg})" in verdicts["verify_transport_signature"]["detail"]
    assert base64.b64decode(records[0]["body_base64"]) == redact_credentials(request)


def _flip_s(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def _swap(value: bytes) -> bytes:
    half = len(value) // 2
    return value[half:] + value[:half]


@pytest.mark.parametrize("case,code", [
    ("bit flip", "SHEP-186"), ("r‖s swapped", "SHEP-186"), ("wrong curve", "SHEP-186"),
    ("wrong digest URI", "SHEP-185"), ("unknown GOST URI", "SHEP-188")])
@pytest_twisted.ensureDeferred
async def test_refusals(gost_harness, pki, openssl, case, code):
    issued = _consumer(pki, "gost2015")
    options = {"bit flip": dict(tamper=_flip_s), "r‖s swapped": dict(tamper=_swap),
               # a GOST 2015/512 key's signature announced as GOST 34.310-2004 (another curve and hash)
               "wrong curve": dict(signature_uri=GOST2004.signature_uri),
               "wrong digest URI": dict(digest_uri=GOST2004.digest_uri),
               "unknown GOST URI": dict(signature_uri="urn:ietf:params:xml:ns:cpxmlsec:algorithms:"
                                                      "gostr34102012-gostr34112012-512")}[case]
    request = openssl_signed_envelope(send_message(), openssl, issued.key, _der(issued.cert), **options)
    reply = await _post_wss(gost_harness, request)
    assert not reply.ok
    assert reply.fault["errorCode"] == code, reply.fault


@pytest.mark.parametrize("alg", ["gost2015", pytest.param("gost2004", marks=needs_gost34311)])
@pytest_twisted.ensureDeferred
async def test_gost_payload_signature_required_and_checked(gost_harness, pki, openssl, alg):
    """ECHO_EDS requires an EDS on the business document: ours, in GOST, c14n#WithComments as GBDFL signs."""
    issued = _consumer(pki, alg)
    document = xmldsig.sign_document(echo_request("ЭЦП"), issued.key, issued.cert)
    signed_info = document.find(f".//{{{xmldsig.DS_NS}}}SignedInfo")
    value = base64.b64decode(document.findtext(f".//{{{xmldsig.DS_NS}}}SignatureValue"))
    assert openssl.verifies(issued.key.public_key(), value, etree.tostring(signed_info, method="c14n"))
    reply = await gost_harness.send(send_message(service_id="ECHO_EDS", payload=document))
    assert reply.ok, reply.fault
    tampered = etree.fromstring(etree.tostring(document))
    tampered.find("text").text = "changed"
    reply = await gost_harness.send(send_message(service_id="ECHO_EDS", payload=tampered))
    assert reply.fault["errorCode"] == "SHEP-198"
