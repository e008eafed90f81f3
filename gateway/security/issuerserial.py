"""X509IssuerSerial key info: X509IssuerName read as signers write it, and the certificates it can name.

Signers spell one issuer many ways: RFC 4514 as `cryptography` and the gateway write it (`2.5.4.5=BIN…`),
RFC 2253 as Java and so WSS4J write it (`2.5.4.5=#130f…`, the DER value in hex), Java's and the national
profile's keywords (`SERIALNUMBER=`, `E=`, `G=`), OpenSSL's (`serialNumber=`, `\\D0\\9A` for UTF-8 bytes), spaces
after commas, RFC 1779 quotes and `;`. They are compared as parsed names: attribute types as OIDs, values
case-folded with runs of white space as one space (RFC 4518, simplified), in either RDN order.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, Iterable

from cryptography import x509

# One attribute type and value per pair; the pairs of one multi-valued RDN as a set; RDNs in DER order.
NameKey = tuple[frozenset[tuple[str, str]], ...]

_KEYWORDS = {
    "2.5.4.3": ("CN", "COMMONNAME"),
    "2.5.4.4": ("SN", "SURNAME"),
    "2.5.4.5": ("SERIALNUMBER",),
    "2.5.4.6": ("C", "COUNTRYNAME"),
    "2.5.4.7": ("L", "LOCALITYNAME"),
    "2.5.4.8": ("ST", "S", "STATEORPROVINCENAME"),
    "2.5.4.9": ("STREET", "STREETADDRESS"),
    "2.5.4.10": ("O", "ORGANIZATIONNAME"),
    "2.5.4.11": ("OU", "ORGANIZATIONALUNITNAME"),
    "2.5.4.12": ("T", "TITLE"),
    "2.5.4.15": ("BUSINESSCATEGORY",),
    "2.5.4.17": ("POSTALCODE",),
    "2.5.4.42": ("G", "GN", "GIVENNAME"),
    "2.5.4.43": ("INITIALS",),
    "2.5.4.44": ("GENERATION", "GENERATIONQUALIFIER"),
    "2.5.4.46": ("DNQ", "DNQUALIFIER"),
    "2.5.4.65": ("PSEUDONYM",),
    "2.5.4.97": ("ORGANIZATIONIDENTIFIER",),
    "1.2.840.113549.1.9.1": ("E", "EMAIL", "EMAILADDRESS"),
    "0.9.2342.19200300.100.1.1": ("UID", "USERID"),
    "0.9.2342.19200300.100.1.25": ("DC", "DOMAINCOMPONENT"),
}
_OID_OF = {keyword: oid for oid, keywords in _KEYWORDS.items() for keyword in keywords}
# DER string types a `#` value may hold, and how their octets read.
_DER_STRINGS = {0x0C: "utf-8", 0x12: "ascii", 0x13: "ascii", 0x14: "latin-1", 0x16: "ascii", 0x1A: "ascii",
                0x1C: "utf-32-be", 0x1E: "utf-16-be"}
_TYPE = re.compile(r"\s*(?:(?:OID\.)?(\d+(?:\.\d+)+)|([A-Za-z][A-Za-z0-9-]*))\s*=\s*", re.IGNORECASE)
_HEX_VALUE = re.compile(r"#([0-9A-Fa-f]{2})+")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")
_SPACES = re.compile(r"\s*")


def _normal(value: str | bytes) -> str:
    if isinstance(value, bytes):  # a BIT STRING attribute (x500UniqueIdentifier)
        return "#" + value.hex()
    return " ".join(value.casefold().split())


@lru_cache(maxsize=4096)
def name_key(name: x509.Name) -> NameKey:
    """A certificate's name in the form parsed names are compared in."""
    return tuple(frozenset((a.oid.dotted_string, _normal(a.value)) for a in rdn) for rdn in name.rdns)


def _der_string(data: bytes) -> str:
    if len(data) < 2 or data[0] not in _DER_STRINGS:
        raise ValueError("a #hex value that is not a DER character string")
    length, start = data[1], 2
    if length & 0x80:
        start = 2 + (length & 0x7F)
        length = int.from_bytes(data[2:start], "big")
    if start + length != len(data):
        raise ValueError("a #hex value whose DER length does not match")
    return data[start:].decode(_DER_STRINGS[data[0]])


def _value(text: str, pos: int) -> tuple[str, int]:
    """One attribute value from `pos`: `#hex`, "quoted" (RFC 1779) or a string with `\\` escapes."""
    hexed = _HEX_VALUE.match(text, pos)
    if hexed:
        return _der_string(bytes.fromhex(hexed.group()[1:])), hexed.end()
    quoted = pos < len(text) and text[pos] == '"'
    pos += quoted
    octets = bytearray()  # \HH escapes are UTF-8 octets, possibly several to one character
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            pair = _HEX_PAIR.match(text, pos + 1)
            if pair:
                octets.append(int(pair.group(), 16))
                pos += 3
                continue
            if pos + 1 == len(text):
                raise ValueError("a name ending in a lone backslash")
            char, pos = text[pos + 1], pos + 1
        elif quoted and char == '"':
            return octets.decode("utf-8"), pos + 1
        elif not quoted and char in ",;+":
            break
        octets += char.encode("utf-8")
        pos += 1
    if quoted:
        raise ValueError("an unterminated quoted value")
    return octets.decode("utf-8"), pos


def parse_name(text: str) -> NameKey:
    """An X509IssuerName as its NameKey; ValueError for what no convention reads."""
    rdns, pos = [], 0
    while True:
        pairs = set()
        while True:
            kind = _TYPE.match(text, pos)
            if kind is None:
                raise ValueError(f"no attribute type at {text[pos:pos + 20]!r}")
            oid = kind.group(1) or _OID_OF.get(kind.group(2).upper())
            if oid is None:
                raise ValueError(f"unknown attribute type {kind.group(2)!r}")
            value, pos = _value(text, kind.end())
            pairs.add((oid, _normal(value)))
            pos = _SPACES.match(text, pos).end()
            if not text.startswith("+", pos):
                break
            pos += 1
        rdns.append(frozenset(pairs))
        if pos == len(text):
            return tuple(reversed(rdns))  # the string names the most specific RDN first, DER the least
        if text[pos] not in ",;":
            raise ValueError(f"unexpected {text[pos]!r} after a value")
        pos += 1


class CertificateIndex:
    """Certificates by issuer and serial: `certificates` fixed when built, and `live` look-ups by serial
    for a source that grows while the gateway runs (the test PKI, which `shep pki issue` adds to)."""

    def __init__(self, certificates: Iterable[x509.Certificate] = (),
                 live: Iterable[Callable[[int], x509.Certificate | None]] = ()):
        self._fixed: dict[tuple[int, NameKey], x509.Certificate] = {}
        for cert in certificates:
            self._fixed.setdefault((cert.serial_number, name_key(cert.issuer)), cert)
        self._live = tuple(live)

    def find(self, issuer: NameKey, serial: int) -> x509.Certificate | None:
        # RFC 4514 writes the most specific RDN first; some signers write DER order.
        orders = (issuer, issuer[::-1])
        for order in orders:
            found = self._fixed.get((serial, order))
            if found is not None:
                return found
        for lookup in self._live:
            found = lookup(serial)
            if found is not None and name_key(found.issuer) in orders:
                return found
        return None
