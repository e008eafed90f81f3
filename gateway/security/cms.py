"""CMS SignedData (RFC 5652): one signer, RSA, EC or GOST, built and checked on asn1crypto.

What the journal signs so that standard tools can check it without this project: an RFC 3161 time-stamp
token (a SignedData over a TSTInfo) and an export bundle's detached manifest signature. `cryptography`'s
PKCS#7 builder signs neither a TSTInfo nor with GOST keys, so the structure is asn1crypto's and only the
signature is made by `cryptography` (or `gateway.security.gost`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.security.gost import digests as gost_digests
from gateway.security.gost.keys import BY_SIGNATURE_OID, GostPrivateKey, GostPublicKey
from gateway.security.gost.x509 import public_key as certificate_key

_GOST_BY_DIGEST_OID = {profile.digest_oid: profile for profile in BY_SIGNATURE_OID.values()}
_HASHES = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


# What reading a malformed structure raises: asn1crypto and cryptography parse lazily, so a bad field shows
# only when it is read.
PARSE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, x509.InvalidVersion, x509.DuplicateExtension)


class CMSError(ValueError):
    """A structure that is not a single-signer SignedData, or whose signature does not verify."""


@dataclass(frozen=True)
class Verified:
    content_type: str  # the eContentType, as asn1crypto names it (data, tst_info) or dotted
    content: bytes  # what was signed: the encapsulated content, or the detached content given
    signer: x509.Certificate
    certificates: list[x509.Certificate]  # every certificate the SignedData carries
    signing_time: datetime | None


def _digest_algorithm(key) -> str:
    if isinstance(key, (GostPrivateKey, GostPublicKey)):
        return key.profile.digest_oid
    return "sha256"


def digest(algorithm: str, data: bytes) -> bytes:
    """A CMS digest by its asn1crypto name (sha256…) or, for GOST, dotted OID; CMSError when unknown."""
    profile = _GOST_BY_DIGEST_OID.get(algorithm)
    if profile is not None:
        if not gost_digests.available(profile.hash):
            raise CMSError(f"digest {algorithm}: {gost_digests.UNAVAILABLE}")
        return gost_digests.digest(profile.hash, data)
    if algorithm in ("sha1", *_HASHES):
        return hashlib.new(algorithm, data).digest()
    raise CMSError(f"unsupported digest algorithm {algorithm}")


def _signature_algorithm(key) -> dict:
    if isinstance(key, GostPrivateKey):
        return {"algorithm": key.profile.signature_oid}
    if isinstance(key, rsa.RSAPrivateKey):
        return {"algorithm": "rsassa_pkcs1v15"}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"algorithm": "sha256_ecdsa"}
    raise TypeError(f"unsupported key type {type(key).__name__}: RSA, EC or GOST is expected")


def _raw_signature(key, data: bytes) -> bytes:
    if isinstance(key, GostPrivateKey):
        return key.sign(data)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data, ec.ECDSA(hashes.SHA256()))  # DER ECDSA-Sig-Value, as CMS has it


def _asn1_certificate(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def signing_certificate_v2(cert: x509.Certificate) -> tsp.SigningCertificateV2:
    """The ESS attribute naming the signer's certificate by its SHA-256 (RFC 5035), which RFC 3161 asks for."""
    issued = _asn1_certificate(cert)
    issuer_serial = tsp.IssuerSerial({"issuer": [asn1_x509.GeneralName({"directory_name": issued.issuer})],
                                      "serial_number": issued.serial_number})
    # hash_algorithm is left out: SHA-256 is its DEFAULT, which DER does not encode.
    return tsp.SigningCertificateV2({"certs": [tsp.ESSCertIDv2({
        "cert_hash": hashlib.sha256(cert.public_bytes(Encoding.DER)).digest(), "issuer_serial": issuer_serial})]})


def sign(content: bytes, key, cert: x509.Certificate, *, content_type: str = "data", detached: bool = False,
         certificates: tuple[x509.Certificate, ...] | None = None, signing_time: datetime | None = None,
         ess_certificate: bool = False) -> bytes:
    """A DER ContentInfo: SignedData over `content` by `key` (whose certificate is `cert`), carrying
    `certificates` (default: `cert`); `detached` leaves the content out (who verifies has it)."""
    algorithm = _digest_algorithm(key)
    attributes = [cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
                  cms.CMSAttribute({"type": "signing_time",
                                    "values": [cms.Time({"utc_time": (signing_time or datetime.now(timezone.utc))
                                                         .replace(microsecond=0)})]}),
                  cms.CMSAttribute({"type": "message_digest", "values": [digest(algorithm, content)]})]
    if ess_certificate:
        attributes.append(cms.CMSAttribute({"type": "signing_certificate_v2",
                                            "values": [signing_certificate_v2(cert)]}))
    signed_attrs = cms.CMSAttributes(attributes)
    issued = _asn1_certificate(cert)
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber(
            {"issuer": issued.issuer, "serial_number": issued.serial_number})}),
        "digest_algorithm": {"algorithm": algorithm},
        "signed_attrs": signed_attrs,
        "signature_algorithm": _signature_algorithm(key),
        # The signature covers the attributes' DER as a SET OF (RFC 5652 §5.4), not their [0] tagging.
        "signature": _raw_signature(key, signed_attrs.dump()),
    })
    encapsulated = {"content_type": content_type}
    if not detached:
        encapsulated["content"] = cms.ParsableOctetString(content)
    signed_data = {
        "version": "v1" if content_type == "data" else "v3",
        "digest_algorithms": [{"algorithm": algorithm}],
        "encap_content_info": encapsulated,
        "signer_infos": [signer],
    }
    carried = (cert,) if certificates is None else certificates
    if carried:
        signed_data["certificates"] = [_asn1_certificate(c) for c in carried]
    signed_data = cms.SignedData(signed_data)
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def _load(der: bytes) -> cms.SignedData:
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise CMSError(f"a {info['content_type'].native} ContentInfo, not SignedData")
        signed_data = info["content"]
        # Parsed now (asn1crypto parses lazily): a malformed field is CMSError here, not a crash later.
        signed_data["encap_content_info"].native  # noqa: B018
        signed_data["signer_infos"].native  # noqa: B018
    except CMSError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise CMSError(f"not a DER CMS SignedData: {exc}") from None
    if len(signed_data["signer_infos"]) != 1:
        raise CMSError(f"{len(signed_data['signer_infos'])} signers; one is expected")
    return signed_data


def _attribute(signed_attrs, name: str):
    values = [a["values"] for a in signed_attrs if a["type"].native == name]
    if len(values) != 1 or len(values[0]) != 1:
        return None
    return values[0][0]


def _verify_raw(public_key, signature_algorithm: str, digest_algorithm: str, signature: bytes, data: bytes) -> bool:
    profile = BY_SIGNATURE_OID.get(signature_algorithm)
    if profile is not None:
        return isinstance(public_key, GostPublicKey) and public_key.profile == profile and \
            public_key.verify(signature, data)
    hash_algorithm = _HASHES.get(digest_algorithm)
    if hash_algorithm is None:
        return False
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and signature_algorithm in (
                "rsassa_pkcs1v15", f"{digest_algorithm}_rsa"):
            public_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and signature_algorithm in (
                "ecdsa", f"{digest_algorithm}_ecdsa"):
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def verify(der: bytes, content: bytes | None = None, known: tuple[x509.Certificate, ...] = ()) -> Verified:
    """Check a single-signer SignedData: the content's digest, the attributes' signature by the certificate
    it names (carried, or one of `known`). `content` for a detached signature. The certificate's trust is
    the caller's to decide. CMSError says what is wrong."""
    try:
        return _verify(der, content, known)
    except CMSError:
        raise
    except PARSE_ERRORS as exc:
        raise CMSError(f"not a valid CMS SignedData: {exc}") from None


def _verify(der: bytes, content: bytes | None, known: tuple[x509.Certificate, ...]) -> Verified:
    signed_data = _load(der)
    encapsulated = signed_data["encap_content_info"]
    content_type = encapsulated["content_type"].native
    if content is None:
        if encapsulated["content"].native is None:
            raise CMSError("a detached signature: the signed content is needed to check it")
        content = encapsulated["content"].contents
    signer_info = signed_data["signer_infos"][0]
    certificates = [x509.load_der_x509_certificate(choice.chosen.dump())
                    for choice in signed_data["certificates"] if choice.name == "certificate"]
    sid = signer_info["sid"]
    if sid.name != "issuer_and_serial_number":
        raise CMSError("the signer is named by key identifier; issuer and serial number are expected")
    wanted_issuer, wanted_serial = sid.chosen["issuer"].dump(), sid.chosen["serial_number"].native
    signer = next((c for c in (*certificates, *known) if c.serial_number == wanted_serial
                   and c.issuer.public_bytes() == wanted_issuer), None)
    if signer is None:
        raise CMSError("the signer's certificate is neither carried nor known")
    signed_attrs = signer_info["signed_attrs"]
    if not len(signed_attrs):
        raise CMSError("no signed attributes: the content's digest is not signed")
    digest_algorithm = signer_info["digest_algorithm"]["algorithm"].native
    if _attribute(signed_attrs, "content_type") is None or \
            _attribute(signed_attrs, "content_type").native != content_type:
        raise CMSError("the signed content-type attribute does not name the encapsulated content")
    message_digest = _attribute(signed_attrs, "message_digest")
    if message_digest is None or message_digest.native != digest(digest_algorithm, content):
        raise CMSError("the content does not match the signed message digest (it was changed)")
    signed_bytes = b"\x31" + signed_attrs.dump()[1:]  # [0] IMPLICIT back to SET OF (RFC 5652 §5.4)
    try:
        key = certificate_key(signer)
    except ValueError as exc:
        raise CMSError(str(exc)) from None
    if not _verify_raw(key, signer_info["signature_algorithm"]["algorithm"].native, digest_algorithm,
                       signer_info["signature"].native, signed_bytes):
        raise CMSError(f"the signature by {signer.subject.rfc4514_string()} does not verify")
    signing_time = _attribute(signed_attrs, "signing_time")
    return Verified(content_type, content, signer, certificates, signing_time.native if signing_time else None)
