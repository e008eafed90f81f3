"""Certification authorities that are not the test PKI, made with `cryptography` alone: what the national CA's test
roots are to the gateway."""
from __future__ import annotations

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
