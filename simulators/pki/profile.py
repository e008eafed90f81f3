"""The national CA's certificate profile (e-service-domain §5): subject DN, key usages, role and policy OIDs.

Everything here is synthetic: generated names look Kazakh, IINs and BINs carry valid check digits
but belong to nobody.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.security import identity

KINDS = ("person", "employee", "organization", "gateway")
USAGES = ("sign", "auth")

# Role OIDs carried in extended key usage (§5.3).
ROLE_INDIVIDUAL = x509.ObjectIdentifier("1.2.398.3.3.4.1.1")
ROLE_LEGAL_ENTITY = x509.ObjectIdentifier("1.2.398.3.3.4.1.2")
ROLE_FIRST_HEAD = x509.ObjectIdentifier("1.2.398.3.3.4.1.2.1")
ROLE_EMPLOYEE = x509.ObjectIdentifier("1.2.398.3.3.4.1.2.5")

# Certificate policies as one client library maps them (§5.4).
POLICY_LEGAL_ENTITY_SIGN = x509.ObjectIdentifier("1.2.398.3.3.2.1")
POLICY_LEGAL_ENTITY_AUTH = x509.ObjectIdentifier("1.2.398.3.3.2.2")
POLICY_INDIVIDUAL_SIGN = x509.ObjectIdentifier("1.2.398.3.3.2.3")
POLICY_INDIVIDUAL_AUTH = x509.ObjectIdentifier("1.2.398.3.3.2.4")

GATEWAY_ORG = ("Министерство цифрового развития, инноваций и аэрокосмической промышленности "
               "Республики Казахстан")
GATEWAY_BIN = "161140016747"

_ROLES = {
    "person": (ROLE_INDIVIDUAL,),
    "employee": (ROLE_LEGAL_ENTITY, ROLE_EMPLOYEE),
    "organization": (ROLE_LEGAL_ENTITY, ROLE_FIRST_HEAD),
    "gateway": (ROLE_LEGAL_ENTITY, ROLE_FIRST_HEAD),
}
_POLICIES = {
    ("person", "sign"): POLICY_INDIVIDUAL_SIGN,
    ("person", "auth"): POLICY_INDIVIDUAL_AUTH,
}

# Surnames ending in -ов/-ев/-ин take -а for women; fathers' names end in a consonant for -ович/-овна.
_SURNAMES = ("Ахметов", "Садыков", "Жумабеков", "Нурланов", "Серикбаев", "Касымов", "Омаров", "Тулегенов",
             "Искаков", "Абдрахманов", "Сейткалиев", "Мухамеджанов", "Бекмухамбетов", "Ержанов", "Досмухамбетов")
_GIVEN_MALE = ("Ерлан", "Нурлан", "Асхат", "Данияр", "Берик", "Арман", "Ержан", "Даурен", "Тимур", "Айдос")
_GIVEN_FEMALE = ("Айгерим", "Алия", "Динара", "Жанар", "Гульнара", "Асель", "Мадина", "Сауле", "Камила", "Дана")
_FATHERS = ("Серик", "Болат", "Марат", "Канат", "Жанат", "Бауыржан", "Кайрат", "Нуржан", "Ерболат", "Талгат")
_ORGS = ('ТОО "Городская поликлиника № {n}"', 'ГКП на ПХВ "Городская поликлиника № {n}"',
         'ТОО "Медицинский центр Тест-{n}"', 'ТОО "Синтетика Сервис {n}"')


@dataclass(frozen=True)
class Subject:
    """Who a certificate names: the person (always) and, for legal entities, the organisation."""

    surname: str
    name: str
    patronymic: str
    iin: str
    org: str | None = None
    bin: str | None = None

    def name_dn(self) -> x509.Name:
        """SURNAME and CN upper-case Cyrillic; G carries the patronymic; O/OU for legal entities (§5.1)."""
        surname, name, patronymic = self.surname.upper(), self.name.upper(), self.patronymic.upper()
        attributes = [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{surname} {name}"),
            x509.NameAttribute(NameOID.SURNAME, surname),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, f"IIN{self.iin}"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
            x509.NameAttribute(NameOID.GIVEN_NAME, patronymic),
        ]
        if self.org is not None:
            attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.org),
                           x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"BIN{self.bin}")]
        return x509.Name(attributes)

    def summary(self) -> dict:
        return {"cn": f"{self.surname.upper()} {self.name.upper()}", "iin": self.iin, "org": self.org,
                "bin": self.bin}


def make_subject(kind: str, rng: random.Random, *, iin: str | None = None, bin: str | None = None,
                 surname: str | None = None, name: str | None = None, patronymic: str | None = None,
                 org: str | None = None, birth_date: date | None = None, sex: str | None = None) -> Subject:
    """The subject for `kind`, generating whatever was not given; ValueError for inconsistent input."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if sex is not None and sex not in ("M", "F"):
        raise ValueError(f"sex must be M or F, got {sex!r}")
    if kind == "person" and (org is not None or bin is not None):
        raise ValueError("a person certificate names no organisation: --org/--bin apply to employee, "
                         "organization and gateway certificates")
    if iin is not None:
        if not identity.is_valid_iin(iin):
            raise ValueError(f"IIN {iin!r} is not 12 digits with a valid check digit")
        encoded = identity.iin_birth_date_and_sex(iin)
        if (birth_date is not None or sex is not None) and encoded is None:
            raise ValueError(f"IIN {iin} encodes no birth date and sex, so it cannot agree with the ones given")
        if birth_date is not None and encoded[0] != birth_date:
            raise ValueError(f"IIN {iin} encodes birth date {encoded[0]}, not {birth_date}")
        if sex is not None and encoded[1] != sex:
            raise ValueError(f"IIN {iin} encodes sex {encoded[1]}, not {sex}")
        if encoded is not None:
            birth_date, sex = encoded
    sex = sex or rng.choice("MF")
    if iin is None:
        birth_date = birth_date or date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
        iin = identity.generate_iin(birth_date, sex, rng)
    female = sex == "F"
    if surname is None:
        surname = rng.choice(_SURNAMES) + ("а" if female else "")
    if name is None:
        name = rng.choice(_GIVEN_FEMALE if female else _GIVEN_MALE)
    if patronymic is None:
        patronymic = rng.choice(_FATHERS) + ("овна" if female else "ович")
    if bin is not None and not identity.is_valid_bin(bin):
        raise ValueError(f"BIN {bin!r} is not 12 digits with a valid check digit")
    if kind == "gateway":
        org, bin = org or GATEWAY_ORG, bin or GATEWAY_BIN
    elif kind != "person":
        org = org or rng.choice(_ORGS).format(n=rng.randint(1, 40))
        bin = bin or identity.generate_bin(rng.randint(2008, 2024), rng.randint(1, 12), rng)
    return Subject(surname=surname, name=name, patronymic=patronymic, iin=iin, org=org, bin=bin)


def key_usage(usage: str) -> x509.KeyUsage:
    """SIGN: digitalSignature + nonRepudiation; AUTH: digitalSignature + keyEncipherment (§5.2).

    AUTH keeps keyEncipherment for EC keys too (RFC 5480 would say keyAgreement) because verifiers
    classify SIGN/AUTH by exactly these bits.
    """
    if usage not in USAGES:
        raise ValueError(f"usage must be one of {', '.join(USAGES)}, got {usage!r}")
    sign = usage == "sign"
    return x509.KeyUsage(digital_signature=True, content_commitment=sign, key_encipherment=not sign,
                         data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def extended_key_usage(kind: str, usage: str) -> x509.ExtendedKeyUsage:
    purpose = ExtendedKeyUsageOID.EMAIL_PROTECTION if usage == "sign" else ExtendedKeyUsageOID.CLIENT_AUTH
    return x509.ExtendedKeyUsage([purpose, *_ROLES[kind]])


def policy(kind: str, usage: str) -> x509.ObjectIdentifier:
    default = POLICY_LEGAL_ENTITY_SIGN if usage == "sign" else POLICY_LEGAL_ENTITY_AUTH
    return _POLICIES.get((kind, usage), default)
