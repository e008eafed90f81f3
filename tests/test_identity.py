"""IIN / BIN check digits (e-service-domain §4.1), generation, and the subject readers of certificates."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.security import identity

# Every row of the table in §4.1: value, valid checksum?, (birth date, sex) or None.
TABLE = [
    ("791028302728", True, (date(1979, 10, 28), "M")),
    ("061211600012", True, (date(2006, 12, 11), "F")),
    ("990106300596", True, (date(1999, 1, 6), "M")),
    ("840317000029", True, None),  # digit 7 is 0: checksum fine, century unassigned
    ("123456789011", False, None),  # check digit should be 3; digit 7 is 7 (unassigned)
    ("900101300811", True, (date(1990, 1, 1), "M")),  # first pass 10, second pass 1
    ("900101300800", False, (date(1990, 1, 1), "M")),  # both passes 10: never issued
    ("791028302727", False, (date(1979, 10, 28), "M")),  # last digit altered
]
BINS = [("081140000436", True), ("230540004989", True), ("161140016747", True), ("161140016746", False)]


@pytest.mark.parametrize("value, valid, born", TABLE)
def test_iin_table(value, valid, born):
    assert identity.is_valid_iin(value) is valid
    assert identity.iin_birth_date_and_sex(value) == born


@pytest.mark.parametrize("value, valid", BINS)
def test_bin_table(value, valid):
    assert identity.is_valid_bin(value) is valid


def test_check_digit_passes():
    assert identity.check_digit("12345678901") == 3
    assert identity.check_digit("90010130081") == 1  # second pass
    assert identity.check_digit("90010130080") is None  # never issued
    assert identity.check_digit("79102830272") == 8


@pytest.mark.parametrize("bad", ["1234567890", "123456789012", "1234567890a", "١٢٣٤٥٦٧٨٩٠١", None, 12345678901])
def test_check_digit_rejects_non_digits(bad):
    with pytest.raises(ValueError):
        identity.check_digit(bad)


@pytest.mark.parametrize("bad", ["79102830272", "7910283027288", " 791028302728", "79102830272X", None,
                                 791028302728, "７９１０２８３０２７２８"])
def test_malformed_numbers_are_invalid(bad):
    assert identity.is_valid_iin(bad) is False
    assert identity.is_valid_bin(bad) is False
    assert identity.iin_birth_date_and_sex(bad) is None


@pytest.mark.parametrize("value", ["790230302728", "791328302728", "790229302720"])
def test_impossible_birth_dates(value):
    assert identity.iin_birth_date_and_sex(value) is None


def test_century_and_sex_digits():
    assert identity.iin_birth_date_and_sex("791028102728") == (date(1879, 10, 28), "M")
    assert identity.iin_birth_date_and_sex("791028202728") == (date(1879, 10, 28), "F")
    assert identity.iin_birth_date_and_sex("001028502728") == (date(2000, 10, 28), "M")
    for digit in "0789":
        assert identity.iin_birth_date_and_sex(f"791028{digit}02728") is None


def test_generated_iins_round_trip():
    rng = random.Random(20240501)
    start, days = date(1900, 1, 1), (date(2099, 12, 31) - date(1900, 1, 1)).days
    centuries = set()
    for _ in range(2000):
        born = start + timedelta(days=rng.randrange(days + 1))
        sex = rng.choice("MF")
        iin = identity.generate_iin(born, sex, rng)
        assert identity.is_valid_iin(iin), iin
        assert identity.iin_birth_date_and_sex(iin) == (born, sex), iin
        centuries.add(iin[6])
    assert centuries == {"3", "4", "5", "6"}


def test_generate_iin_rejects_bad_input():
    rng = random.Random(1)
    with pytest.raises(ValueError):
        identity.generate_iin(date(1990, 1, 1), "X", rng)
    with pytest.raises(ValueError):
        identity.generate_iin(date(2100, 1, 1), "M", rng)
    with pytest.raises(ValueError):
        identity.generate_iin(date(1799, 12, 31), "F", rng)


def test_generated_bins_round_trip():
    rng = random.Random(7)
    for _ in range(1000):
        year, month = rng.randint(1995, 2030), rng.randint(1, 12)
        entity_type, attribute = rng.choice("456"), rng.choice("0123")
        value = identity.generate_bin(year, month, rng, entity_type, attribute)
        assert identity.is_valid_bin(value), value
        assert value[:6] == f"{year % 100:02d}{month:02d}{entity_type}{attribute}"
    assert identity.generate_bin(2023, 5, rng)[:6] == "230540"


@pytest.mark.parametrize("args", [(2023, 0), (2023, 13), (1899, 5)])
def test_generate_bin_rejects_bad_dates(args):
    with pytest.raises(ValueError):
        identity.generate_bin(*args, random.Random(1))


@pytest.mark.parametrize("kwargs", [{"entity_type": "7"}, {"attribute": "4"}, {"entity_type": "45"}])
def test_generate_bin_rejects_bad_digits(kwargs):
    with pytest.raises(ValueError):
        identity.generate_bin(2023, 5, random.Random(1), **kwargs)


_KEY = ec.generate_private_key(ec.SECP256R1())


def certificate(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(_KEY.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(_KEY, hashes.SHA256()))


PERSON = certificate((NameOID.COMMON_NAME, "ТЕСТОВ ТЕСТ"), (NameOID.SURNAME, "ТЕСТОВ"),
                     (NameOID.SERIAL_NUMBER, "IIN123456789011"), (NameOID.COUNTRY_NAME, "KZ"),
                     (NameOID.GIVEN_NAME, "ТЕСТОВИЧ"))
EMPLOYEE = certificate((NameOID.COMMON_NAME, "ТЕСТОВ ТЕСТ"), (NameOID.SERIAL_NUMBER, "IIN791028302728"),
                       (NameOID.COUNTRY_NAME, "KZ"), (NameOID.ORGANIZATION_NAME, 'ТОО "Тест"'),
                       (NameOID.ORGANIZATIONAL_UNIT_NAME, "BIN230540004989"))
ORGANISATION = certificate((NameOID.COMMON_NAME, 'ТОО "Тест"'), (NameOID.SERIAL_NUMBER, "BIN081140000436"),
                           (NameOID.COUNTRY_NAME, "KZ"))


def test_subject_iin_strips_prefix_without_checksum():
    assert identity.subject_iin(PERSON) == "123456789011"  # an invalid checksum, as in NCA test certificates
    assert identity.subject_iin(EMPLOYEE) == "791028302728"
    assert identity.subject_iin(ORGANISATION) is None
    assert identity.subject_bin(PERSON) is None


def test_subject_bin_from_ou_or_serial_number():
    assert identity.subject_bin(EMPLOYEE) == "230540004989"
    assert identity.subject_bin(ORGANISATION) == "081140000436"


def test_subject_readers_ignore_look_alikes():
    # The IIN in CN or a GIVEN_NAME, or a SERIALNUMBER without the prefix, is not the subject IIN.
    cert = certificate((NameOID.COMMON_NAME, "IIN791028302728"), (NameOID.GIVEN_NAME, "IIN791028302728"),
                       (NameOID.SERIAL_NUMBER, "791028302728"), (NameOID.ORGANIZATION_NAME, "BIN230540004989"))
    assert identity.subject_iin(cert) is None
    assert identity.subject_bin(cert) is None
    short = certificate((NameOID.SERIAL_NUMBER, "IIN7910283027"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "BIN2305"))
    assert identity.subject_iin(short) is None
    assert identity.subject_bin(short) is None


def test_signer_iin_matches():
    assert identity.signer_iin_matches("791028302728", EMPLOYEE)
    assert identity.signer_iin_matches("\n  791028302728 ", EMPLOYEE)
    assert not identity.signer_iin_matches("791028302727", EMPLOYEE)
    assert not identity.signer_iin_matches("230540004989", EMPLOYEE)  # the BIN is not the signer's IIN
    assert not identity.signer_iin_matches("", ORGANISATION)
    assert not identity.signer_iin_matches(None, EMPLOYEE)
