"""XMLDSig algorithms (contract §8.1), the policy that admits them, and the primitives both signers share.

Signing and verification are hand-rolled on lxml's C14N and `cryptography` (about 3x cheaper than
signxml, and no STR/ID/schema workarounds), GOST on `gateway.security.gost`; only the transforms below
are supported.
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

from gateway.security.gost import digests as gost_digests
from gateway.security.gost.keys import GOST2004, GOST2015, GOST2015_256, PROFILES, GostPrivateKey, GostPublicKey

C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_COMMENTS = C14N + "#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = EXC_C14N + "WithComments"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA1_KALKAN = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha1"  # the §8.1 spelling
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
ECDSA_SHA1 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
SHA1_KALKAN = "http://www.w3.org/2001/04/xmldsig-more#sha1"  # the §8.1 spelling
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"

GOST2004_SIGNATURE, GOST2004_DIGEST = GOST2004.signature_uri, GOST2004.digest_uri
GOST2015_256_SIGNATURE, GOST2015_256_DIGEST = GOST2015_256.signature_uri, GOST2015_256.digest_uri
GOST2015_512_SIGNATURE, GOST2015_512_DIGEST = GOST2015.signature_uri, GOST2015.digest_uri
GOST_SIGNATURE_METHODS = {profile.signature_uri: profile for profile in PROFILES.values()}

# SignatureMethod URI -> (key type, hash); DigestMethod URI -> hash.
SIGNATURE_METHODS: dict[str, tuple[type, hashes.HashAlgorithm]] = {
    RSA_SHA1: (rsa.RSAPublicKey, hashes.SHA1()),
    RSA_SHA1_KALKAN: (rsa.RSAPublicKey, hashes.SHA1()),
    RSA_SHA256: (rsa.RSAPublicKey, hashes.SHA256()),
    RSA_SHA384: (rsa.RSAPublicKey, hashes.SHA384()),
    RSA_SHA512: (rsa.RSAPublicKey, hashes.SHA512()),
    ECDSA_SHA1: (ec.EllipticCurvePublicKey, hashes.SHA1()),
    ECDSA_SHA256: (ec.EllipticCurvePublicKey, hashes.SHA256()),
    ECDSA_SHA384: (ec.EllipticCurvePublicKey, hashes.SHA384()),
    ECDSA_SHA512: (ec.EllipticCurvePublicKey, hashes.SHA512()),
}
DIGEST_METHODS: dict[str, hashes.HashAlgorithm | str] = {
    SHA1: hashes.SHA1(), SHA1_KALKAN: hashes.SHA1(), SHA256: hashes.SHA256(), SHA384: hashes.SHA384(),
    SHA512: hashes.SHA512(), **{profile.digest_uri: profile.hash for profile in PROFILES.values()},
}
# Canonicalization URI -> (exclusive, with comments).
C14N_METHODS = {C14N: (False, False), C14N_COMMENTS: (False, True),
                EXC_C14N: (True, False), EXC_C14N_COMMENTS: (True, True)}
INCLUSIVE_NAMESPACES = f"{{{EXC_C14N}}}InclusiveNamespaces"


class SignatureError(Exception):
    """A verification failure; `name` is the catalogue fault name, `detail` the specifics."""

    def __init__(self, name: str, detail: str):
        super().__init__(f"{name}: {detail}")
        self.name = name
        self.detail = detail


def malformed(detail: str) -> SignatureError:
    return SignatureError("SIGNATURE_MALFORMED", detail)


@dataclass(frozen=True)
class AlgorithmPolicy:
    allow_sha1: bool = False

    def check(self, signature_uri: str, digest_uri: str) -> None:
        """Admit a SignatureMethod/DigestMethod pair before any crypto is spent on it."""
        gost = GOST_SIGNATURE_METHODS.get(signature_uri)
        for uri, algorithm in ((signature_uri, gost.hash if gost else SIGNATURE_METHODS.get(signature_uri)),
                               (digest_uri, DIGEST_METHODS.get(digest_uri))):
            if algorithm is None:
                raise SignatureError("SIGNATURE_ALGORITHM_UNSUPPORTED", f"unknown algorithm {uri!r}")
            if isinstance(algorithm, tuple):
                algorithm = algorithm[1]
            if isinstance(algorithm, hashes.SHA1) and not self.allow_sha1:
                raise SignatureError("SIGNATURE_ALGORITHM_REFUSED", f"{uri}: SHA-1 is refused")
            if isinstance(algorithm, str) and not gost_digests.available(algorithm):
                raise SignatureError("SIGNATURE_ALGORITHM_UNSUPPORTED", f"{uri}: {gost_digests.UNAVAILABLE}")


def short_name(signature_uri: str) -> str:
    """How the journal names a SignatureMethod: the GOST generation, else the URI's fragment (rsa-sha256)."""
    profile = GOST_SIGNATURE_METHODS.get(signature_uri)
    return profile.name if profile else signature_uri.rsplit("#", 1)[-1]


def methods_for_key(key) -> tuple[str, str]:
    """(SignatureMethod, DigestMethod) for a private or public RSA, EC or GOST key."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return RSA_SHA256, SHA256
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return ECDSA_SHA256, SHA256
    if isinstance(key, (GostPrivateKey, GostPublicKey)):
        return key.profile.signature_uri, key.profile.digest_uri
    raise TypeError(f"unsupported key type {type(key).__name__}: RSA, EC or GOST is expected")


def _ec_size(key) -> int:
    return (key.curve.key_size + 7) // 8


def sign_value(key, signature_uri: str, data: bytes) -> bytes:
    """The SignatureValue octets: PKCS#1 v1.5 for RSA, r||s (RFC 4050, not DER) for ECDSA, s||r for GOST."""
    if isinstance(key, GostPrivateKey):
        if GOST_SIGNATURE_METHODS.get(signature_uri) != key.profile:
            raise ValueError(f"a {key.profile.name} key cannot sign {signature_uri}")
        return key.sign(data)
    hash_algorithm = SIGNATURE_METHODS[signature_uri][1]
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hash_algorithm)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_algorithm)))
    size = _ec_size(key)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def verify_value(public_key, signature_uri: str, value: bytes, data: bytes) -> bool:
    """Whether `value` signs `data`; a key of the wrong type (or GOST curve) for the method never verifies."""
    profile = GOST_SIGNATURE_METHODS.get(signature_uri)
    if profile is not None:
        return isinstance(public_key, GostPublicKey) and public_key.profile == profile and \
            public_key.verify(value, data)
    key_type, hash_algorithm = SIGNATURE_METHODS[signature_uri]
    if not isinstance(public_key, key_type):
        return False
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(value, data, padding.PKCS1v15(), hash_algorithm)
        else:
            half = len(value) // 2
            if not value or len(value) % 2 or half > _ec_size(public_key):
                return False
            signature = encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big"))
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
    except InvalidSignature:
        return False
    return True


def digest(digest_uri: str, data: bytes) -> bytes:
    algorithm = DIGEST_METHODS[digest_uri]
    if isinstance(algorithm, str):
        return gost_digests.digest(algorithm, data)
    return hashlib.new(algorithm.name, data).digest()


def b64decode(text: str | None) -> bytes:
    """Base64 as Java and .NET write it (line breaks allowed); binascii.Error when it is not base64."""
    return base64.b64decode("".join((text or "").split()), validate=True)


def load_certificate(text: str) -> x509.Certificate:
    """A base64 DER certificate from a token or X509Certificate element."""
    try:
        return _parsed_certificate(text)
    except (binascii.Error, ValueError) as exc:
        raise malformed(f"the certificate is not a base64 DER X.509 certificate: {exc}") from None


@functools.lru_cache(maxsize=1024)
def _parsed_certificate(text: str) -> x509.Certificate:
    # A participant sends the same certificate in every message; one immutable object per text also
    # lets the validator's per-certificate caches hit.
    return x509.load_der_x509_certificate(b64decode(text))


def inclusive_prefixes(method: etree._Element) -> list[str] | None:
    """The PrefixList of an ec:InclusiveNamespaces child (Java and .NET peers put it in CanonicalizationMethod)."""
    inclusive = method.find(INCLUSIVE_NAMESPACES)
    return None if inclusive is None else inclusive.get("PrefixList", "").split()


def canonicalize(node, method_uri: str, prefixes: list[str] | None = None, *, comments: bool = True) -> bytes:
    """C14N 1.0 or exclusive C14N of an element (in its document context) or of a whole tree.

    `comments=False` for same-document references: "" and "#id" select the node-set minus comments
    (XMLDSig 1.1 §4.4.3.3), whatever the #WithComments transform says.
    """
    exclusive, with_comments = C14N_METHODS[method_uri]
    return etree.tostring(node, method="c14n", exclusive=exclusive, with_comments=with_comments and comments,
                          inclusive_ns_prefixes=prefixes if exclusive else None)


def in_scope_prefixes(element: etree._Element) -> list[str]:
    """Every namespace prefix in scope in the subtree: an exc-c14n PrefixList that keeps QName content
    (`xsi:type="xs:string"`) bound to what was signed (library-notes §2, pitfall 7)."""
    return sorted({prefix for prefix, _ in _NAMESPACES(element) if prefix and prefix != "xml"})


_NAMESPACES = etree.XPath("descendant-or-self::*/namespace::*")
