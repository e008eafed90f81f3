"""GOST keys: the national CA's three profiles, key objects, and their ASN.1 forms (SPKI, PKCS#8, PEM).

Encodings follow the national CA's certificates (docs/signatures.md, with sources): the public key is
an OCTET STRING of x‖y, each little-endian, inside the SubjectPublicKeyInfo BIT STRING; parameters are
SEQUENCE { parameter-set OID, digest OID }; a signature value is s‖r, each big-endian, in X.509 and
XMLDSig alike; the digest is read as a little-endian integer.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import textwrap
from dataclasses import dataclass

from asn1crypto import core

from gateway.security.gost import digests, ec
from gateway.security.gost.curves import BY_OID, CRYPTOPRO_A, TC26_256_A, TC26_512_A, Curve


@dataclass(frozen=True)
class Profile:
    """One generation of GOST signatures as the national CA issues them."""

    name: str
    curve: Curve
    hash: str
    key_oid: str
    signature_oid: str
    digest_oid: str
    signature_uri: str
    digest_uri: str


GOST2004 = Profile("gost2004", CRYPTOPRO_A, digests.GOST34311, "1.2.398.3.10.1.1.1.1", "1.2.398.3.10.1.1.1.2",
                   "1.2.398.3.10.1.3.1", "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311",
                   "http://www.w3.org/2001/04/xmldsig-more#gost34311")
GOST2015 = Profile("gost2015", TC26_512_A, digests.STREEBOG_512, "1.2.398.3.10.1.1.2.2", "1.2.398.3.10.1.1.2.3.2",
                   "1.2.398.3.10.1.3.3",
                   "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512",
                   "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34112015-512")
GOST2015_256 = Profile("gost2015-256", TC26_256_A, digests.STREEBOG_256, "1.2.398.3.10.1.1.2.1",
                       "1.2.398.3.10.1.1.2.3.1", "1.2.398.3.10.1.3.2",
                       "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-256",
                       "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34112015-256")
PROFILES = {profile.name: profile for profile in (GOST2004, GOST2015, GOST2015_256)}
BY_SIGNATURE_OID = {profile.signature_oid: profile for profile in PROFILES.values()}
_BY_CURVE = {profile.curve.name: profile for profile in PROFILES.values()}
# Key algorithm OIDs read in certificates: the national CA's and the Russian ones (RFC 4491 / 9215).
_KEY_OIDS = frozenset({GOST2004.key_oid, GOST2015.key_oid, GOST2015_256.key_oid,
                       "1.2.643.2.2.19", "1.2.643.7.1.1.1.1", "1.2.643.7.1.1.1.2"})


class KeyFormatError(ValueError):
    """Not a GOST key this module reads."""


class _Parameters(core.Sequence):
    _fields = [("key_parameter_set", core.ObjectIdentifier), ("digest", core.ObjectIdentifier, {"optional": True})]


class _Algorithm(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class _SubjectPublicKeyInfo(core.Sequence):
    _fields = [("algorithm", _Algorithm), ("public_key", core.OctetBitString)]


class _PrivateKeyInfo(core.Sequence):
    _fields = [("version", core.Integer), ("algorithm", _Algorithm), ("private_key", core.OctetString)]


def _algorithm(profile: Profile) -> _Algorithm:
    parameters = _Parameters({"key_parameter_set": profile.curve.kz_oid, "digest": profile.digest_oid})
    return _Algorithm({"algorithm": profile.key_oid, "parameters": core.Any.load(parameters.dump())})


def _profile_of(algorithm: _Algorithm) -> Profile:
    if algorithm["algorithm"].dotted not in _KEY_OIDS:
        raise KeyFormatError(f"key algorithm {algorithm['algorithm'].dotted} is not GOST")
    try:
        curve_oid = _Parameters.load(algorithm["parameters"].dump())["key_parameter_set"].dotted
    except (ValueError, TypeError):
        raise KeyFormatError("unreadable GOST key parameters") from None
    curve = BY_OID.get(curve_oid)
    if curve is None:
        raise KeyFormatError(f"GOST parameter set {curve_oid} is not supported")
    return _BY_CURVE[curve.name]


def _little(value: int, size: int) -> bytes:
    return int(value).to_bytes(size, "little")


def _pem(label: str, der: bytes) -> bytes:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


@dataclass(frozen=True)
class GostPublicKey:
    profile: Profile
    x: int
    y: int

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether `signature` (s‖r) signs `data` under this key's profile (its curve and hash)."""
        size = self.profile.curve.size
        if len(signature) != 2 * size:
            return False
        s, r = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        return ec.verify_digest((self.x, self.y), digests.digest(self.profile.hash, data), r, s, self.profile.curve)

    def point_bytes(self) -> bytes:
        size = self.profile.curve.size
        return _little(self.x, size) + _little(self.y, size)

    def spki_der(self) -> bytes:
        return _SubjectPublicKeyInfo({"algorithm": _algorithm(self.profile),
                                      "public_key": core.OctetString(self.point_bytes()).dump()}).dump()

    def pem(self) -> bytes:
        return _pem("PUBLIC KEY", self.spki_der())

    def key_identifier(self) -> bytes:
        """SHA-1 of the subjectPublicKey BIT STRING's value (RFC 5280 §4.2.1.2, method 1), as for any key."""
        return hashlib.sha1(core.OctetString(self.point_bytes()).dump()).digest()

    @classmethod
    def from_spki(cls, der: bytes) -> GostPublicKey:
        try:
            spki = _SubjectPublicKeyInfo.load(der)
            profile = _profile_of(spki["algorithm"])
            point = core.OctetString.load(spki["public_key"].native).native
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"unreadable GOST public key: {exc}") from None
        size = profile.curve.size
        if len(point) != 2 * size:
            raise KeyFormatError(f"a {profile.name} public key is {2 * size} octets, not {len(point)}")
        key = cls(profile, int.from_bytes(point[:size], "little"), int.from_bytes(point[size:], "little"))
        if not ec.on_curve((key.x, key.y), profile.curve):
            raise KeyFormatError("the GOST public key is not a point of its curve")
        return key


class GostPrivateKey:
    def __init__(self, profile: Profile, d: int):
        if not 0 < d < profile.curve.q:
            raise KeyFormatError("the GOST private key is out of range")
        self.profile = profile
        self._d = d

    @classmethod
    def generate(cls, profile: Profile) -> GostPrivateKey:
        return cls(profile, ec.new_private(profile.curve))

    @functools.cached_property
    def _public(self) -> GostPublicKey:
        x, y = ec.public_point(self._d, self.profile.curve)
        return GostPublicKey(self.profile, x, y)

    def public_key(self) -> GostPublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        """s‖r over `data`, hashed with the profile's hash."""
        r, s = ec.sign_digest(self._d, digests.digest(self.profile.hash, data), self.profile.curve)
        size = self.profile.curve.size
        return int(s).to_bytes(size, "big") + int(r).to_bytes(size, "big")

    def pkcs8_der(self) -> bytes:
        inner = core.OctetString(_little(self._d, self.profile.curve.size)).dump()
        return _PrivateKeyInfo({"version": 0, "algorithm": _algorithm(self.profile), "private_key": inner}).dump()

    def pem(self) -> bytes:
        return _pem("PRIVATE KEY", self.pkcs8_der())

    @classmethod
    def from_pkcs8(cls, der: bytes) -> GostPrivateKey:
        try:
            info = _PrivateKeyInfo.load(der)
            profile = _profile_of(info["algorithm"])
            value = info["private_key"].native
            # The scalar is little-endian: bare (the OpenSSL GOST engine for 512-bit keys), in an inner
            # OCTET STRING (our files, the engine for 256-bit keys), or an INTEGER (older tools).
            if len(value) == profile.curve.size:
                return cls(profile, int.from_bytes(value, "little"))
            inner = core.load(value, strict=True)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"unreadable GOST private key: {exc}") from None
        if isinstance(inner, core.OctetString):
            return cls(profile, int.from_bytes(inner.native, "little"))
        if isinstance(inner, core.Integer):
            return cls(profile, inner.native)
        raise KeyFormatError("unreadable GOST private key value")

    def __eq__(self, other) -> bool:
        return (isinstance(other, GostPrivateKey) and other.profile == self.profile
                and hmac.compare_digest(_little(self._d, 64), _little(other._d, 64)))

    __hash__ = None  # mutable-looking secrets are not dictionary keys

    def __repr__(self) -> str:
        return f"<GostPrivateKey {self.profile.name}>"
