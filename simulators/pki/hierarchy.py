"""The test CA's hierarchy: its algorithms, its CAs, and how every certificate and CRL is built and signed.

cryptography's builders make every structure, GOST ones included (`signed` gives them their GOST key and
signature), so names and extensions are built one way for every algorithm.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from gateway.security.gost import digests
from gateway.security.gost import x509 as gost_x509
from gateway.security.gost.keys import GOST2004, GOST2015, GostPrivateKey, GostPublicKey

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
ROOT_YEARS = 20
ISSUING_YEARS = 15
# CA certificates start in the past so that expired and back-dated certificates fall inside their issuer's validity.
CA_BACKDATE = timedelta(days=5 * 365)
# End-entity certificates start a little before now: a verifier whose clock lags must still accept them.
CLOCK_SKEW = timedelta(minutes=5)
UPDATE_INTERVAL = timedelta(days=1)
GATEWAY_VALID_DAYS = 5 * 365
# remove_from_crl belongs to delta CRLs only, which this CA does not publish.
REVOCATION_REASONS = tuple(r.name for r in x509.ReasonFlags if r is not x509.ReasonFlags.remove_from_crl)


# Algorithm -> how to make a key; RSA and EC sign with SHA-256, GOST with its profile's hash.
ALGORITHMS: dict[str, Callable[[], CertificateIssuerPrivateKeyTypes | GostPrivateKey]] = {
    "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
    "gost2015": lambda: GostPrivateKey.generate(GOST2015),
    "gost2004": lambda: GostPrivateKey.generate(GOST2004),
}


@dataclass(frozen=True)
class CA:
    slug: str
    name: str
    alg: str
    parent: str  # the slug of the CA that signs this one's certificate (its own, for a root)


ROOT = CA("root", "ҰКО TEST ROOT", "rsa", "root")
# The national CA's GOST hierarchy has its own root (НЕГІЗГІ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST) 2022, GOST 2015/512).
GOST_ROOT = CA("root_gost_test", "ҰКО TEST ROOT (GOST)", "gost2015", "root_gost_test")
ISSUING = {"rsa": CA("nca_rsa_test", "ҰКО TEST (RSA)", "rsa", ROOT.slug),
           "ec": CA("nca_ec_test", "ҰКО TEST (EC)", "ec", ROOT.slug),
           "gost2015": CA("nca_gost2015_test", "ҰКО TEST (GOST 2015)", "gost2015", GOST_ROOT.slug),
           "gost2004": CA("nca_gost2004_test", "ҰКО TEST (GOST 2004)", "gost2004", GOST_ROOT.slug)}
ROOTS = (ROOT, GOST_ROOT)
CAS = {ca.slug: ca for ca in (*ROOTS, *ISSUING.values())}
# cryptography's builders need a key of theirs; for a GOST subject this one stands in until `with_gost`.
PLACEHOLDER = gost_x509.placeholder_key()


def available(alg: str) -> str | None:
    """Why the PKI cannot make `alg` keys' signatures here, or None: GOST 2004 needs ГОСТ 34.311-95."""
    if alg == "gost2004" and not digests.available(digests.GOST34311):
        return digests.UNAVAILABLE
    return None


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def ca_name(ca: CA) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca.name), x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ")])


def reason_flag(reason: str) -> x509.ReasonFlags:
    """A ReasonFlags member from its name (key_compromise) or its RFC 5280 value (keyCompromise)."""
    for flag in x509.ReasonFlags:
        if reason in (flag.name, flag.value) and flag.name in REVOCATION_REASONS:
            return flag
    raise ValueError(f"unknown revocation reason {reason!r}; one of: {', '.join(REVOCATION_REASONS)}")


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def certificate_builder(subject: x509.Name, public_key) -> x509.CertificateBuilder:
    """A builder with the subject, its key and SKI (RFC 5280 method 1), a GOST key by its placeholder."""
    if isinstance(public_key, GostPublicKey):
        return (x509.CertificateBuilder().subject_name(subject).public_key(PLACEHOLDER.public_key())
                .add_extension(x509.SubjectKeyIdentifier(public_key.key_identifier()), critical=False))
    return (x509.CertificateBuilder().subject_name(subject).public_key(public_key)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def signed(builder, signer, subject_key=None):
    """The certificate or CRL of `builder`, signed by `signer`; a GOST one through `gost_x509.with_gost`."""
    if not isinstance(signer, GostPrivateKey):
        return builder.sign(signer, hashes.SHA256())
    der = builder.sign(PLACEHOLDER, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    if isinstance(builder, x509.CertificateRevocationListBuilder):
        return x509.load_der_x509_crl(gost_x509.with_gost(der, "crl", signer))
    gost_key = subject_key if isinstance(subject_key, GostPublicKey) else None
    return x509.load_der_x509_certificate(gost_x509.with_gost(der, "certificate", signer, gost_key))
