"""Personal and business identification numbers: IIN (ИИН / ЖСН) and BIN (БИН).

Both are 12 digits sharing one check digit algorithm (e-service-domain §4). The checksum, the
century/sex digit and the birth date are separate checks: real registries hold numbers that pass
one and not another, and national CA test certificates carry numbers with wrong check digits.
"""
from __future__ import annotations

import random
import re
from datetime import date

from cryptography import x509
from cryptography.x509.oid import NameOID

_WEIGHTS = (tuple(range(1, 12)), (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2))
_DIGITS_11 = re.compile(r"[0-9]{11}")
_DIGITS_12 = re.compile(r"[0-9]{12}")
# IIN digit 7: century of birth and sex, odd = male.
_CENTURIES = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}
_ENTITY_TYPES = "456"
_ATTRIBUTES = "0123"


def check_digit(first11: str) -> int | None:
    """The 12th digit for these 11 digits, or None when both passes give 10 (never issued)."""
    if not isinstance(first11, str) or not _DIGITS_11.fullmatch(first11):
        raise ValueError(f"expected 11 ASCII digits, got {first11!r}")
    digits = [int(c) for c in first11]
    for weights in _WEIGHTS:
        result = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if result != 10:
            return result
    return None


def _checksum_ok(value) -> bool:
    if not isinstance(value, str) or not _DIGITS_12.fullmatch(value):
        return False
    expected = check_digit(value[:11])
    return expected is not None and expected == int(value[11])


def is_valid_iin(value) -> bool:
    """12 digits with a correct check digit; the birth date and century digit are not checked."""
    return _checksum_ok(value)


def is_valid_bin(value) -> bool:
    """12 digits with a correct check digit; the registration date and type digits are not checked."""
    return _checksum_ok(value)


def iin_birth_date_and_sex(iin: str) -> tuple[date, str] | None:
    """(birth date, "M"/"F") from digits 1–7, or None for an unassigned century digit or an impossible date."""
    if not isinstance(iin, str) or not _DIGITS_12.fullmatch(iin):
        return None
    marker = int(iin[6])
    if marker not in _CENTURIES:
        return None
    try:
        born = date(_CENTURIES[marker] + int(iin[0:2]), int(iin[2:4]), int(iin[4:6]))
    except ValueError:
        return None
    return born, "M" if marker % 2 else "F"


def _with_check_digit(prefix: str, serial_digits: int, rng: random.Random) -> str:
    # About one serial in 121 gives 10 twice; those numbers are never issued, so draw again.
    while True:
        first11 = prefix + f"{rng.randrange(10 ** serial_digits):0{serial_digits}d}"
        digit = check_digit(first11)
        if digit is not None:
            return first11 + str(digit)


def generate_iin(birth_date: date, sex: str, rng: random.Random) -> str:
    """A synthetic IIN with a valid check digit for this birth date and sex ("M"/"F")."""
    if sex not in ("M", "F"):
        raise ValueError(f"sex must be 'M' or 'F', got {sex!r}")
    century = birth_date.year // 100 * 100
    markers = [m for m, c in _CENTURIES.items() if c == century]
    if not markers:
        raise ValueError(f"IINs encode birth years 1800–2099, got {birth_date.year}")
    marker = markers[0] if sex == "M" else markers[1]
    return _with_check_digit(f"{birth_date:%y%m%d}{marker}", 4, rng)


def generate_bin(year: int, month: int, rng: random.Random, entity_type: str = "4", attribute: str = "0") -> str:
    """A synthetic BIN with a valid check digit: registration YYMM, entity type and attribute digits."""
    if not 1900 <= year <= 2099:
        raise ValueError(f"BIN registration year must be 1900–2099, got {year}")
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1–12, got {month}")
    if entity_type not in _ENTITY_TYPES or len(entity_type) != 1:
        raise ValueError(f"entity type must be one of {', '.join(_ENTITY_TYPES)}, got {entity_type!r}")
    if attribute not in _ATTRIBUTES or len(attribute) != 1:
        raise ValueError(f"attribute must be one of {', '.join(_ATTRIBUTES)}, got {attribute!r}")
    return _with_check_digit(f"{year % 100:02d}{month:02d}{entity_type}{attribute}", 5, rng)


def _prefixed(cert: x509.Certificate, oid: x509.ObjectIdentifier, prefix: str) -> str | None:
    for attribute in cert.subject.get_attributes_for_oid(oid):
        value = attribute.value
        if isinstance(value, str) and value.startswith(prefix) and _DIGITS_12.fullmatch(value[len(prefix):]):
            return value[len(prefix):]
    return None


def subject_iin(cert: x509.Certificate) -> str | None:
    """The IIN from SERIALNUMBER ("IIN…"), checksum not required (test certificates carry invalid ones)."""
    return _prefixed(cert, NameOID.SERIAL_NUMBER, "IIN")


def subject_bin(cert: x509.Certificate) -> str | None:
    """The BIN from OU ("BIN…", legal-entity certificates) or else SERIALNUMBER ("BIN…", organisation ones)."""
    return _prefixed(cert, NameOID.ORGANIZATIONAL_UNIT_NAME, "BIN") or _prefixed(cert, NameOID.SERIAL_NUMBER, "BIN")


def signer_iin_matches(document_iin: str, cert: x509.Certificate) -> bool:
    """Whether the certificate's subject IIN is the IIN the signed document speaks for."""
    signer = subject_iin(cert)
    # XML text nodes often carry layout whitespace around the number.
    return signer is not None and isinstance(document_iin, str) and document_iin.strip() == signer
