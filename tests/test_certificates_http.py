"""The certificates the gateway knows, over real HTTP: X509IssuerSerial key info resolved against the pinned
certificates, the test PKI's (issued by another process while it runs, too) and `gateway.certificate_dirs`,
all read at start-up; and CA certificates an integrator trusts with `shep pki trust add`.

The signatures under test are libxmlsec1's (tests/xmlsec_oracle.py: the xmlsec1 command where installed, else the
python-xmlsec wheel): it shares no code with the gateway and writes X509IssuerSerial itself, X509IssuerName as
OpenSSL spells it.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway import client
from gateway import contract as c
from gateway.config import ConfigError
from gateway.registry import Participant, Service
from gateway.security import xmldsig
from tests.conftest import (CONSUMER_BIN, ECHO_XSD, PASSWORD, PASSWORD_HASH, echo_request, send_message, start_harness,
                            stop_harness)
from tests.foreign_ca import gost_root_der, make_root, make_signer
from tests.serve_process import ServeProcess, shep
from tests.test_wss import ISSUER_SERIAL_INFO, Signer, dump, in_token_reference, one, parse, xmlsec_signed

WSS = "/bip-sync-wss-gost/"
START_TIMEOUT = 60
# The shipped configuration's consumer's BIN (gateway/defaults/shep.toml).
DEMO_BIN = "230540004989"


@pytest.fixture(scope="module")
def foreign():
    """A CA that is not the test PKI, and an organisation certificate of the consumer's BIN it issued."""
    root = make_root()
    return root, make_signer(root, CONSUMER_BIN)


def pem(path: Path, cert: x509.Certificate, encoding: Encoding = Encoding.PEM) -> Path:
    path.write_bytes(cert.public_bytes(encoding))
    return path


def issuer_serial_signed(signer: Signer, *, token_reference: bool = False, **message) -> bytes:
    signed = xmlsec_signed(signer, send_message(**message), key_info=ISSUER_SERIAL_INFO)
    return in_token_reference(signed) if token_reference else signed


async def send_wss(harness, raw: bytes) -> client.SyncReply:
    status, answer = await harness.post(raw, url=harness.app.base_url + WSS)
    return client.read_reply(status, answer)


# --- X509IssuerSerial --------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["rsa", "ec"])
@pytest_twisted.ensureDeferred
async def test_xmlsec_issuer_serial_of_a_test_pki_certificate_is_accepted(harness, pki, alg):
    issued = pki.cert(f"issuerserial-{alg}", bin=CONSUMER_BIN, alg=alg)  # issued after the gateway started
    signer = Signer(issued.key, issued.cert)
    for token_reference in (False, True):  # ds:X509Data in KeyInfo, or in a SecurityTokenReference as WSS4J
        reply = await send_wss(harness, issuer_serial_signed(signer, token_reference=token_reference))
        assert reply.ok, reply.fault
        assert reply.status_code == c.SUCCESS_STATUS
    assert len(harness.stub.received) == 2


@pytest_twisted.ensureDeferred
async def test_issuer_serial_naming_no_known_certificate_is_refused(harness, pki, foreign):
    _, stranger = foreign  # known nowhere: not pinned, not the test PKI's, in no certificate folder
    reply = await send_wss(harness, issuer_serial_signed(stranger))
    assert reply.fault["errorCode"] == "SHEP-181"
    assert "no known certificate for issuer CN=" in reply.fault["errorData"]
    assert f",C=KZ, serial {stranger.cert.serial_number}; send the certificate itself" in reply.fault["errorData"]

    # The test PKI's issuer, a serial it never issued.
    issued = pki.cert("issuerserial-rsa", bin=CONSUMER_BIN)
    root = parse(issuer_serial_signed(Signer(issued.key, issued.cert)))
    one(root, "//ds:X509SerialNumber").text = str(issued.serial + 1)  # KeyInfo is not signed
    reply = await send_wss(harness, dump(root))
    assert reply.fault["errorCode"] == "SHEP-181"
    assert f"serial {issued.serial + 1}" in reply.fault["errorData"]
    assert harness.stub.received == []


@pytest_twisted.ensureDeferred
async def test_pinned_certificate_resolves_on_the_first_message_after_start(tmp_path, pki, foreign):
    root, signer = foreign
    pinned = Participant("pinned", PASSWORD_HASH, None, certificate=pem(tmp_path / "pinned.pem", signer.cert))
    service = Service("ECHO_PINNED", provider="provider", channel="sync", payload_schema=ECHO_XSD,
                      timeout_seconds=5.0, allowed_senders=frozenset({"pinned"}), routes=frozenset(), strict=False)
    harness = await start_harness(tmp_path, pki, participants=[pinned], services=[service], revocation="none",
                                  trust_anchors=(pem(tmp_path / "root.pem", root.cert),))
    try:
        # The very first message this gateway sees names the pinned certificate only by issuer and serial.
        reply = await send_wss(harness, issuer_serial_signed(signer, token_reference=True,
                                                             service_id="ECHO_PINNED", sender_id="pinned"))
        assert reply.ok, reply.fault
    finally:
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_certificate_dirs_resolve_issuer_serial(tmp_path, pki, foreign):
    root, signer = foreign
    folder = tmp_path / "certificates"
    folder.mkdir()
    pem(folder / "consumer.cer", signer.cert, Encoding.DER)
    options = dict(revocation="none", trust_anchors=(pem(tmp_path / "root.pem", root.cert),))
    for state, dirs, verdict in (("without", (), "SHEP-181"), ("with", (folder,), None)):
        harness = await start_harness(tmp_path / state, pki, certificate_dirs=dirs, **options)
        try:
            reply = await send_wss(harness, issuer_serial_signed(signer))
            assert (reply.fault or {}).get("errorCode") == verdict, reply.fault
        finally:
            await stop_harness(harness)
    # A file there that holds no certificate stops the start, naming it.
    (folder / "notes.pem").write_text("-----BEGIN NOTHING-----\n")
    with pytest.raises(ConfigError, match=r"gateway.certificate_dirs: .*notes.pem: not a PEM or DER certificate"):
        await start_harness(tmp_path / "broken", pki, certificate_dirs=(folder,), **options)


@pytest_twisted.ensureDeferred
async def test_payload_signature_must_carry_its_certificate(harness, pki):
    """X509IssuerSerial alone is refused in a payload EDS even for a certificate the gateway knows: the document
    travels on to parties that verify it without the gateway's index (docs/signatures.md)."""
    person = pki.cert("person-eds", kind="person")
    signed = client.sign_payload(echo_request("ЭЦП"), person.key, person.cert)
    data = signed.find(f"{xmldsig.SIGNATURE}/{xmldsig.KEY_INFO}/{xmldsig.X509_DATA}")
    data.remove(data.find(xmldsig.X509_CERTIFICATE))
    data.append(parse(issuer_serial_of(person.cert)))
    reply = await harness.send(send_message(service_id="ECHO_EDS", style="escaped", payload=signed))
    assert reply.fault["errorCode"] == "SHEP-181"
    assert "carries its certificate" in reply.fault["errorData"]
    assert harness.stub.received == []


def issuer_serial_of(cert: x509.Certificate) -> bytes:
    return (f'<ds:X509IssuerSerial xmlns:ds="{c.DS_NS}"><ds:X509IssuerName>{cert.issuer.rfc4514_string()}'
            f'</ds:X509IssuerName><ds:X509SerialNumber>{cert.serial_number}</ds:X509SerialNumber>'
            '</ds:X509IssuerSerial>').encode()


def post(url: str, raw: bytes) -> client.SyncReply:
    request = urllib.request.Request(url, data=raw, headers={"Content-Type": "text/xml; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return client.read_reply(response.status, response.read())
    except urllib.error.HTTPError as error:
        return client.read_reply(error.code, error.read())


def test_certificate_issued_by_another_process_while_serving(tmp_path):
    state = str(tmp_path / "state")
    server = ServeProcess("--port", "0", "--state-dir", state, cwd=tmp_path, log=tmp_path / "serve.log")
    try:
        base = server.wait_listening(START_TIMEOUT)
        for alg in ("rsa", "ec"):
            issued = shep("pki", "issue", "--kind", "organization", "--alg", alg, "--usage", "sign", "--bin", DEMO_BIN,
                          "--out", str(tmp_path / alg), "--state-dir", state, cwd=tmp_path)
            assert issued.returncode == 0, issued.stderr
            key, cert = client.load_credentials(cert=str(tmp_path / alg / "cert.pem"),
                                                key=str(tmp_path / alg / "key.pem"))
            raw = xmlsec_signed(Signer(key, cert), client.build_send_message(
                service_id="DEMO_Echo", sender_id="demo-consumer", password="demo-consumer-pass",
                payload=echo_request("IssuerSerial")), key_info=ISSUER_SERIAL_INFO)
            reply = post(base + WSS, in_token_reference(raw))
            assert reply.ok and reply.status_code == c.SUCCESS_STATUS, (reply.fault, server.output())
        server.ensure_running("after the messages")
    finally:
        server.close()


# --- trust anchors an integrator brings -------------------------------------------------------------------

def test_trust_add_then_restart_accepts_a_foreign_ca(tmp_path):
    """A certificate of a CA that is not the test PKI: SHEP-190 until `shep pki trust add` and a restart. A GOST
    root in the same folder does not stop the start (cryptography cannot load GOST keys)."""
    root = make_root()
    signer = make_signer(root, CONSUMER_BIN)
    pem(tmp_path / "root.pem", root.cert)
    (tmp_path / "gost-root.cer").write_bytes(gost_root_der())
    pem(tmp_path / "signer.pem", signer.cert)
    signer.key_and_cert(tmp_path)  # signer.key.pem
    config = tmp_path / "shep.toml"
    config.write_text(f"""
        [gateway]
        revocation = "none"  # the foreign certificate carries no CRL or OCSP address
        [participants.consumer]
        password_hash = "{PASSWORD_HASH}"
        bin = "{CONSUMER_BIN}"
        [participants.echo]
        endpoint = "/demo/echo"
        [services.ECHO]
        provider = "echo"
        allowed_senders = ["consumer"]
    """.replace("\n        ", "\n"), "utf-8")
    state = ["--state-dir", str(tmp_path / "state")]
    echo = tmp_path / "echo.xml"
    echo.write_text('<e:EchoRequest xmlns:e="urn:shep-emulator:demo:echo"><text>trusted</text></e:EchoRequest>')

    def send(base: str):
        return shep("send", "--url", base + WSS, "--service", "ECHO", "--sender", "consumer", "--password", PASSWORD,
                    "--data", str(echo),
                    "--cert", str(tmp_path / "signer.pem"), "--key", str(tmp_path / "signer.key.pem"), cwd=tmp_path)

    for trusted in (False, True):
        server = ServeProcess("--config", str(config), "--port", "0", *state, cwd=tmp_path,
                              log=tmp_path / "serve.log")
        try:
            sent = send(server.wait_listening(START_TIMEOUT))
        finally:
            server.terminate()
            server.close()
        if not trusted:
            assert sent.returncode == 1 and "SHEP-190" in sent.stdout, sent.stdout + sent.stderr
            for name in ("root.pem", "gost-root.cer"):
                added = shep("pki", "trust", "add", name, *state, cwd=tmp_path)
                assert added.returncode == 0 and "trusted" in added.stdout, added.stdout + added.stderr
        else:
            assert sent.returncode == 0, sent.stdout + sent.stderr
            assert "SCSS001" in sent.stdout
