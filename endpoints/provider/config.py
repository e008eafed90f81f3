"""The АЖО's configuration (TOML): the PHC organisations (организации ПМСП / МСАК ұйымдары) it serves,
their service zones, districts (участки), authorised persons and employees, and the grounds' settings.

`defaults/clinics.toml` documents every key; `load()` validates the whole file at start, so a bad value
stops the system with the key at fault instead of failing a citizen's request later.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from pathlib import Path

from gateway.security.identity import is_valid_bin, is_valid_iin
from endpoints.provider.rules import CATALOGUE, GROUNDS

DEFAULT_CONFIG = Path(__file__).resolve().parent / "defaults" / "clinics.toml"
DISTRICT_KINDS = ("therapeutic", "paediatric", "general")
REASONS = ("FREE_CHOICE", "RESIDENCE_CHANGE", "CAMPAIGN", "NEWBORN")
OUTSIDE_ZONE = ("refuse", "home_visit")
_MONTH_DAY = re.compile(r"(\d\d)-(\d\d)")


class ConfigError(ValueError):
    """An invalid configuration: the dotted key at fault and why."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")


def normalise(text: str | None) -> str | None:
    """Addresses compare upper-case with single spaces, the way the person registry writes them."""
    return " ".join(text.upper().split()) if text and text.strip() else None


@dataclass(frozen=True)
class Officer:
    """Someone who signs for a clinic: the authorised person (уполномоченное лицо) or an employee."""
    iin: str
    surname: str
    name: str
    patronymic: str
    position: str
    password_hash: str | None = None  # employees log in to the АЖО (diagram 2, process 1)

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.surname, self.name, self.patronymic) if part)


@dataclass(frozen=True)
class Area:
    """A piece of territory as the registry names it: the rayon or city of regional significance
    (`district`, e.g. "Г.АКТАУ"), the settlement (`city`) and, optionally, some of its streets."""
    district: str | None
    city: str | None
    streets: frozenset[str]

    def covers(self, district: str | None, city: str | None, street: str | None) -> bool:
        # An address without its rayon (a declared one, say) is matched by the settlement alone.
        if self.district and district and normalise(district) != self.district:
            return False
        if self.district and not district and not self.city:
            return False
        if self.city and normalise(city) != self.city:
            return False
        return not self.streets or normalise(street) in self.streets


@dataclass(frozen=True)
class District:
    """A district (участок) of a clinic: its number, kind, doctor and how many people it may serve."""
    number: str
    kind: str  # therapeutic (adults) | paediatric (minors) | general (general practice, everyone)
    doctor: str
    capacity: int

    def serves(self, minor: bool) -> bool:
        return self.kind == "general" or (self.kind == "paediatric") == minor


@dataclass(frozen=True)
class Clinic:
    """A PHC organisation (организация ПМСП)."""
    bin: str
    code: str  # short code in coupon numbers
    name: str
    address: str
    outside_zone: str  # refuse | home_visit (attach, with the home-visit note on the coupon)
    zone: tuple[Area, ...]
    border: tuple[Area, ...]  # border-area exceptions: neighbouring territory it may attach
    districts: tuple[District, ...]
    authorised: Officer
    employees: tuple[Officer, ...]

    def district(self, number: str | None) -> District | None:
        return next((d for d in self.districts if d.number == number), None)

    def employee(self, iin: str) -> Officer | None:
        return next((e for e in self.employees if e.iin == iin), None)


@dataclass(frozen=True)
class Organisation:
    """The АЖО's operator: signs the refusals for clinics the system does not serve."""
    bin: str
    name: str
    authorised: Officer


@dataclass(frozen=True)
class Rules:
    """Settings of the grounds (docs/attachment-rules.md)."""
    adult_age: int
    free_changes_per_year: int
    exempt_reasons: frozenset[str]  # changes for these reasons are not counted
    campaign: tuple[tuple[int, int], tuple[int, int]] | None  # (month, day) start and end, inclusive
    outside_zone: str  # default for clinics that do not say
    home_visit_note: str
    require_family_data: bool
    disabled: frozenset[str]
    texts: dict[str, tuple[str, str]]  # code -> (ru, kk) overriding the catalogue

    def in_campaign(self, day: date) -> bool:
        if self.campaign is None:
            return False
        start, end = self.campaign
        key = (day.month, day.day)
        # A window across the new year (01 Dec – 31 Jan) wraps around.
        return start <= key <= end if start <= end else key >= start or key <= end


@dataclass(frozen=True)
class ProviderConfig:
    participant: str  # the АЖО's participant id on the gateway
    password: str  # its gateway password
    service_id: str  # the async attachment service it provides
    registry_service_id: str  # the ЖТ ММБ (ГБД ФЛ) sync service
    sender_code: str  # senderCode in ЖТ ММБ requests
    utc_offset: timezone
    revocation: str  # ocsp,crl | ocsp | crl | none, for the signatures the АЖО checks
    session_minutes: int
    lockout_attempts: int  # wrong passwords in a row before an employee's login is locked (as the portal's)
    lockout_minutes: float
    transport_signature: bool  # WS-Security on every call to the gateway, with the operator's certificate
    verify_pushes: bool  # take only pushes signed by the gateway's certificate (false: any caller, tests/demos)
    operator: Organisation
    rules: Rules
    clinics: dict[str, Clinic]

    def clinic(self, bin: str | None) -> Clinic | None:
        return self.clinics.get(bin)


def _table(data: dict, key: str, path: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}{key}", "must be a table")
    return value


def _text(data: dict, key: str, path: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}{key}", "must be a non-empty string")
    return value.strip()


def _iin(data: dict, key: str, path: str) -> str:
    value = _text(data, key, path)
    if not is_valid_iin(value):
        raise ConfigError(f"{path}{key}", f"{value!r} is not an IIN (12 digits, valid check digit)")
    return value


def _officer(data: dict, path: str, *, login: bool = False) -> Officer:
    password_hash = None
    if login:
        password_hash = _text(data, "password_hash", path)
        if _parse_hash(password_hash) is None:
            raise ConfigError(f"{path}password_hash", "must be pbkdf2-sha256$<iterations>$<salt>$<hash> "
                                                      "(`shep hash-password`)")
    return Officer(_iin(data, "iin", path), _text(data, "surname", path), _text(data, "name", path),
                   data.get("patronymic", ""), _text(data, "position", path), password_hash)


def _areas(items, path: str) -> tuple[Area, ...]:
    if not isinstance(items, list):
        raise ConfigError(path, "must be an array of tables")
    areas = []
    for index, item in enumerate(items):
        where = f"{path}[{index}]."
        streets = item.get("streets", [])
        if not isinstance(streets, list) or not all(isinstance(s, str) for s in streets):
            raise ConfigError(f"{where}streets", "must be an array of strings")
        area = Area(normalise(item.get("district")), normalise(item.get("city")),
                    frozenset(normalise(s) for s in streets))
        if not (area.district or area.city):
            raise ConfigError(where.rstrip("."), "names neither district nor city")
        areas.append(area)
    return tuple(areas)


def _district(data: dict, path: str) -> District:
    kind = _text(data, "kind", path)
    if kind not in DISTRICT_KINDS:
        raise ConfigError(f"{path}kind", f"must be one of {', '.join(DISTRICT_KINDS)}")
    capacity = data.get("capacity")
    if not isinstance(capacity, int) or capacity < 1:
        raise ConfigError(f"{path}capacity", "must be a positive integer")
    number = data.get("number")
    if not isinstance(number, (str, int)) or not str(number).strip():
        raise ConfigError(f"{path}number", "must be a string or an integer")
    return District(str(number).strip(), kind, _text(data, "doctor", path), capacity)


def _clinic(data: dict, path: str, outside_default: str) -> Clinic:
    bin_ = _text(data, "bin", path)
    if not is_valid_bin(bin_):
        raise ConfigError(f"{path}bin", f"{bin_!r} is not a BIN (12 digits, valid check digit)")
    outside = data.get("outside_zone", outside_default)
    if outside not in OUTSIDE_ZONE:
        raise ConfigError(f"{path}outside_zone", f"must be one of {', '.join(OUTSIDE_ZONE)}")
    districts = tuple(_district(d, f"{path}districts[{i}].") for i, d in enumerate(data.get("districts", [])))
    if not districts:
        raise ConfigError(f"{path}districts", "a clinic needs at least one district")
    if len({d.number for d in districts}) != len(districts):
        raise ConfigError(f"{path}districts", "district numbers must be unique")
    employees = tuple(_officer(e, f"{path}employees[{i}].", login=True)
                      for i, e in enumerate(data.get("employees", [])))
    zone = _areas(data.get("zone", []), f"{path}zone")
    if not zone:
        raise ConfigError(f"{path}zone", "a clinic needs a service zone")
    return Clinic(bin_, _text(data, "code", path), _text(data, "name", path), data.get("address", ""), outside,
                  zone, _areas(data.get("border", []), f"{path}border"), districts,
                  _officer(_table(data, "authorised", path), f"{path}authorised."), employees)


def _month_day(value, key: str) -> tuple[int, int]:
    match = _MONTH_DAY.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        date(2000, int(match[1]), int(match[2]))  # a leap year admits 02-29
    except ValueError:
        raise ConfigError(key, f"{value!r} is not a month-day \"MM-DD\"") from None
    return int(match[1]), int(match[2])


def _rules(data: dict) -> Rules:
    path = "rules."
    campaign = None
    if "campaign_start" in data or "campaign_end" in data:
        campaign = (_month_day(data.get("campaign_start"), f"{path}campaign_start"),
                    _month_day(data.get("campaign_end"), f"{path}campaign_end"))
    exempt = frozenset(data.get("exempt_reasons", ["RESIDENCE_CHANGE", "NEWBORN"]))
    if not exempt <= set(REASONS):
        raise ConfigError(f"{path}exempt_reasons", f"reasons are {', '.join(REASONS)}")
    disabled = frozenset(data.get("disabled", []))
    names = {ground.__name__ for ground in GROUNDS}
    if not disabled <= names:
        raise ConfigError(f"{path}disabled", f"unknown grounds {sorted(disabled - names)}; "
                                             f"they are {', '.join(sorted(names))}")
    texts = {}
    for code, text in _table(data, "texts", path).items():
        if code not in CATALOGUE:
            raise ConfigError(f"{path}texts.{code}", "no such refusal code")
        texts[code] = (_text(text, "ru", f"{path}texts.{code}."), _text(text, "kk", f"{path}texts.{code}."))
    outside = data.get("outside_zone", "refuse")
    if outside not in OUTSIDE_ZONE:
        raise ConfigError(f"{path}outside_zone", f"must be one of {', '.join(OUTSIDE_ZONE)}")
    for key, low in (("adult_age", 1), ("free_changes_per_year", 0)):
        if not isinstance(data.get(key, low), int) or data.get(key, low) < low:
            raise ConfigError(f"{path}{key}", f"must be an integer ≥ {low}")
    return Rules(adult_age=data.get("adult_age", 18), free_changes_per_year=data.get("free_changes_per_year", 1),
                 exempt_reasons=exempt, campaign=campaign, outside_zone=outside,
                 home_visit_note=_text(data, "home_visit_note", path,
                                       "Адрес вне территории обслуживания: помощь на дому — по согласованию "
                                       "с организацией"),
                 require_family_data=bool(data.get("require_family_data", False)), disabled=disabled,
                 texts=texts)


def parse(data: dict) -> ProviderConfig:
    system = _table(data, "system", "")
    operator = _table(data, "operator", "")
    rules = _rules(_table(data, "rules", ""))
    operator_bin = _text(operator, "bin", "operator.")
    if not is_valid_bin(operator_bin):
        raise ConfigError("operator.bin", f"{operator_bin!r} is not a BIN")
    clinics = {}
    for index, item in enumerate(data.get("clinics", [])):
        clinic = _clinic(item, f"clinics[{index}].", rules.outside_zone)
        if clinic.bin in clinics:
            raise ConfigError(f"clinics[{index}].bin", f"{clinic.bin} is configured twice")
        clinics[clinic.bin] = clinic
    if not clinics:
        raise ConfigError("clinics", "at least one clinic is needed")
    offset = system.get("utc_offset_hours", 5)
    if not isinstance(offset, int) or not -12 <= offset <= 14:
        raise ConfigError("system.utc_offset_hours", "must be an integer hour offset")
    session_minutes = system.get("session_minutes", 480)
    if not isinstance(session_minutes, int) or session_minutes < 1:
        raise ConfigError("system.session_minutes", "must be a positive integer")
    lockout_attempts = system.get("lockout_attempts", 5)
    if isinstance(lockout_attempts, bool) or not isinstance(lockout_attempts, int) or lockout_attempts < 1:
        raise ConfigError("system.lockout_attempts", "must be a positive integer")
    lockout_minutes = system.get("lockout_minutes", 15)
    if isinstance(lockout_minutes, bool) or not isinstance(lockout_minutes, (int, float)) or not lockout_minutes > 0:
        raise ConfigError("system.lockout_minutes", "must be a positive number")
    for flag, default in (("transport_signature", False), ("verify_pushes", True)):
        if not isinstance(system.get(flag, default), bool):
            raise ConfigError(f"system.{flag}", "must be true or false")
    revocation = system.get("revocation", "ocsp,crl")
    if revocation not in ("ocsp,crl", "ocsp", "crl", "none"):
        raise ConfigError("system.revocation", "must be ocsp,crl | ocsp | crl | none")
    return ProviderConfig(
        participant=_text(system, "participant", "system.", "ajo"),
        password=_text(system, "password", "system."),
        service_id=_text(system, "service", "system.", "PHC_ATTACHMENT"),
        registry_service_id=_text(system, "registry_service", "system.", "GBDFL_UniversalServiceSync"),
        sender_code=_text(system, "sender_code", "system.", "AJO"),
        utc_offset=timezone(timedelta(hours=offset)), revocation=revocation,
        session_minutes=session_minutes, lockout_attempts=lockout_attempts, lockout_minutes=float(lockout_minutes),
        transport_signature=system.get("transport_signature", False), verify_pushes=system.get("verify_pushes", True),
        operator=Organisation(operator_bin, _text(operator, "name", "operator."),
                              _officer(_table(operator, "authorised", "operator."), "operator.authorised.")),
        rules=rules, clinics=clinics)


def load(path: Path = DEFAULT_CONFIG) -> ProviderConfig:
    try:
        data = tomllib.loads(Path(path).read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), str(exc)) from None
    try:
        return parse(data)
    except ConfigError as exc:
        raise ConfigError(str(path), str(exc)) from None


# Employees' passwords use the gateway's stored form (`shep hash-password`), verified here
# because endpoints do not reach into the gateway's internals.
def _parse_hash(encoded: str) -> tuple[int, bytes, bytes] | None:
    parts = encoded.split("$") if isinstance(encoded, str) else []
    if len(parts) != 4 or parts[0] != "pbkdf2-sha256" or not parts[1].isdigit():
        return None
    iterations = int(parts[1])
    if not 1 <= iterations <= 10_000_000:
        return None
    try:
        return iterations, base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3], validate=True)
    except ValueError:
        return None


def verify_password(plain: str, encoded: str) -> bool:
    parsed = _parse_hash(encoded)
    if parsed is None or not isinstance(plain, str):
        return False
    iterations, salt, expected = parsed
    return hmac.compare_digest(hashlib.pbkdf2_hmac("sha256", plain.encode("utf-8"), salt, iterations), expected)
