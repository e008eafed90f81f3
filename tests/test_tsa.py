"""The test PKI's RFC 3161 time-stamp authority and the gateway's token checks; OpenSSL agrees with both."""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import pytest_twisted
from asn1crypto import cms as asn1_cms
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway import timestamps
from gateway.timestamps import TimeStampResp
from gateway.security import cms
from gateway.security.gost.x509 import issued_by
from simulators.pki.ca import TestPKI
from simulators.pki.tsa import POLICY
from tests import system_tools
from tests.test_pki import http_post, web  # noqa: F401 (the HTTP fixture)

DATA = "контрольная точка журнала".encode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPKI:
    ca = TestPKI(tmp_path_factory.mktemp("state"))
    assert ca.init("http://pki.test:8080")
    return ca


def query(data: bytes = DATA, *, hash_name: str = "sha256", digest: bytes | None = None, **fields) -> bytes:
    return tsp.TimeStampReq({"version": "v1", "message_imprint": {
        "hash_algorithm": {"algorithm": hash_name},
        "hashed_message": digest if digest is not None else hashlib.new(hash_name, data).digest()},
        **fields}).dump()


def reply_status(der: bytes) -> tuple[str, set]:
    status = TimeStampResp.load(der)["status"]
    return status["status"].native, status["fail_info"].native or set()


@pytest.mark.parametrize("alg", ["rsa", "ec", "gost2015"])
def test_tsa_certificate_profile(pki, alg):
    cert = pki.tsa_certificate(alg)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert usage.critical and list(usage.value) == [ExtendedKeyUsageOID.TIME_STAMPING]  # RFC 3161 §2.3
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature and key_usage.content_commitment and not key_usage.key_cert_sign
    assert issued_by(cert, pki.issuing_ca(alg))
    assert pki.tsa_certificate(alg) == cert  # issued once
    assert [r["kind"] for r in pki.certificates() if r["serial"] == str(cert.serial_number)] == ["tsa"]


@pytest.mark.parametrize("alg", ["rsa", "ec", "gost2015"])
def test_token_is_granted_and_checked(pki, alg):
    token = timestamps.obtain(lambda der: pki.timestamp(der, alg), DATA)
    anchors, intermediates = pki.trust_anchors(), pki.intermediates()
    stamp = timestamps.check(token, DATA, anchors, intermediates)
    assert "TSA" in stamp.tsa and stamp.time.tzinfo is not None
    info = tsp.TSTInfo.load(cms.verify(token).content)
    assert info["policy"].native == POLICY and info["nonce"].native is not None
    with pytest.raises(timestamps.TimestampError, match="imprint is not of these bytes"):
        timestamps.check(token, DATA + b"!", anchors, intermediates)
    other_root = pki.root("gost2015" if alg != "gost2015" else "rsa")
    with pytest.raises(timestamps.TimestampError, match="does not chain to a trust anchor"):
        timestamps.check(token, DATA, [other_root], intermediates)
    # One byte of the signature flipped.
    info = asn1_cms.ContentInfo.load(token)
    signer = info["content"]["signer_infos"][0]
    value = bytearray(signer["signature"].native)
    value[len(value) // 2] ^= 1
    signer["signature"] = bytes(value)
    with pytest.raises(timestamps.TimestampError, match="does not verify"):
        timestamps.check(info.dump(), DATA, anchors, intermediates)


def test_a_token_by_a_certificate_that_is_no_tsa_is_refused(pki):
    """A SignedData over a TSTInfo is no time-stamp unless a timeStamping certificate signed it."""
    issued = pki.issue("organization", "rsa")
    token = TimeStampResp.load(pki.timestamp(query(cert_req=True), "rsa"))["time_stamp_token"]
    tst_info = token["content"]["encap_content_info"]["content"].contents
    forged = cms.sign(tst_info, issued.key, issued.cert, content_type="tst_info", ess_certificate=True,
                      certificates=(issued.cert, pki.issuing_ca("rsa")))
    with pytest.raises(timestamps.TimestampError, match="is not a TSA certificate"):
        timestamps.check(forged, DATA, pki.trust_anchors(), pki.intermediates())


def test_obtain_refuses_what_is_not_a_token_for_its_query(pki):
    with pytest.raises(timestamps.TimestampError, match="answered rejection"):
        timestamps.obtain(lambda der: pki.timestamp(b"junk"), DATA)
    with pytest.raises(timestamps.TimestampError, match="not for this query"):
        timestamps.obtain(lambda der: pki.timestamp(query(b"other data", cert_req=True)), DATA)
    with pytest.raises(timestamps.TimestampError, match="not a valid time-stamp"):
        timestamps.obtain(lambda der: b"<html>502</html>", DATA)


@pytest.mark.parametrize(("request_der", "failure"), [
    (b"\x30\x03\x02\x01\x01", "bad_data_format"),
    (query(hash_name="md5"), "bad_alg"),
    (query(digest=b"\x00" * 20), "bad_data_format"),
    (query(req_policy="1.2.3.4"), "unaccepted_policy"),
], ids=["not-a-request", "md5", "short-imprint", "other-policy"])
def test_tsa_refusals(pki, request_der, failure):
    assert reply_status(pki.timestamp(request_der)) == ("rejection", {failure})


def test_without_cert_req_the_token_carries_no_certificate(pki):
    token = TimeStampResp.load(pki.timestamp(query(), "ec"))["time_stamp_token"].dump()
    assert cms.verify(token, known=(pki.tsa_certificate("ec"),)).certificates == []
    with pytest.raises(cms.CMSError, match="neither carried nor known"):
        cms.verify(token)


# -- HTTP and OpenSSL ----------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([system_tools.require("openssl"), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("alg", ["rsa", "ec"])
async def test_openssl_query_reply_and_verify(pki, web, tmp_path, alg):  # noqa: F811
    """`openssl ts -query` sent to /pki/tsa/<alg>: OpenSSL reads the reply as granted and verifies it against
    the root, and refuses it for other data."""
    (tmp_path / "data").write_bytes(DATA)
    (tmp_path / "other").write_bytes(DATA + b"!")
    made = openssl("ts", "-query", "-data", "data", "-sha256", "-cert", "-out", "query.tsq", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    code, content_type, body = await http_post(f"{web}/pki/tsa/{alg}", (tmp_path / "query.tsq").read_bytes(),
                                               b"application/timestamp-query")
    assert (code, content_type) == (200, b"application/timestamp-reply")
    (tmp_path / "reply.tsr").write_bytes(body)
    shown = openssl("ts", "-reply", "-in", "reply.tsr", "-text", cwd=tmp_path)
    assert shown.returncode == 0 and "Status: Granted." in shown.stdout, shown.stdout + shown.stderr
    assert f"Policy OID: {POLICY}" in shown.stdout
    (tmp_path / "root.pem").write_bytes(pki.root(alg).public_bytes(Encoding.PEM))
    (tmp_path / "tsa.pem").write_bytes(pki.tsa_certificate(alg).public_bytes(Encoding.PEM)
                                       + pki.issuing_ca(alg).public_bytes(Encoding.PEM))
    trust = ["-CAfile", "root.pem", "-untrusted", "tsa.pem"]
    checked = openssl("ts", "-verify", "-data", "data", "-in", "reply.tsr", *trust, cwd=tmp_path)
    assert checked.returncode == 0 and "Verification: OK" in checked.stdout, checked.stdout + checked.stderr
    checked = openssl("ts", "-verify", "-queryfile", "query.tsq", "-in", "reply.tsr", *trust, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr  # the nonce and imprint of the query
    refused = openssl("ts", "-verify", "-data", "other", "-in", "reply.tsr", *trust, cwd=tmp_path)
    assert refused.returncode != 0 and "Verification: FAILED" in refused.stdout


@pytest_twisted.ensureDeferred
async def test_http_tsa_endpoint(pki, web):  # noqa: F811
    code, content_type, body = await http_post(f"{web}/pki/tsa", query(cert_req=True),
                                               b"application/timestamp-query")
    assert (code, content_type) == (200, b"application/timestamp-reply")
    assert reply_status(body) == ("granted", set())
    token = TimeStampResp.load(body)["time_stamp_token"].dump()
    assert cms.verify(token).signer == pki.tsa_certificate(pki.default_alg)
    code, _, body = await http_post(f"{web}/pki/tsa", b"junk", b"application/timestamp-query")
    assert code == 200 and reply_status(body) == ("rejection", {"bad_data_format"})
    assert (await http_post(f"{web}/pki/tsa", query(), b"application/ocsp-request"))[0] == 415
    assert (await http_post(f"{web}/pki/tsa", b"\x30" * (64 * 1024 + 1), b"application/timestamp-query"))[0] == 413
    assert (await http_post(f"{web}/pki/tsa/nope", query(), b"application/timestamp-query"))[0] == 404
