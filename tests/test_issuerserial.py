"""X509IssuerName as signers spell it, and the certificate index X509IssuerSerial references resolve against."""
from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from gateway.security.issuerserial import CertificateIndex, name_key, parse_name
from tests import system_tools

# An issuer in the national CA's style: a multi-valued RDN, Cyrillic, escapes, types without an RFC 4514 keyword.
ISSUER = x509.Name([
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'АО "НИТ", Астана')]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST)"),
                                    x509.NameAttribute(NameOID.SERIAL_NUMBER, "BIN161140016747")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "pki@example.kz")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.GIVEN_NAME, "Сериковна")]),
])
# ISSUER as Java 17's javax.security.auth.x500.X500Principal writes it (recorded from `new X500Principal(der)`):
# getName(), RFC 2253, is what WSS4J 1.6 puts in X509IssuerName (SecurityTokenReference.setX509IssuerSerial);
# getName(RFC1779) and toString() are what Java code such as Kalkan's gets from getIssuerDN().
JAVA = [
    "2.5.4.42=#0c12d0a1d0b5d180d0b8d0bad0bed0b2d0bdd0b0,1.2.840.113549.1.9.1=#160e706b69406578616d706c652e6b7a,"
    "2.5.4.5=#130f42494e313631313430303136373437+CN=ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST),O=АО \\\"НИТ\\\"\\, Астана,C=KZ",
    "OID.2.5.4.42=Сериковна, OID.1.2.840.113549.1.9.1=pki@example.kz, OID.2.5.4.5=BIN161140016747 + "
    "CN=ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST), O=\"АО \\\"НИТ\\\", Астана\", C=KZ",
    "GIVENNAME=Сериковна, EMAILADDRESS=pki@example.kz, SERIALNUMBER=BIN161140016747 + "
    "CN=ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST), O=\"АО \\\"НИТ\\\", Астана\", C=KZ",
]
OTHER_SPELLINGS = [
    ISSUER.rfc4514_string(),  # the gateway's own (cryptography): 2.5.4.5=…, 2.5.4.42=…
    "G=Сериковна,E=pki@example.kz,SERIALNUMBER=BIN161140016747+CN=ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST),"
    "O=АО \\\"НИТ\\\"\\, Астана,C=KZ",  # the national profile's keywords
    # any case, RFC 1779 separators, spaces
    "givenName=сериковна;emailAddress=PKI@EXAMPLE.KZ; cn = ҰЛТТЫҚ  КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST) "
    "+serialNumber=BIN161140016747;o=АО \\\"НИТ\\\"\\, Астана;c=kz",
    # DER order, as OpenSSL's oneline format writes it
    "C=KZ, O=АО \\\"НИТ\\\"\\, Астана, CN=ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST)+SERIALNUMBER=BIN161140016747, "
    "E=pki@example.kz, G=Сериковна",
]


def certificate(issuer: x509.Name, serial: int = 1234567890123456789) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder().subject_name(issuer).issuer_name(issuer).public_key(key.public_key())
            .serial_number(serial).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))


def openssl_issuer(cert: x509.Certificate, tmp_path, nameopt: str) -> str:
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    openssl = system_tools.require("openssl")
    result = subprocess.run([openssl, "x509", "-in", str(tmp_path / "cert.pem"), "-noout", "-issuer", "-nameopt",
                             nameopt], capture_output=True, text=True, encoding="utf-8", check=True, timeout=30)
    return result.stdout.strip().removeprefix("issuer=")


@pytest.mark.parametrize("text", JAVA + OTHER_SPELLINGS)
def test_every_spelling_of_the_issuer_is_the_issuer(text):
    assert parse_name(text) in (name_key(ISSUER), name_key(ISSUER)[::-1])
    cert = certificate(ISSUER)
    assert CertificateIndex([cert]).find(parse_name(text), cert.serial_number) == cert


@pytest.mark.parametrize("nameopt", ["RFC2253", "RFC2253,-esc_msb", "oneline"])
def test_openssl_spellings(tmp_path, nameopt):
    """OpenSSL's (xmlsec1 writes X509IssuerName with it): \\D2\\B0 escapes of UTF-8 octets, `CN = …, C = KZ`."""
    cert = certificate(ISSUER)
    text = openssl_issuer(cert, tmp_path, nameopt)
    assert CertificateIndex([cert]).find(parse_name(text), cert.serial_number) == cert


@pytest.mark.parametrize("text", [
    "", "CN", "CN=a,", "CN=a,,C=KZ", "XX=a", "CN=a\\", 'CN="a', 'CN="a"b', "CN=#0c05ab", "CN=#0402abcd", "CN=a\\ff",
])
def test_unreadable_names(text):
    with pytest.raises(ValueError):
        parse_name(text)


def test_other_names_do_not_match():
    cert = certificate(ISSUER)
    index = CertificateIndex([cert])
    assert index.find(name_key(ISSUER), cert.serial_number + 1) is None
    text = ISSUER.rfc4514_string()
    for changed in (text.replace("(TEST)", "(GOST)"), text.replace("+2.5.4.5=BIN161140016747", ""),
                    text + ",L=Астана", text.replace("C=KZ", "C=RU")):
        assert index.find(parse_name(changed), cert.serial_number) is None, changed


def test_live_lookups_are_asked_each_time_and_checked_for_the_issuer():
    cert = certificate(ISSUER)
    issued: dict[int, x509.Certificate] = {}
    index = CertificateIndex(live=[issued.get])
    assert index.find(name_key(ISSUER), cert.serial_number) is None
    issued[cert.serial_number] = cert  # as `shep pki issue` in another process
    assert index.find(name_key(ISSUER), cert.serial_number) == cert
    # The same serial under another issuer is not this certificate.
    other = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another CA")])
    assert index.find(name_key(other), cert.serial_number) is None
