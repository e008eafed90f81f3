"""Signed exchanges through the gateway over real HTTP: every hop verified, re-signed, and checked by libxmlsec1
(tests/xmlsec_oracle.py: the python-xmlsec wheel, and the xmlsec1 command where installed; the command signs)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import pytest_twisted
import zeep
from lxml import etree
from twisted.internet import threads

from gateway import client
from gateway.journal import redact_credentials
from gateway import contract as c
from gateway.security import wss
from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.issuerserial import CertificateIndex
from tests import xmlsec_oracle
from tests.conftest import (CONSUMER_BIN, ECHO_NS, OTHER_BIN, PASSWORD, PROVIDER_BIN, ProviderStub, echo_request,
                            send_message, start_harness, stop_harness)


def _signed(pki, *, name="consumer", alg="rsa", **message) -> bytes:
    issued = pki.cert(f"{name}-{alg}", bin=CONSUMER_BIN, alg=alg)
    return client.sign_request(send_message(**message), issued.key, issued.cert)


def _signing_provider(pki, bin_=PROVIDER_BIN):
    """A provider stub answer that echoes and signs with the provider's certificate."""
    provider = pki.cert(f"provider-{bin_}", bin=bin_)

    def answer(raw):
        status, body = ProviderStub.echo(raw)
        return status, wss.sign_envelope(body, provider.key, provider.cert)
    return answer


def _gateway_verifies(harness, raw: bytes) -> wss.VerifiedEnvelope:
    gateway_cert = harness.app.env.security.signing.certificate
    verified = wss.verify_envelope(raw, policy=AlgorithmPolicy(), now=datetime.now(timezone.utc),
                                   certificates=CertificateIndex([gateway_cert]).find)
    assert verified.certificate == gateway_cert
    return verified


def _xmlsec(raw: bytes, cert) -> xmlsec_oracle.Verdict:
    return xmlsec_oracle.verify(raw, cert=cert, ids=(("Id", c.BODY),))


@pytest.mark.parametrize("alg", ["rsa", "ec"])
@pytest_twisted.ensureDeferred
async def test_signed_round_trip_every_hop(harness, pki, tmp_path, alg):
    harness.stub.answer = _signing_provider(pki)
    request = _signed(pki, alg=alg, service_id="ECHO_SIGNED", payload=echo_request("подписано"))
    reply = await harness.send(request)
    assert reply.ok, reply.fault
    assert reply.data.findtext(f"{{{ECHO_NS}}}EchoResponse/text") == "подписано"

    # The provider got the gateway's signature (its own certificate), not the consumer's.
    forwarded = harness.stub.received[0]
    verified = _gateway_verifies(harness, forwarded)
    assert verified.body.find(f"{c.SEND_MESSAGE}/request/requestInfo/sessionId").text == reply.session_id
    # The caller gets an answer signed by the gateway.
    assert client.verify_reply_signature(reply.raw, harness.app.env.security.signing.certificate)
    # Software nobody here wrote agrees: libxmlsec1 verifies both messages the gateway signed.
    gateway_cert = harness.app.env.security.signing.certificate
    for raw in (forwarded, reply.raw):
        verdict = _xmlsec(raw, gateway_cert)
        assert verdict.ok, verdict.detail
    assert not _xmlsec(reply.raw.replace("подписано".encode(), "changed".encode()), gateway_cert).ok

    # The journal keeps the consumer's original signed bytes (its password redacted), and the verdicts.
    records = await harness.app.run_in_pool(
        lambda: harness.app.journal.query(session_id=reply.session_id, include_body=True))
    import base64
    assert base64.b64decode(records[0]["body_base64"]) == redact_credentials(request)
    verdicts = {v["check"]: v for v in records[0]["verdicts"]}
    assert verdicts["verify_transport_signature"]["verdict"] == "pass"
    assert "signed by" in verdicts["verify_transport_signature"]["detail"]
    assert verdicts["validate_certificate"]["verdict"] == "pass"
    assert {v["check"]: v["verdict"] for v in records[2]["verdicts"]}["verify_provider_signature"] == "pass"


@pytest_twisted.ensureDeferred
async def test_wss_address_requires_and_answers_signed(harness, pki):
    url = harness.app.base_url + "/bip-sync-wss-gost/"
    status, raw = await harness.post(send_message(), url=url)
    assert client.read_reply(status, raw).fault["errorCode"] == "SHEP-180"
    status, raw = await harness.post(_signed(pki, alg="ec"), url=url)
    reply = client.read_reply(status, raw)
    assert reply.ok, reply.fault
    client.verify_reply_signature(raw, harness.app.env.security.signing.certificate)
    # The provider does not sign here (the service does not require it): noted, not refused.
    _gateway_verifies(harness, harness.stub.received[-1])


@pytest_twisted.ensureDeferred
async def test_unsigned_exchange_on_plain_address_stays_unsigned(harness):
    reply = await harness.send(send_message())
    assert reply.ok
    for raw in (reply.raw, harness.stub.received[0]):
        assert etree.fromstring(raw).find(f"{c.HEADER}/{{{c.WSSE_NS}}}Security") is None
        assert b"Security" not in raw


@pytest.mark.parametrize("mode", ["crl", "ocsp"])
@pytest_twisted.ensureDeferred
async def test_revoked_certificate_is_refused_by_each_revocation_source(tmp_path, pki, mode):
    issued = pki.cert(f"revoked-{mode}", bin=CONSUMER_BIN)
    pki.pki.revoke(issued.serial, "key_compromise")
    harness = await start_harness(tmp_path, pki, revocation=mode)
    try:
        reply = await harness.send(client.sign_request(send_message(), issued.key, issued.cert))
        assert reply.fault["errorCode"] == "SHEP-193"
        assert mode.upper() in reply.fault["errorData"]
        assert harness.stub.received == []
        good = pki.cert("consumer-rsa", bin=CONSUMER_BIN)
        assert (await harness.send(client.sign_request(send_message(), good.key, good.cert))).ok
    finally:
        await stop_harness(harness)


@pytest.mark.parametrize("style", ["escaped", "inline"])
@pytest_twisted.ensureDeferred
async def test_payload_signature_travels_untouched(harness, pki, style):
    person = pki.cert("person-eds", kind="person")
    signed_payload = client.sign_payload(echo_request("ЭЦП"), person.key, person.cert)
    reply = await harness.send(send_message(service_id="ECHO_EDS", style=style, payload=signed_payload))
    assert reply.ok, reply.fault
    forwarded = etree.fromstring(harness.stub.received[0])
    data = forwarded.find(f".//{{{c.SYNC_NS}}}SendMessage/request/requestData/data")
    assert data.find(f".//{{{c.DS_NS}}}Signature") is not None or b"Signature" in (data.text or "").encode()


@pytest_twisted.ensureDeferred
async def test_provider_signing_with_another_organisation_is_refused(harness, pki):
    harness.stub.answer = _signing_provider(pki, bin_=OTHER_BIN)
    reply = await harness.send(_signed(pki, service_id="ECHO_SIGNED"))
    assert reply.fault["errorCode"] == "SHEP-208"
    assert reply.fault["subError"]["errorCode"] == "SHEP-196"


class SignerPlugin:
    """A zeep `wsse` object on our signer (library notes §4: not zeep.wsse.signature)."""

    def __init__(self, key, cert, gateway_cert):
        self.key, self.cert, self.gateway_cert = key, cert, gateway_cert
        self.verified = []

    def apply(self, envelope, headers):
        signed = client.sign_request(etree.tostring(envelope), self.key, self.cert)
        return etree.fromstring(signed), headers

    def verify(self, envelope):
        self.verified.append(client.verify_reply_signature(etree.tostring(envelope), self.gateway_cert))
        return envelope


@pytest_twisted.ensureDeferred
async def test_zeep_signed_round_trip(harness, pki):
    issued = pki.cert("consumer-rsa", bin=CONSUMER_BIN)
    signer = SignerPlugin(issued.key, issued.cert, harness.app.env.security.signing.certificate)

    def call():
        zeep_client = zeep.Client(f"{harness.app.base_url}/bip-sync/?wsdl", wsse=signer,
                                  settings=zeep.Settings(forbid_dtd=True))
        payload = zeep.xsd.AnyObject(zeep.xsd.String(), etree.tostring(echo_request("zeep"), encoding="unicode"))
        return zeep_client.service.SendMessage(request={
            "requestInfo": {"messageId": "zeep-signed-1", "serviceId": "ECHO_SIGNED",
                            "messageDate": datetime.now(timezone.utc),
                            "sender": {"senderId": "consumer", "password": PASSWORD}},
            "requestData": {"data": payload}})

    harness.stub.answer = _signing_provider(pki)
    response = await threads.deferToThread(call)
    assert response.responseInfo.status.code == "SCSS001"
    assert signer.verified and "161140016747" in signer.verified[0]


@pytest_twisted.ensureDeferred
async def test_a_present_payload_signature_is_verified_even_when_not_required(harness, pki):
    person = pki.cert("person-eds", kind="person")
    signed_payload = client.sign_payload(echo_request("original"), person.key, person.cert)
    assert (await harness.send(send_message(style="escaped", payload=signed_payload))).ok
    signed_payload.find("text").text = "altered"
    reply = await harness.send(send_message(style="escaped", payload=signed_payload))
    assert reply.fault["errorCode"] == "SHEP-198"
    assert len(harness.stub.received) == 1


@pytest.mark.parametrize("mode", ["crl", "ocsp"])
@pytest_twisted.ensureDeferred
async def test_a_revocation_next_to_the_gateway_counts_at_once(tmp_path, pki, mode):
    """`shep pki revoke` on the gateway's own test PKI empties its revocation cache: the next message of the
    revoked certificate is refused, though its "good" answer was cached for five minutes."""
    issued = pki.cert(f"revoked-later-{mode}", bin=CONSUMER_BIN)
    harness = await start_harness(tmp_path, pki, revocation=mode)
    try:
        assert (await harness.send(client.sign_request(send_message(), issued.key, issued.cert))).ok
        pki.pki.revoke(issued.serial, "key_compromise")
        reply = await harness.send(client.sign_request(send_message(), issued.key, issued.cert))
        assert reply.fault["errorCode"] == "SHEP-193", reply.fault
    finally:
        await stop_harness(harness)
