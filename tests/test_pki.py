"""The test national CA: profile of issued certificates, chains, CRL, OCSP, HTTP, OpenSSL's opinion, the CLI."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import urllib.parse
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_twisted
import treq
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError
from twisted.internet import reactor
from twisted.web import resource, server

from gateway.security import identity
from simulators.pki import profile
from simulators.pki.ca import NotInitialised, TestPKI
from simulators.pki.hierarchy import available
from simulators.pki.web import pki_resource
from tests import system_tools
from tests.foreign_ca import gost_root_der, make_root, make_signer

GOST2004_HERE = available("gost2004") is None

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://pki.test:8080"
MINISTRY = ("Министерство цифрового развития, инноваций и аэрокосмической промышленности "
            "Республики Казахстан")
SLUGS = {"rsa": "nca_rsa_test", "ec": "nca_ec_test"}
EMAIL, CLIENT = ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH
INDIVIDUAL, LEGAL = x509.ObjectIdentifier("1.2.398.3.3.4.1.1"), x509.ObjectIdentifier("1.2.398.3.3.4.1.2")
HEAD, EMPLOYEE = x509.ObjectIdentifier("1.2.398.3.3.4.1.2.1"), x509.ObjectIdentifier("1.2.398.3.3.4.1.2.5")
PEM = serialization.Encoding.PEM


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPKI:
    ca = TestPKI(tmp_path_factory.mktemp("state"))
    assert ca.init(BASE)
    return ca


def now() -> datetime:
    return datetime.now(timezone.utc)


def ext(cert: x509.Certificate, cls):
    return cert.extensions.get_extension_for_class(cls)


def subject_pairs(cert: x509.Certificate) -> list[tuple[str, str]]:
    return [(a.oid.dotted_string, a.value) for a in cert.subject]


def verify_chain(pki: TestPKI, cert: x509.Certificate, at: datetime | None = None) -> list[x509.Certificate]:
    ee_policy = ExtensionPolicy.permit_all().require_present(x509.KeyUsage, Criticality.AGNOSTIC, None)
    verifier = (PolicyBuilder().store(Store(pki.trust_anchors())).time(at or now())
                .extension_policies(ee_policy=ee_policy, ca_policy=ExtensionPolicy.webpki_defaults_ca())
                .build_client_verifier())
    return verifier.verify(cert, pki.intermediates()).chain


def verify_signature(key, signature: bytes, data: bytes, hash_algorithm) -> None:
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
    else:
        key.verify(signature, data, ec.ECDSA(hash_algorithm))


def checked_ocsp(der: bytes, ca_cert: x509.Certificate, serial: int, nonce: bytes | None) -> ocsp.OCSPResponse:
    """Parse and verify a response by hand: cryptography does not check OCSP signatures (library notes §8)."""
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    [responder] = response.certificates
    responder.verify_directly_issued_by(ca_cert)
    assert ExtendedKeyUsageOID.OCSP_SIGNING in ext(responder, x509.ExtendedKeyUsage).value
    assert response.responder_name is None
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
    verify_signature(responder.public_key(), response.signature, response.tbs_response_bytes,
                     response.signature_hash_algorithm)
    assert response.serial_number == serial
    assert response.this_update_utc <= now() + timedelta(seconds=1) < response.next_update_utc
    nonces = [e.value.nonce for e in response.extensions if isinstance(e.value, x509.OCSPNonce)]
    assert nonces == ([nonce] if nonce is not None else [])
    return response


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = b"nonce-1234567890",
                 algorithm: hashes.HashAlgorithm | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


# -- initialisation and the CA hierarchy ---------------------------------------------------------------


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns, stat.S_IMODE(p.stat().st_mode))
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_init_is_idempotent(tmp_path):
    first = TestPKI(tmp_path)
    assert not first.initialised()
    assert first.init("http://127.0.0.1:9999/") is True
    before = snapshot(tmp_path)
    assert first.init("http://other.example") is False
    assert TestPKI(tmp_path).init() is False
    assert snapshot(tmp_path) == before
    assert json.loads((tmp_path / "pki" / "config.json").read_text())["base_url"] == "http://127.0.0.1:9999"
    keys = [name.removeprefix("pki/") for name in before if name.endswith("key.pem")]
    # GOST 2004 only where its hash is (the OpenSSL GOST provider): a later init adds it (next test).
    issuing = ["nca_ec_test", "nca_gost2015_test", "nca_rsa_test"] + (["nca_gost2004_test"] if GOST2004_HERE else [])
    assert sorted(keys) == sorted([f"ca/{slug}/{part}key.pem" for slug in issuing for part in ("", "ocsp/")]
                                  + ["ca/root/key.pem", "ca/root_gost_test/key.pem", "gateway/key.pem"])
    assert all(before[f"pki/{name}"][2] == 0o600 for name in keys)
    kinds = sorted(r["kind"] for r in first.certificates())
    assert kinds == ["ca"] * len(issuing) + ["gateway"] + ["ocsp"] * len(issuing)


def test_init_adds_what_an_older_pki_lacks(tmp_path):
    """A PKI made before GOST keeps its CAs and certificates and gains the GOST hierarchy."""
    pki = TestPKI(tmp_path)
    pki.init("http://127.0.0.1:9999")
    issued = pki.issue("person", "rsa", "sign")
    for slug in ("root_gost_test", "nca_gost2015_test", "nca_gost2004_test"):
        shutil.rmtree(tmp_path / "pki" / "ca" / slug, ignore_errors=True)  # no GOST 2004 without its hash
    kept = {name: value for name, value in snapshot(tmp_path).items() if "gost" not in name and "index" not in name}
    pki.certificates()  # read the index as it is now
    index = json.loads((tmp_path / "pki" / "index.json").read_text())["certificates"]
    index = [r for r in index if "gost" not in r["issuer_slug"]]
    (tmp_path / "pki" / "index.json").write_text(json.dumps({"certificates": index}))
    again = TestPKI(tmp_path)
    assert again.init("http://other.example") is True
    after = snapshot(tmp_path)
    assert {name: after[name] for name in kept} == kept
    assert str(issued.serial) in {r["serial"] for r in again.certificates()}
    gost = again.issue("person", "gost2015", "sign")
    assert gost.cert.issuer == again.issuing_ca("gost2015").subject
    assert again.base_url == "http://127.0.0.1:9999"


def test_uninitialised_pki_says_so(tmp_path):
    empty = TestPKI(tmp_path)
    for call in (empty.certificates, empty.root, lambda: empty.issue("person"), lambda: empty.revoke(1),
                 lambda: empty.crl("nca_rsa_test"), lambda: empty.issuing_ca("rsa")):
        with pytest.raises(NotInitialised, match="shep pki init"):
            call()


def test_root_certificate(pki):
    root = pki.root()
    assert root.subject == root.issuer
    assert subject_pairs(root) == [("2.5.4.3", "ҰКО TEST ROOT"), ("2.5.4.6", "KZ")]
    root.verify_directly_issued_by(root)
    assert isinstance(root.public_key(), rsa.RSAPublicKey) and root.public_key().key_size == 2048
    bc = ext(root, x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = ext(root, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    assert ext(root, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(root.public_key())
    assert root.not_valid_after_utc - now() > timedelta(days=19 * 365)
    assert pki.trust_anchors() == [root, pki.root("gost2015")]


@pytest.mark.parametrize("alg, name, key_type", [("rsa", "ҰКО TEST (RSA)", rsa.RSAPublicKey),
                                                  ("ec", "ҰКО TEST (EC)", ec.EllipticCurvePublicKey)])
def test_issuing_cas_and_responders(pki, alg, name, key_type):
    ca, root = pki.issuing_ca(alg), pki.root()
    assert ca in pki.intermediates()
    assert subject_pairs(ca) == [("2.5.4.3", name), ("2.5.4.6", "KZ")]
    assert isinstance(ca.public_key(), key_type)
    if alg == "ec":
        assert ca.public_key().curve.name == "secp256r1"
    ca.verify_directly_issued_by(root)
    bc = ext(ca, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert ext(ca, x509.KeyUsage).value.key_cert_sign
    assert (ext(ca, x509.AuthorityKeyIdentifier).value.key_identifier
            == ext(root, x509.SubjectKeyIdentifier).value.digest)
    assert ext(ca, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(ca.public_key())
    responder = pki.ocsp_responder(alg)
    responder.verify_directly_issued_by(ca)
    assert ext(responder, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING])
    assert isinstance(ext(responder, x509.OCSPNoCheck).value, x509.OCSPNoCheck)
    assert not ext(responder, x509.BasicConstraints).value.ca
    assert pki.ca_certificate(SLUGS[alg]) == ca


def test_gateway_certificate(pki):
    directory = pki.dir / "gateway"
    assert pki.gateway_credentials() == (directory / "key.pem", directory / "cert.pem")
    key = serialization.load_pem_private_key((directory / "key.pem").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
    assert key.public_key() == cert.public_key()
    assert stat.S_IMODE((directory / "key.pem").stat().st_mode) == 0o600
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == MINISTRY
    assert identity.subject_bin(cert) == "161140016747"
    assert identity.is_valid_iin(identity.subject_iin(cert))
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert ext(cert, x509.KeyUsage).value.content_commitment
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [EMAIL, LEGAL, HEAD]
    cert.verify_directly_issued_by(pki.issuing_ca("rsa"))
    [record] = [r for r in pki.certificates() if r["kind"] == "gateway"]
    assert record["serial"] == str(cert.serial_number) and record["subject"]["bin"] == "161140016747"
    assert verify_chain(pki, cert)[0] == cert


# -- issued certificates ------------------------------------------------------------------------------

ROLES = {"person": [INDIVIDUAL], "employee": [LEGAL, EMPLOYEE], "organization": [LEGAL, HEAD],
         "gateway": [LEGAL, HEAD]}
POLICIES = {("person", "sign"): "1.2.398.3.3.2.3", ("person", "auth"): "1.2.398.3.3.2.4"}


@pytest.mark.parametrize("kind", profile.KINDS)
@pytest.mark.parametrize("alg", ["rsa", "ec"])
@pytest.mark.parametrize("usage", ["sign", "auth"])
def test_issued_certificate_profile(pki, kind, alg, usage):
    legal = kind != "person"
    org_fields = {"org": 'ТОО "Тест"', "bin": "230540004989"} if legal else {}
    issued = pki.issue(kind, alg, usage, iin="791028302728", surname="Тестов", name="Тест",
                       patronymic="Тестович", birth_date=date(1979, 10, 28), sex="M", **org_fields)
    cert = issued.cert
    assert issued.serial == cert.serial_number
    assert issued.key.public_key() == cert.public_key()
    expected = [("2.5.4.3", "ТЕСТОВ ТЕСТ"), ("2.5.4.4", "ТЕСТОВ"), ("2.5.4.5", "IIN791028302728"),
                ("2.5.4.6", "KZ"), ("2.5.4.42", "ТЕСТОВИЧ")]
    if legal:
        expected += [("2.5.4.10", 'ТОО "Тест"'), ("2.5.4.11", "BIN230540004989")]
    assert subject_pairs(cert) == expected
    assert cert.issuer == pki.issuing_ca(alg).subject
    cert.verify_directly_issued_by(pki.issuing_ca(alg))
    assert isinstance(cert.public_key(), rsa.RSAPublicKey if alg == "rsa" else ec.EllipticCurvePublicKey)

    ku = ext(cert, x509.KeyUsage)
    assert ku.critical
    assert (ku.value.digital_signature, ku.value.content_commitment, ku.value.key_encipherment) == (
        (True, True, False) if usage == "sign" else (True, False, True))
    assert not (ku.value.key_cert_sign or ku.value.crl_sign or ku.value.key_agreement or ku.value.data_encipherment)
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [EMAIL if usage == "sign" else CLIENT, *ROLES[kind]]
    default_policy = "1.2.398.3.3.2.1" if usage == "sign" else "1.2.398.3.3.2.2"
    [policy] = ext(cert, x509.CertificatePolicies).value
    assert policy.policy_identifier.dotted_string == POLICIES.get((kind, usage), default_policy)
    assert not ext(cert, x509.BasicConstraints).value.ca

    [dp] = ext(cert, x509.CRLDistributionPoints).value
    assert [n.value for n in dp.full_name] == [f"{BASE}/pki/crl/{SLUGS[alg]}.crl"]
    access = [(a.access_method, a.access_location.value) for a in ext(cert, x509.AuthorityInformationAccess).value]
    assert access == [(AuthorityInformationAccessOID.OCSP, f"{BASE}/pki/ocsp"),
                      (AuthorityInformationAccessOID.CA_ISSUERS, f"{BASE}/pki/ca/{SLUGS[alg]}.cer")]
    assert (ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier
            == ext(pki.issuing_ca(alg), x509.SubjectKeyIdentifier).value.digest)

    assert cert.not_valid_before_utc <= now() < cert.not_valid_after_utc
    assert timedelta(days=364) < cert.not_valid_after_utc - now() <= timedelta(days=365)
    assert identity.subject_iin(cert) == "791028302728"
    assert identity.subject_bin(cert) == ("230540004989" if legal else None)
    [record] = [r for r in pki.certificates() if r["serial"] == str(cert.serial_number)]
    assert {k: record[k] for k in ("kind", "alg", "usage", "status", "issuer", "revoked_at", "reason")} == {
        "kind": kind, "alg": alg, "usage": usage, "status": "good", "issuer": pki.issuing_ca(alg).subject
        .get_attributes_for_oid(NameOID.COMMON_NAME)[0].value, "revoked_at": None, "reason": None}
    assert record["subject"] == {"cn": "ТЕСТОВ ТЕСТ", "iin": "791028302728", "org": org_fields.get("org"),
                                 "bin": org_fields.get("bin")}
    assert record["not_after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (pki.dir / "certs" / f"{cert.serial_number}.pem").read_bytes() == cert.public_bytes(PEM)
    assert len(verify_chain(pki, cert)) == 3


def test_generated_subjects_are_consistent(pki):
    for seed in range(12):
        cert = pki.issue("employee", "ec", "sign", birth_date=date(2001, 2, 3), sex="F",
                         rng=random.Random(seed)).cert
        iin = identity.subject_iin(cert)
        assert identity.is_valid_iin(iin) and identity.iin_birth_date_and_sex(iin) == (date(2001, 2, 3), "F")
        assert identity.is_valid_bin(identity.subject_bin(cert))
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        surname = cert.subject.get_attributes_for_oid(NameOID.SURNAME)[0].value
        patronymic = cert.subject.get_attributes_for_oid(NameOID.GIVEN_NAME)[0].value
        assert cn == cn.upper() and cn.startswith(surname + " ")
        assert surname.endswith("А") and patronymic.endswith("ОВНА")  # female forms
        assert all("А" <= ch <= "я" or ch in " Ё" for ch in cn)  # Cyrillic only


def test_gateway_kind_defaults(pki):
    cert = pki.issue("gateway").cert
    assert identity.subject_bin(cert) == "161140016747"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == MINISTRY
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and ext(cert, x509.KeyUsage).value.content_commitment


def test_expired_and_not_yet_valid(pki):
    expired = pki.issue("person", "rsa", "sign", expired=True, valid_days=30).cert
    assert expired.not_valid_after_utc < now()
    assert expired.not_valid_after_utc - expired.not_valid_before_utc == timedelta(days=30)
    future = pki.issue("person", "ec", "auth", not_yet_valid=True, valid_days=10).cert
    assert future.not_valid_before_utc > now()
    assert future.not_valid_after_utc - future.not_valid_before_utc == timedelta(days=10)
    for cert in (expired, future):
        with pytest.raises(VerificationError):
            verify_chain(pki, cert)
        # Inside its own validity the certificate chains: the CAs were back-dated for this.
        middle = cert.not_valid_before_utc + (cert.not_valid_after_utc - cert.not_valid_before_utc) / 2
        assert len(verify_chain(pki, cert, at=middle)) == 3
    with pytest.raises(ValueError, match="both"):
        pki.issue("person", expired=True, not_yet_valid=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "person", "iin": "123456789011"}, "check digit"),
    ({"kind": "person", "iin": "900101300800"}, "check digit"),
    ({"kind": "person", "iin": "79102830272"}, "check digit"),
    ({"kind": "employee", "bin": "230540004988"}, "check digit"),
    ({"kind": "person", "iin": "791028302728", "birth_date": date(1979, 10, 29)}, "birth date"),
    ({"kind": "person", "iin": "791028302728", "sex": "F"}, "sex"),
    ({"kind": "person", "iin": "840317000029", "sex": "M"}, "cannot agree"),
    ({"kind": "person", "bin": "230540004989"}, "person"),
    ({"kind": "person", "org": 'ТОО "Тест"'}, "person"),
    ({"kind": "robot"}, "kind"),
    ({"kind": "person", "alg": "gost"}, "alg"),
    ({"kind": "person", "usage": "encrypt"}, "usage"),
    ({"kind": "person", "sex": "X"}, "sex"),
    ({"kind": "person", "valid_days": 0}, "valid_days"),
])
def test_issue_rejects_bad_input(pki, kwargs, message):
    before = len(pki.certificates())
    with pytest.raises(ValueError, match=message):
        pki.issue(**kwargs)
    assert len(pki.certificates()) == before


def test_unassigned_century_iin_is_accepted_alone(pki):
    cert = pki.issue("person", iin="840317000029").cert
    assert identity.subject_iin(cert) == "840317000029"


def test_chain_does_not_verify_against_another_root(pki, tmp_path):
    other = TestPKI(tmp_path)
    other.init(BASE)
    cert = other.issue("person").cert
    with pytest.raises(VerificationError):
        verify_chain(pki, cert)


# -- revocation: CRL and OCSP -------------------------------------------------------------------------


def load_crl(pki: TestPKI, slug: str) -> x509.CertificateRevocationList:
    crl = x509.load_der_x509_crl(pki.crl(slug))
    assert crl.is_signature_valid(pki.ca_certificate(slug).public_key())
    return crl


@pytest.mark.parametrize("alg", ["rsa", "ec"])
def test_revoke_then_crl_lists_it(pki, alg):
    slug = SLUGS[alg]
    good = pki.issue("person", alg).cert
    bad = pki.issue("employee", alg).cert
    plain = pki.issue("person", alg).cert
    record = pki.revoke(bad.serial_number, "key_compromise")
    assert record["status"] == "revoked" and record["reason"] == "key_compromise"
    pki.revoke(str(plain.serial_number))
    crl = load_crl(pki, slug)
    assert crl.issuer == pki.issuing_ca(alg).subject
    assert crl.get_revoked_certificate_by_serial_number(good.serial_number) is None
    entry = crl.get_revoked_certificate_by_serial_number(bad.serial_number)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert abs(entry.revocation_date_utc - now()) < timedelta(minutes=1)
    # RFC 5280 §5.3.1: no reason code rather than "unspecified".
    unspecified = crl.get_revoked_certificate_by_serial_number(plain.serial_number)
    assert len(unspecified.extensions) == 0
    assert crl.next_update_utc - crl.last_update_utc == timedelta(days=1)
    assert abs(crl.last_update_utc - now()) < timedelta(minutes=1)
    assert (crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
            == ext(pki.issuing_ca(alg), x509.SubjectKeyIdentifier).value.digest)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert load_crl(pki, slug).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number
    other = load_crl(pki, SLUGS["ec" if alg == "rsa" else "rsa"])
    assert other.get_revoked_certificate_by_serial_number(bad.serial_number) is None
    assert list(load_crl(pki, "root")) == []
    [stored] = [r for r in pki.certificates() if r["serial"] == str(bad.serial_number)]
    assert stored["status"] == "revoked" and stored["revoked_at"]


def test_revoke_errors(pki):
    cert = pki.issue("person").cert
    with pytest.raises(KeyError, match="no certificate with serial 12345"):
        pki.revoke(12345)
    with pytest.raises(ValueError, match="unknown revocation reason"):
        pki.revoke(cert.serial_number, "bored")
    with pytest.raises(ValueError, match="unknown revocation reason"):
        pki.revoke(cert.serial_number, "remove_from_crl")
    with pytest.raises(ValueError, match="decimal"):
        pki.revoke("0xabc")
    pki.revoke(cert.serial_number, "superseded")
    with pytest.raises(ValueError, match="already revoked"):
        pki.revoke(cert.serial_number, "key_compromise")
    assert pki.revoke(pki.issue("person").serial, "cessationOfOperation")["reason"] == "cessation_of_operation"
    with pytest.raises(KeyError):
        pki.crl("nca_gost_test")


@pytest.mark.parametrize("alg", ["rsa", "ec"])
def test_ocsp_good_revoked_unknown(pki, alg):
    ca = pki.issuing_ca(alg)
    good = pki.issue("person", alg).cert
    revoked = pki.issue("organization", alg, "auth").cert
    pki.revoke(revoked.serial_number, "affiliation_changed")

    response = checked_ocsp(pki.ocsp(ocsp_request(good, ca)), ca, good.serial_number, b"nonce-1234567890")
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.certificates == [pki.ocsp_responder(alg)]

    response = checked_ocsp(pki.ocsp(ocsp_request(revoked, ca, nonce=None)), ca, revoked.serial_number, None)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason == x509.ReasonFlags.affiliation_changed
    assert abs(response.revocation_time_utc - now()) < timedelta(minutes=1)

    stranger = (ocsp.OCSPRequestBuilder()
                .add_certificate_by_hash(response.issuer_name_hash, response.issuer_key_hash, 424242, hashes.SHA1())
                .build().public_bytes(serialization.Encoding.DER))
    response = checked_ocsp(pki.ocsp(stranger), ca, 424242, None)
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN

    # SHA-256 CertIDs are answered in kind.
    response = checked_ocsp(pki.ocsp(ocsp_request(good, ca, algorithm=hashes.SHA256())), ca, good.serial_number,
                            b"nonce-1234567890")
    assert response.hash_algorithm.name == "sha256" and response.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_ocsp_serial_of_the_other_ca_is_unknown(pki):
    cert = pki.issue("person", "rsa").cert
    ec_issued = ocsp.load_der_ocsp_request(ocsp_request(pki.issue("person", "ec").cert, pki.issuing_ca("ec")))
    # The right serial under the wrong issuer must not be answered "good".
    request = (ocsp.OCSPRequestBuilder()
               .add_certificate_by_hash(ec_issued.issuer_name_hash, ec_issued.issuer_key_hash, cert.serial_number,
                                        hashes.SHA1())
               .build().public_bytes(serialization.Encoding.DER))
    response = checked_ocsp(pki.ocsp(request), pki.issuing_ca("ec"), cert.serial_number, None)
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    # A mixed CertID (one CA's name, the other's key) names no issuer of ours.
    mixed = ocsp.load_der_ocsp_response(pki.ocsp(ocsp_request(cert, pki.issuing_ca("ec"))))
    assert mixed.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_ocsp_signature_check_can_fail(pki):
    cert = pki.issue("person", "rsa").cert
    der = bytearray(pki.ocsp(ocsp_request(cert, pki.issuing_ca("rsa"))))
    response = ocsp.load_der_ocsp_response(bytes(der))
    position = bytes(der).index(response.signature) + 10
    der[position] ^= 0x01
    with pytest.raises(InvalidSignature):
        checked_ocsp(bytes(der), pki.issuing_ca("rsa"), cert.serial_number, b"nonce-1234567890")


def test_ocsp_refusals(pki):
    for garbage in (b"", b"not DER at all", b"\x30\x03\x02\x01\x01"):
        assert ocsp.load_der_ocsp_response(pki.ocsp(garbage)).response_status == \
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    foreign = (ocsp.OCSPRequestBuilder()
               .add_certificate_by_hash(b"\x01" * 20, b"\x02" * 20, 1, hashes.SHA1()).build()
               .public_bytes(serialization.Encoding.DER))
    assert ocsp.load_der_ocsp_response(pki.ocsp(foreign)).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_a_second_instance_sees_revocations(pki):
    cert = pki.issue("person", "ec").cert
    ca = pki.issuing_ca("ec")
    request = ocsp_request(cert, ca)
    assert load_crl(pki, "nca_ec_test").get_revoked_certificate_by_serial_number(cert.serial_number) is None
    assert checked_ocsp(pki.ocsp(request), ca, cert.serial_number,
                        b"nonce-1234567890").certificate_status == ocsp.OCSPCertStatus.GOOD
    TestPKI(pki.dir.parent).revoke(cert.serial_number, "key_compromise")  # as `shep pki revoke` would
    assert load_crl(pki, "nca_ec_test").get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert checked_ocsp(pki.ocsp(request), ca, cert.serial_number,
                        b"nonce-1234567890").certificate_status == ocsp.OCSPCertStatus.REVOKED
    # And the other way round: what the first instance issues, a fresh one lists.
    issued = pki.issue("person")
    assert str(issued.serial) in {r["serial"] for r in TestPKI(pki.dir.parent).certificates()}


# -- HTTP ---------------------------------------------------------------------------------------------


@pytest_twisted.async_yield_fixture
async def web(pki):
    root = resource.Resource()
    root.putChild(b"pki", pki_resource(pki))
    port = reactor.listenTCP(0, server.Site(root), interface="127.0.0.1")
    yield f"http://127.0.0.1:{port.getHost().port}"
    await port.stopListening()


async def http_get(url: str) -> tuple[int, bytes, bytes]:
    response = await treq.get(url, persistent=False)
    return response.code, (response.headers.getRawHeaders(b"content-type") or [b""])[0], await response.content()


async def http_post(url: str, body: bytes, content_type: bytes = b"application/ocsp-request"):
    response = await treq.post(url, data=body, headers={b"Content-Type": [content_type]}, persistent=False)
    return response.code, (response.headers.getRawHeaders(b"content-type") or [b""])[0], await response.content()


@pytest_twisted.ensureDeferred
async def test_http_crl_and_ca_certificates(pki, web):
    cert = pki.issue("person", "rsa").cert
    pki.revoke(cert.serial_number, "key_compromise")
    code, content_type, body = await http_get(f"{web}/pki/crl/nca_rsa_test.crl")
    assert (code, content_type) == (200, b"application/pkix-crl")
    crl = x509.load_der_x509_crl(body)
    assert crl.is_signature_valid(pki.issuing_ca("rsa").public_key())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    for slug, expected in (("root", pki.root()), ("nca_rsa_test", pki.issuing_ca("rsa")),
                           ("nca_ec_test", pki.issuing_ca("ec"))):
        code, content_type, body = await http_get(f"{web}/pki/ca/{slug}.cer")
        assert (code, content_type) == (200, b"application/pkix-cert")
        assert x509.load_der_x509_certificate(body) == expected
    for path in ("/pki/crl/nope.crl", "/pki/ca/nope.cer", "/pki/crl/nca_rsa_test", "/pki/elsewhere", "/pki/",
                 "/pki/ocsp"):
        assert (await http_get(f"{web}{path}"))[0] == 404, path


@pytest_twisted.ensureDeferred
async def test_http_ocsp_post_and_get(pki, web):
    ca = pki.issuing_ca("rsa")
    good, revoked = pki.issue("person", "rsa").cert, pki.issue("person", "rsa").cert
    pki.revoke(revoked.serial_number, "key_compromise")
    request = ocsp_request(good, ca)
    code, content_type, body = await http_post(f"{web}/pki/ocsp", request)
    assert (code, content_type) == (200, b"application/ocsp-response")
    assert checked_ocsp(body, ca, good.serial_number,
                        b"nonce-1234567890").certificate_status == ocsp.OCSPCertStatus.GOOD

    # RFC 6960 A.1: GET with the base64 request URL-escaped, or raw, or in the URL-safe alphabet.
    request = ocsp_request(revoked, ca, nonce=b"\xfb\xff" * 8)  # bytes that give "+" and "/" in base64
    standard = base64.b64encode(request).decode()
    assert "/" in standard and "+" in standard
    for encoded in (urllib.parse.quote(standard, safe=""), standard, base64.urlsafe_b64encode(request).decode()
                    .rstrip("=")):
        code, content_type, body = await http_get(f"{web}/pki/ocsp/{encoded}")
        assert (code, content_type) == (200, b"application/ocsp-response"), encoded
        assert checked_ocsp(body, ca, revoked.serial_number,
                            b"\xfb\xff" * 8).certificate_status == ocsp.OCSPCertStatus.REVOKED

    code, _, body = await http_get(f"{web}/pki/ocsp/%%%not-base64")
    assert code == 200
    assert ocsp.load_der_ocsp_response(body).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    code, _, body = await http_post(f"{web}/pki/ocsp", b"junk")
    assert ocsp.load_der_ocsp_response(body).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert (await http_post(f"{web}/pki/ocsp", request, b"text/plain"))[0] == 415
    assert (await http_post(f"{web}/pki/ocsp", b"\x30" * (64 * 1024 + 1)))[0] == 413
    assert (await http_post(f"{web}/pki/crl/nca_rsa_test.crl", request))[0] == 404


@pytest_twisted.ensureDeferred
async def test_http_uninitialised_pki(tmp_path):
    root = resource.Resource()
    root.putChild(b"pki", pki_resource(TestPKI(tmp_path)))
    port = reactor.listenTCP(0, server.Site(root), interface="127.0.0.1")
    try:
        code, _, body = await http_get(f"http://127.0.0.1:{port.getHost().port}/pki/crl/root.crl")
        assert code == 503 and b"shep pki init" in body
    finally:
        await port.stopListening()


# -- OpenSSL agrees -----------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([system_tools.require("openssl"), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def write_pem(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(PEM))


@pytest.mark.parametrize("alg", ["rsa", "ec"])
def test_openssl_verify_with_crl(pki, tmp_path, alg):
    good, bad = pki.issue("person", alg).cert, pki.issue("employee", alg, "auth").cert
    pki.revoke(bad.serial_number, "key_compromise")
    write_pem(tmp_path / "root.pem", pki.root())
    write_pem(tmp_path / "issuing.pem", pki.issuing_ca(alg))
    write_pem(tmp_path / "good.pem", good)
    write_pem(tmp_path / "bad.pem", bad)
    crls = b"".join(x509.load_der_x509_crl(pki.crl(slug)).public_bytes(PEM) for slug in (SLUGS[alg], "root"))
    (tmp_path / "crl.pem").write_bytes(crls)
    common = ["-CAfile", "root.pem", "-untrusted", "issuing.pem", "-CRLfile", "crl.pem"]
    result = openssl("verify", "-crl_check", *common, "good.pem", cwd=tmp_path)
    assert result.returncode == 0 and "good.pem: OK" in result.stdout, result.stdout + result.stderr
    result = openssl("verify", "-crl_check_all", *common, "good.pem", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    result = openssl("verify", "-crl_check", *common, "bad.pem", cwd=tmp_path)
    assert result.returncode != 0 and "certificate revoked" in result.stdout + result.stderr


@pytest_twisted.ensureDeferred
async def test_openssl_ocsp(pki, web, tmp_path):
    for alg in ("rsa", "ec"):
        good, bad = pki.issue("person", alg).cert, pki.issue("person", alg, "auth").cert
        pki.revoke(bad.serial_number, "ca_compromise")
        write_pem(tmp_path / "root.pem", pki.root())
        write_pem(tmp_path / "issuing.pem", pki.issuing_ca(alg))
        for name, cert, status in (("good", good, "good"), ("bad", bad, "revoked")):
            write_pem(tmp_path / f"{name}.pem", cert)
            built = openssl("ocsp", "-issuer", "issuing.pem", "-cert", f"{name}.pem", "-reqout", "req.der",
                            cwd=tmp_path)
            assert built.returncode == 0, built.stderr
            code, _, body = await http_post(f"{web}/pki/ocsp", (tmp_path / "req.der").read_bytes())
            assert code == 200
            (tmp_path / "resp.der").write_bytes(body)
            # Against OpenSSL's own request: signature, responder authorisation and the nonce.
            checked = openssl("ocsp", "-reqin", "req.der", "-respin", "resp.der", "-CAfile", "root.pem",
                              "-verify_other", "issuing.pem", cwd=tmp_path)
            assert checked.returncode == 0 and "Response verify OK" in checked.stderr, checked.stderr
            assert "Nonce" not in checked.stdout + checked.stderr
            # And the status of the certificate as OpenSSL reads it.
            shown = openssl("ocsp", "-respin", "resp.der", "-issuer", "issuing.pem", "-cert", f"{name}.pem",
                            "-CAfile", "root.pem", "-verify_other", "issuing.pem", "-no_nonce", "-resp_text",
                            cwd=tmp_path)
            assert shown.returncode == 0, shown.stderr
            assert "Response verify OK" in shown.stderr
            assert f"{name}.pem: {status}" in shown.stdout, shown.stdout
            if status == "revoked":
                assert "Reason: cACompromise" in shown.stdout


# -- the CLI ------------------------------------------------------------------------------------------

HARNESS = """
import argparse, sys
from simulators.pki import cli

def common(p):
    p.add_argument("--config"); p.add_argument("--state-dir"); p.add_argument("--store-url")

top = argparse.ArgumentParser(prog="shep")
cli.register(top.add_subparsers(dest="command", required=True), common)
args = top.parse_args()
sys.exit(args.func(args))
"""


def pki_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run([sys.executable, "-c", HARNESS, "pki", *args], cwd=cwd, capture_output=True, text=True,
                            encoding="utf-8", timeout=120, env=env)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def complaints(result: subprocess.CompletedProcess) -> list[str]:
    """stderr but for the line every command starts with, saying which state dir it uses."""
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("state dir: "), result.stderr
    return lines[1:]


def test_cli(tmp_path):
    state = ["--state-dir", str(tmp_path / "state")]
    result = pki_cli("list", *state, cwd=tmp_path)
    assert result.returncode == 2 and len(complaints(result)) == 1
    assert f"state dir {tmp_path / 'state'} does not exist (from --state-dir)" in result.stderr
    assert not (tmp_path / "state").exists()
    (tmp_path / "state").mkdir()
    result = pki_cli("list", *state, cwd=tmp_path)
    assert result.returncode == 2 and "not initialised" in result.stderr and len(complaints(result)) == 1

    result = pki_cli("init", *state, "--base-url", "http://gw.test:9000", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    before = snapshot(tmp_path / "state")
    result = pki_cli("init", *state, cwd=tmp_path)
    assert result.returncode == 0 and "already" in result.stdout
    assert snapshot(tmp_path / "state") == before

    out = tmp_path / "out"
    result = pki_cli("issue", *state, "--kind", "employee", "--alg", "ec", "--usage", "auth", "--iin", "061211600012",
                     "--bin", "081140000436", "--org", 'ТОО "Тест"', "--surname", "Тестова", "--name", "Алия",
                     "--patronymic", "Сериковна", "--birth-date", "2006-12-11", "--sex", "F", "--out", str(out),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "shep-test" in result.stdout
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), None)
    assert key.public_key() == cert.public_key()
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    assert identity.subject_iin(cert) == "061211600012" and identity.subject_bin(cert) == "081140000436"
    p12_key, p12_cert, p12_chain = pkcs12.load_key_and_certificates((out / "cert.p12").read_bytes(), b"shep-test")
    assert p12_cert == cert and p12_key.public_key() == cert.public_key()
    ca = TestPKI(tmp_path / "state")
    assert p12_chain == [ca.issuing_ca("ec"), ca.root()]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates((out / "cert.p12").read_bytes(), b"wrong")
    assert [dp.full_name[0].value for dp in ext(cert, x509.CRLDistributionPoints).value] == [
        "http://gw.test:9000/pki/crl/nca_ec_test.crl"]

    result = pki_cli("issue", *state, "--kind", "person", "--alg", "rsa", "--usage", "sign", "--expired",
                     "--out", str(tmp_path / "old"), "--p12-password", "пароль", cwd=tmp_path)
    assert result.returncode == 0 and "shep-test" not in result.stdout
    old = x509.load_pem_x509_certificate((tmp_path / "old" / "cert.pem").read_bytes())
    assert old.not_valid_after_utc < now()
    assert pkcs12.load_key_and_certificates((tmp_path / "old" / "cert.p12").read_bytes(), "пароль".encode())[1] == old

    result = pki_cli("issue", *state, "--kind", "person", "--alg", "rsa", "--usage", "sign", "--iin", "123456789011",
                     "--out", str(tmp_path / "bad"), cwd=tmp_path)
    assert result.returncode == 2 and "check digit" in result.stderr and len(complaints(result)) == 1
    assert not (tmp_path / "bad").exists()

    result = pki_cli("revoke", *state, "--serial", "12345", cwd=tmp_path)
    assert result.returncode == 2 and "no certificate with serial 12345" in result.stderr
    assert len(complaints(result)) == 1
    result = pki_cli("revoke", *state, "--serial", str(cert.serial_number), "--reason", "key_compromise", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result = pki_cli("revoke", *state, "--serial", str(cert.serial_number), cwd=tmp_path)
    assert result.returncode == 2 and "already revoked" in result.stderr

    result = pki_cli("list", *state, cwd=tmp_path)
    assert result.returncode == 0
    line = next(x for x in result.stdout.splitlines() if x.startswith(str(cert.serial_number)))
    assert "revoked" in line and "key_compromise" in line and "ТЕСТОВА АЛИЯ" in line
    cas = 4 if GOST2004_HERE else 3
    assert f"{2 * cas + 3} certificate(s)" in result.stdout
    records = json.loads(pki_cli("list", *state, "--json", cwd=tmp_path).stdout)
    assert [r["kind"] for r in records] == ["ca", "ocsp"] * cas + ["gateway", "employee", "person"]
    assert records[-2]["status"] == "revoked" and records[-2]["serial"] == str(cert.serial_number)


def test_cli_issue_refuses_to_make_a_new_ca(tmp_path):
    """A CA made by `issue` in the wrong state dir would sign what no server trusts (SHEP-190 at the next send):
    only `init` (or `shep serve`) makes one."""
    state = ["--state-dir", str(tmp_path / "state")]
    issue = ("issue", *state, "--kind", "organization", "--alg", "rsa", "--usage", "sign", "--out", "org")
    result = pki_cli(*issue, cwd=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr, result.stderr
    (tmp_path / "state").mkdir()
    result = pki_cli(*issue, cwd=tmp_path)
    assert result.returncode == 2 and "no test PKI in" in result.stderr and "`shep pki init`" in result.stderr
    assert not (tmp_path / "state" / "pki").exists() and not (tmp_path / "org").exists()

    assert pki_cli("init", *state, cwd=tmp_path).returncode == 0
    result = pki_cli(*issue, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ca = TestPKI(tmp_path / "state")
    assert ca.base_url == "http://127.0.0.1:8080"
    cert = x509.load_pem_x509_certificate((tmp_path / "org" / "cert.pem").read_bytes())
    cert.verify_directly_issued_by(ca.issuing_ca("rsa"))


def test_cli_trust_add_list_remove(tmp_path):
    state = ["--state-dir", str(tmp_path / "state")]
    folder = tmp_path / "state" / "pki" / "trusted"
    root, other = make_root(), make_root("ANOTHER TEST ROOT")
    files = {"root.pem": root.cert.public_bytes(serialization.Encoding.PEM), "gost.cer": gost_root_der(),
             "leaf.pem": make_signer(root, "230540004989").cert.public_bytes(serialization.Encoding.PEM),
             "not-a-certificate.cer": b"hello"}
    files["bundle.pem"] = other.cert.public_bytes(serialization.Encoding.PEM) + files["leaf.pem"]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    gost_fingerprint = hashlib.sha256(files["gost.cer"]).hexdigest()

    result = pki_cli("trust", "list", *state, cwd=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr  # not an empty success elsewhere
    (tmp_path / "state").mkdir()
    result = pki_cli("trust", "list", *state, cwd=tmp_path)
    assert result.returncode == 0 and "0 trusted certificate(s)" in result.stdout
    result = pki_cli("trust", "add", "root.pem", *state, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"trusted  {root.cert.fingerprint(hashes.SHA256()).hex()}  anchor" in result.stdout
    assert "restart `shep serve`" in result.stdout
    before = snapshot(folder)
    result = pki_cli("trust", "add", "root.pem", *state, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("already  ")
    assert snapshot(folder) == before
    # DER, GOST: cryptography cannot load its key, and the CLI never asks for it.
    result = pki_cli("trust", "add", "gost.cer", *state, cwd=tmp_path)
    assert result.returncode == 0 and f"trusted  {gost_fingerprint}  anchor" in result.stdout, result.stderr

    for name, complaint in (("leaf.pem", "CA:FALSE"), ("bundle.pem", "CA:FALSE"),
                            ("not-a-certificate.cer", "not-a-certificate.cer"), ("missing.pem", "missing.pem")):
        result = pki_cli("trust", "add", name, *state, cwd=tmp_path)
        assert result.returncode == 2 and complaint in result.stderr and len(complaints(result)) == 1
    assert len(list(folder.iterdir())) == 2  # not even the bundle's CA certificate

    listing = pki_cli("trust", "list", *state, cwd=tmp_path).stdout
    assert "2 trusted certificate(s)" in listing and gost_fingerprint in listing and "(GOST) TEST" in listing
    result = pki_cli("trust", "remove", gost_fingerprint[:8].upper(), *state, cwd=tmp_path)
    assert result.returncode == 0 and f"removed  {gost_fingerprint}" in result.stdout
    result = pki_cli("trust", "remove", "root.pem", *state, cwd=tmp_path)
    assert result.returncode == 0 and "removed  " in result.stdout
    for which in ("root.pem", "12ab", "not-hex!"):
        result = pki_cli("trust", "remove", which, *state, cwd=tmp_path)
        assert result.returncode == 2 and len(complaints(result)) == 1
    assert list(folder.iterdir()) == []
    (folder / "by-hand.pem").write_text("not a certificate")
    result = pki_cli("trust", "list", *state, cwd=tmp_path)
    assert result.returncode == 2 and "by-hand.pem: not a PEM or DER certificate" in result.stderr


def test_gost2004_without_its_hash_says_why(tmp_path, monkeypatch):
    """No OpenSSL GOST provider (a machine without the Debian package): no GOST 2004 CA, a clear refusal to
    issue one, everything else as usual."""
    from gateway.security.gost import digests

    monkeypatch.setattr(digests, "backend", lambda: ("python", digests._python))
    pki = TestPKI(tmp_path)
    pki.init("http://127.0.0.1:9999")
    assert not (tmp_path / "pki" / "ca" / "nca_gost2004_test").exists()
    with pytest.raises(ValueError, match="libengine-gost-openssl"):
        pki.issue("person", "gost2004")
    assert pki.issue("person", "gost2015").cert.issuer == pki.issuing_ca("gost2015").subject
    assert len(pki.intermediates()) == 3


@pytest.mark.parametrize("alg", ["gost2015", pytest.param("gost2004", marks=pytest.mark.skipif(
    not GOST2004_HERE, reason=system_tools.reason("gost-engine")))])
def test_gost_certificates_of_every_kind_and_usage(pki, alg):
    """GOST certificates in the national profile: GOST key and signature OIDs, the chain to the GOST root,
    usages as for RSA; every kind, both usages."""
    from gateway.security.gost import x509 as gost_x509
    from gateway.security.gost.keys import PROFILES

    issuing, root = pki.issuing_ca(alg), pki.root(alg)
    assert gost_x509.issued_by(issuing, root) and gost_x509.issued_by(root, root)
    assert gost_x509.issued_by(pki.ocsp_responder(alg), issuing)
    for kind in profile.KINDS:
        for usage in profile.USAGES:
            cert = pki.issue(kind, alg, usage).cert
            assert cert.signature_algorithm_oid.dotted_string == PROFILES[alg].signature_oid
            assert gost_x509.public_key(cert).profile is PROFILES[alg]
            assert gost_x509.issued_by(cert, issuing)
            assert ext(cert, x509.KeyUsage).value.content_commitment == (usage == "sign")
            assert ext(cert, x509.SubjectKeyIdentifier).value.digest == gost_x509.public_key(cert).key_identifier()
            assert identity.subject_iin(cert)
