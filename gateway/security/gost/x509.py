"""GOST in X.509 structures, next to `cryptography`, which parses them but knows no GOST keys or signatures.

Reading: the public key of a certificate (GOST or not) and the signature check of a certificate, CRL or
OCSP response by its issuer. Writing: structures are built with cryptography's builders, signed there
with a throw-away EC key, then given the GOST key and signature here (`with_gost`), so the test PKI keeps
one way of building names and extensions.
"""
from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone

from asn1crypto import core, parser
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.security.gost.keys import BY_SIGNATURE_OID, GostPrivateKey, GostPublicKey, KeyFormatError


def _elements(contents: bytes) -> list[bytes]:
    """The encoded TLVs inside a constructed value's contents, in order."""
    items = []
    while contents:
        _, _, _, header, body, trailer = parser.parse(contents)
        size = len(header) + len(body) + len(trailer)
        items.append(contents[:size])
        contents = contents[size:]
    return items


def _sequence(items: list[bytes]) -> bytes:
    return parser.emit(0, 1, 16, b"".join(items))


def _contents(der: bytes) -> bytes:
    return parser.parse(der, strict=True)[4]


def _tag(der: bytes) -> tuple[int, int]:
    class_, _, tag, _, _, _ = parser.parse(der)
    return class_, tag


def _tbs_fields(tbs: bytes) -> list[bytes]:
    return _elements(_contents(tbs))


def _certificate_offset(fields: list[bytes]) -> int:
    return 1 if _tag(fields[0]) == (2, 0) else 0  # [0] EXPLICIT version


@functools.lru_cache(maxsize=4096)
def public_key(cert: x509.Certificate):
    """The subject's public key: a `cryptography` key, or a GostPublicKey; ValueError when neither reads it."""
    try:
        return cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        pass
    fields = _tbs_fields(cert.tbs_certificate_bytes)
    try:
        return GostPublicKey.from_spki(fields[_certificate_offset(fields) + 5])
    except (KeyFormatError, IndexError) as exc:
        raise ValueError(f"unsupported public key in {cert.subject.rfc4514_string()}: {exc}") from None


def certificate_alg(cert: x509.Certificate) -> str:
    """The key's family as the test PKI names them: rsa, ec, or the GOST profile (gost2015, gost2004, …)."""
    key = public_key(cert)
    if isinstance(key, GostPublicKey):
        return key.profile.name
    return "rsa" if isinstance(key, rsa.RSAPublicKey) else "ec"


def verify_signature(issuer_key, signature_oid: str, signature: bytes, tbs: bytes,
                     hash_algorithm: hashes.HashAlgorithm | None) -> bool:
    """Whether `signature` over `tbs` verifies with the issuer's key, GOST or not."""
    profile = BY_SIGNATURE_OID.get(signature_oid)
    if profile is not None:
        return isinstance(issuer_key, GostPublicKey) and issuer_key.profile == profile and \
            issuer_key.verify(signature, tbs)
    try:
        if isinstance(issuer_key, rsa.RSAPublicKey):
            issuer_key.verify(signature, tbs, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(issuer_key, ec.EllipticCurvePublicKey):
            issuer_key.verify(signature, tbs, ec.ECDSA(hash_algorithm))
        else:
            return False
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def _hash_or_none(item) -> hashes.HashAlgorithm | None:
    try:
        return item.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` names and signed `cert` (cryptography's verify_directly_issued_by, GOST included)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        key = public_key(issuer)
    except ValueError:
        return False
    return verify_signature(key, cert.signature_algorithm_oid.dotted_string, cert.signature,
                            cert.tbs_certificate_bytes, _hash_or_none(cert))


def signed_by(item, key) -> bool:
    """A CRL or OCSP response (cryptography objects) checked against its signer's key."""
    tbs = item.tbs_certlist_bytes if isinstance(item, x509.CertificateRevocationList) else item.tbs_response_bytes
    return verify_signature(key, item.signature_algorithm_oid.dotted_string, item.signature, tbs, _hash_or_none(item))


# -- writing --------------------------------------------------------------------------------------

PLACEHOLDER_CURVE = ec.SECP256R1()


def placeholder_key() -> ec.EllipticCurvePrivateKey:
    """The key cryptography's builders sign with before `with_gost` replaces key and signature."""
    return ec.generate_private_key(PLACEHOLDER_CURVE)


def _algorithm_identifier(oid: str) -> bytes:
    return _sequence([core.ObjectIdentifier(oid).dump()])  # GOST signature algorithms take no parameters


def _signed(tbs: bytes, key: GostPrivateKey, extra: list[bytes]) -> bytes:
    signature = parser.emit(0, 0, 3, b"\x00" + key.sign(tbs))
    return _sequence([tbs, _algorithm_identifier(key.profile.signature_oid), signature, *extra])


def with_gost(der: bytes, kind: str, signer: GostPrivateKey,
              subject_key: GostPublicKey | None = None) -> bytes:
    """`der` (a certificate or CRL) signed by `signer` instead; for a certificate,
    optionally carrying `subject_key` instead of the placeholder key."""
    outer = _elements(_contents(der))
    fields = _tbs_fields(outer[0])
    if kind == "certificate":
        offset = _certificate_offset(fields)
        fields[offset + 1] = _algorithm_identifier(signer.profile.signature_oid)
        if subject_key is not None:
            fields[offset + 5] = subject_key.spki_der()
    elif kind == "crl":
        offset = 1 if _tag(fields[0]) == (0, 2) else 0  # version INTEGER
        fields[offset] = _algorithm_identifier(signer.profile.signature_oid)
    else:
        raise ValueError(f"unknown structure {kind!r}")
    return _signed(_sequence(fields), signer, outer[3:])


def placeholder_certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A stand-in for a GOST OCSP responder's certificate: cryptography's OCSP builder reads the responder's
    key, so it is given this one, and `ocsp_with_gost` puts the real certificate in its place."""
    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))


def ocsp_with_gost(response_der: bytes, signer: GostPrivateKey, certificates: list[x509.Certificate]) -> bytes:
    """An OCSPResponse whose BasicOCSPResponse is signed by `signer` and carries `certificates` instead."""
    status, explicit = _elements(_contents(response_der))
    kind_oid, basic = _elements(_contents(_contents(explicit)))
    outer = _elements(_contents(_contents(basic)))
    certs = parser.emit(2, 1, 0, _sequence([cert.public_bytes(Encoding.DER) for cert in certificates]))
    basic = parser.emit(0, 0, 4, _signed(outer[0], signer, [certs]))
    return _sequence([status, parser.emit(2, 1, 0, _sequence([kind_oid, basic]))])
