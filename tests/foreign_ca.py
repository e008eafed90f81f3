"""Certification authorities that are not the test PKI, made with `cryptography` alone: what the national CA's test
roots are to the gateway. And a GOST root, which `cryptography` parses but cannot take the public key of."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.test_wss import Signer

CA_USAGE = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                         encipher_only=False, decipher_only=False)
SIGN_USAGE = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                           data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                           encipher_only=False, decipher_only=False)


def _name(common_name: str, *more: x509.NameAttribute) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"), *more,
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365)))


def make_root(common_name: str = "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (RSA) TEST") -> Signer:
    key = rsa.generate_private_key(65537, 2048)
    name = _name(common_name)
    cert = (_builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(CA_USAGE, critical=True)
            .sign(key, hashes.SHA256()))
    return Signer(key, cert)


def make_signer(ca: Signer, bin_: str, alg: str = "ec") -> Signer:
    """An organisation's SIGN certificate (OU=BIN…) without revocation information: gateways that check
    revocation cannot place it, so the tests using it run with `revocation = "none"`."""
    key = ec.generate_private_key(ec.SECP256R1()) if alg == "ec" else rsa.generate_private_key(65537, 2048)
    subject = _name(f"ТОО ТЕСТ {alg.upper()}", x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"BIN{bin_}"))
    cert = (_builder(subject, ca.cert.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(SIGN_USAGE, critical=True)
            .sign(ca.key, hashes.SHA256()))
    return Signer(key, cert)


# --- a GOST R 34.10-2012 root, DER built by hand (cryptography cannot sign with GOST) -------------------------

def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    length = bytes([size]) if size < 0x80 else bytes([0x80 | (size.bit_length() + 7) // 8]) + size.to_bytes(
        (size.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + content


def _sequence(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(arc) for arc in dotted.split("."))
    encoded = bytearray()
    for arc in (40 * first + second, *rest):
        septets = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            septets.append(0x80 | arc & 0x7F)
        encoded += bytes(reversed(septets))
    return _tlv(0x06, bytes(encoded))


def _time(moment: datetime) -> bytes:
    return _tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())


GOST_SIGNATURE = "1.2.643.7.1.1.3.2"  # GOST R 34.10-2012 with GOST R 34.11-2012 (256 bit)
GOST_KEY = "1.2.643.7.1.1.1.1"  # GOST R 34.10-2012, 256-bit key


def gost_root_der(common_name: str = "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST) TEST") -> bytes:
    """A self-signed CA certificate with a GOST key and signature (random bytes: nothing verifies them here)."""
    name = _name(common_name).public_bytes()
    now = datetime.now(timezone.utc)
    key_algorithm = _sequence(_oid(GOST_KEY), _sequence(_oid("1.2.643.7.1.2.1.1.1"), _oid("1.2.643.7.1.1.2.2")))
    extensions = [_sequence(_oid(value.oid.dotted_string), _tlv(0x01, b"\xff"), _tlv(0x04, value.public_bytes()))
                  for value in (x509.BasicConstraints(ca=True, path_length=None), CA_USAGE)]
    tbs = _sequence(_tlv(0xA0, _tlv(0x02, b"\x02")), _tlv(0x02, b"\x01" + os.urandom(8)),
                    _sequence(_oid(GOST_SIGNATURE)), name,
                    _sequence(_time(now - timedelta(days=1)), _time(now + timedelta(days=365))), name,
                    _sequence(key_algorithm, _tlv(0x03, b"\x00" + _tlv(0x04, os.urandom(64)))),
                    _tlv(0xA3, _sequence(*extensions)))
    return _sequence(tbs, _sequence(_oid(GOST_SIGNATURE)), _tlv(0x03, b"\x00" + os.urandom(64)))
