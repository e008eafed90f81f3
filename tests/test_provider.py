"""The provider АЖО without HTTP: configuration, every ground (met and failed), the attachment documents
(schema, our verifier and libxmlsec1), the paper coupon (read back as text), and the office deciding over its own
tables with a fake ЖТ ММБ. Shared by tests/test_provider_http.py."""
from __future__ import annotations

import dataclasses
import random
import tomllib
from datetime import date, datetime, timedelta, timezone

import pytest
from lxml import etree

from endpoints.provider import config as cfg
from endpoints.provider import payload as p
from endpoints.provider import rules
from endpoints.provider.office import AttachmentOffice, PersonNotFound, parse
from endpoints.provider.pdf import coupon_pdf
from endpoints.provider.registry import Person, RegistryError
from endpoints.provider.signing import Credentials, Verifier, sign
from endpoints.provider.store import COMPLETED, REFUSED, ProviderStore
from gateway.security.algorithms import SignatureError
from gateway.security.certs import CertificateValidator, RevocationChecker
from gateway.passwords import hash_password
from gateway.security.identity import generate_iin, is_valid_bin, subject_bin, subject_iin
from tests import xmlsec_oracle
from tests.conftest import PASSWORD
from tests.pdf_text import pdf_text, text_positions

CLINIC_A, CLINIC_B, UNKNOWN_BIN = "030240525821", "050640382083", "161140016747"
LOCAL = timezone(timedelta(hours=5))


def _iin(born: date, sex: str, seed: int) -> str:
    return generate_iin(born, sex, random.Random(seed))


# The people of the fake ЖТ ММБ, and of the simulator's population file in the HTTP tests.
PEOPLE = {
    "adult": dict(iin=_iin(date(1985, 4, 10), "M", 1), surname="ТЕСТОВ", name="АРМАН", patronymic="БОЛАТОВИЧ",
                  district="aktau", street="МИКРОРАЙОН 5", building="12", flat="34"),
    "mover": dict(iin=_iin(date(1990, 8, 1), "F", 2), surname="ЖАНОВА", name="АЛИЯ", patronymic="СЕРИКОВНА",
                  district="aktau", street="МИКРОРАЙОН 14", building="3", flat="8"),
    "mother": dict(iin=_iin(date(1988, 2, 2), "F", 3), surname="ОМАРОВА", name="ДИНАРА", patronymic="КАНАТОВНА",
                   district="aktau", street="МИКРОРАЙОН 7", building="20", flat="5"),
    "child": dict(iin=_iin(date(2019, 5, 5), "M", 4), surname="ОМАРОВ", name="ТИМУР", patronymic="АСХАТОВИЧ",
                  district="aktau", street="МИКРОРАЙОН 7", building="20", flat="5"),
    "stranger": dict(iin=_iin(date(1975, 1, 20), "M", 5), surname="КАСЫМОВ", name="БЕРИК", patronymic="МАРАТОВИЧ",
                     district="aktau", street="МИКРОРАЙОН 9", building="1", flat="1"),
    "deceased": dict(iin=_iin(date(1950, 1, 1), "M", 6), surname="УТЕПОВ", name="АРЫСТАН", patronymic="ЖАНОВИЧ",
                     district="aktau", street="МИКРОРАЙОН 3", building="4", death_date="2024-01-01"),
    "suburb": dict(iin=_iin(date(1982, 3, 3), "M", 7), surname="СЕЙТОВ", name="ДАУРЕН", patronymic="ЕРЛАНОВИЧ",
                   district="munaily", town="БАСКУДУК", street="УЛИЦА АБАЯ", building="7"),
    "far": dict(iin=_iin(date(1979, 6, 6), "F", 8), surname="ИСКАКОВА", name="АСЕЛЬ", patronymic="НУРЛАНОВНА",
                district="beineu", street="УЛИЦА ДОСТЫК", building="2"),
}
PEOPLE["child"]["mother_iin"] = PEOPLE["mother"]["iin"]
NOBODY = _iin(date(1995, 9, 9), "F", 9)  # valid, in no registry
EMPLOYEE_A, EMPLOYEE_B = _iin(date(1984, 1, 1), "F", 10), _iin(date(1981, 1, 1), "M", 11)
EMPLOYEE_PASSWORD = "clinic-pass"
EMPLOYEE_HASH = hash_password(EMPLOYEE_PASSWORD, iterations=1000)  # the production form, fewer iterations
_TOWNS = {"aktau": ("Г.АКТАУ", "АКТАУ"), "munaily": ("МУНАЙЛИНСКИЙ РАЙОН", "БАСКУДУК"),
          "beineu": ("БЕЙНЕУСКИЙ РАЙОН", "БЕЙНЕУ")}


def _month_day(day: date) -> str:
    return f"{day:%m-%d}"


def config_text() -> str:
    # The campaign is a window away from today: "outside the campaign" holds whenever the tests run.
    today = datetime.now(LOCAL).date()
    start, end = today + timedelta(days=60), today + timedelta(days=90)
    return f"""
[system]
participant = "ajo"
password = "{PASSWORD}"
service = "PHC_ATTACHMENT"
registry_service = "GBDFL_UniversalServiceSync"
revocation = "none"

[operator]
bin = "120440295770"
name = "Управление здравоохранения (тест)"
[operator.authorised]
iin = "720830343744"
surname = "Есенов"
name = "Марат"
patronymic = "Канатович"
position = "Руководитель"

[rules]
campaign_start = "{_month_day(start)}"
campaign_end = "{_month_day(end)}"

[[clinics]]
bin = "{CLINIC_A}"
code = "AKT-P1"
name = "Поликлиника № 1 (тест)"
address = "г. Актау, 3 мкр., зд. 1"
zone = [{{ district = "Г.АКТАУ", city = "АКТАУ", streets = ["МИКРОРАЙОН 3", "МИКРОРАЙОН 5", "МИКРОРАЙОН 7"] }},
        {{ district = "Г.АКТАУ", city = "АКТАУ", streets = ["МИКРОРАЙОН 9"] }}]
districts = [
  {{ number = "1", kind = "therapeutic", doctor = "Садыкова Алия Маратовна", capacity = 100 }},
  {{ number = "2", kind = "paediatric", doctor = "Касымова Динара Кайратовна", capacity = 50 }},
  {{ number = "3", kind = "general", doctor = "Искаков Арман Нуржанович", capacity = 1 }},
]
[clinics.authorised]
iin = "750314362386"
surname = "Жумабеков"
name = "Ерлан"
patronymic = "Серикович"
position = "Главный врач"
[[clinics.employees]]
iin = "{EMPLOYEE_A}"
surname = "Серикбаева"
name = "Гульнара"
patronymic = "Талгатовна"
position = "Регистратор"
password_hash = "{EMPLOYEE_HASH}"

[[clinics]]
bin = "{CLINIC_B}"
code = "AKT-P2"
name = "Поликлиника № 2 (тест)"
outside_zone = "home_visit"
zone = [{{ district = "Г.АКТАУ", city = "АКТАУ", streets = ["МИКРОРАЙОН 14"] }}]
border = [{{ district = "МУНАЙЛИНСКИЙ РАЙОН", city = "БАСКУДУК" }}]
districts = [
  {{ number = "1", kind = "therapeutic", doctor = "Тулегенов Берик Жанатович", capacity = 100 }},
  {{ number = "2", kind = "paediatric", doctor = "Абдрахманова Мадина Сериковна", capacity = 50 }},
]
[clinics.authorised]
iin = "800702449260"
surname = "Нурланова"
name = "Асель"
patronymic = "Ерболатовна"
position = "Главный врач"
[[clinics.employees]]
iin = "{EMPLOYEE_B}"
surname = "Досмухамбетов"
name = "Тимур"
patronymic = "Канатович"
position = "Регистратор"
password_hash = "{EMPLOYEE_HASH}"
"""


def provider_config(**rules_overrides) -> cfg.ProviderConfig:
    config = cfg.parse(tomllib.loads(config_text()))
    return dataclasses.replace(config, rules=dataclasses.replace(config.rules, **rules_overrides))


def registry_person(key: str, **overrides) -> Person:
    record = PEOPLE[key]
    district, city = _TOWNS[record["district"]]
    born = date(int(record["iin"][:2]) + (2000 if record["iin"][6] in "56" else 1900), int(record["iin"][2:4]),
                int(record["iin"][4:6]))
    died = date.fromisoformat(record["death_date"]) if record.get("death_date") else None
    fields = dict(iin=record["iin"], surname=record["surname"], name=record["name"],
                  patronymic=record["patronymic"], birth_date=born, alive=died is None, death_date=died,
                  address=p.Address("МАНГИСТАУСКАЯ ОБЛАСТЬ", district, record.get("town", city), record["street"],
                                    record["building"], record.get("flat")),
                  parents=frozenset({record["mother_iin"]}) if record.get("mother_iin") else None)
    fields.update(overrides)
    return Person(**fields)


def applicant(key: str, *, with_address: bool = False) -> p.PersonData:
    person = registry_person(key)
    return p.PersonData(person.iin, person.surname, person.name, person.patronymic, person.birth_date,
                        person.address if with_address else None)


def request_for(key: str, clinic_bin: str = CLINIC_A, *, number: str = "PORTAL-1", **fields) -> p.AttachmentRequest:
    values = dict(request_number=number, submitted_at=datetime.now(LOCAL).replace(microsecond=0), channel=p.PORTAL,
                  applicant=applicant(key, with_address=True), clinic_bin=clinic_bin, reason="FREE_CHOICE")
    values.update(fields)
    return p.AttachmentRequest(**values)


def citizen(pki, key: str):
    """The citizen's SIGN certificate (as the portal's signing application would use)."""
    return pki.cert(f"provider-citizen-{key}", kind="person", iin=PEOPLE[key]["iin"])


def signed_request(pki, key: str, signer: str | None = None, **fields) -> bytes:
    document = sign(p.request_document(request_for(key, **fields)), _credentials(citizen(pki, signer or key)))
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


def _credentials(issued) -> tuple:
    return issued.key, issued.cert


# --- configuration --------------------------------------------------------------------------------------

def test_default_clinics_load_and_are_consistent():
    config = cfg.load()
    assert len(config.clinics) >= 4 and config.participant == "ajo" and config.service_id == "PHC_ATTACHMENT"
    for clinic in config.clinics.values():
        assert is_valid_bin(clinic.bin) and clinic.zone and clinic.districts and clinic.employees
        assert {d.kind for d in clinic.districts} <= set(cfg.DISTRICT_KINDS)
        for employee in clinic.employees:
            assert cfg.verify_password("clinic-pass", employee.password_hash)
    assert config.rules.campaign == ((9, 15), (11, 15)) and config.rules.free_changes_per_year == 1
    assert any(clinic.border for clinic in config.clinics.values())


@pytest.mark.parametrize("change, key", [
    (lambda d: d["clinics"][0].update(bin="030240525820"), "clinics[0].bin"),
    (lambda d: d["clinics"][0]["districts"][0].update(kind="surgical"), "clinics[0].districts[0].kind"),
    (lambda d: d["clinics"][0]["districts"][0].update(capacity=0), "clinics[0].districts[0].capacity"),
    (lambda d: d["rules"].update(disabled=["no_such_ground"]), "rules.disabled"),
    (lambda d: d["rules"].update(campaign_start="13-01"), "rules.campaign_start"),
    (lambda d: d["clinics"][0]["employees"][0].update(password_hash="plain"), "password_hash"),
    (lambda d: d["clinics"][1].update(outside_zone="maybe"), "clinics[1].outside_zone"),
    (lambda d: d["system"].update(transport_signature="yes"), "system.transport_signature"),
    (lambda d: d["system"].update(lockout_attempts=0), "system.lockout_attempts"),
    (lambda d: d["system"].update(lockout_minutes=True), "system.lockout_minutes"),
    (lambda d: d["system"].update(verify_pushes="no"), "system.verify_pushes"),
])
def test_bad_configuration_names_the_key(change, key):
    data = tomllib.loads(config_text())
    change(data)
    with pytest.raises(cfg.ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        cfg.parse(data)


def test_campaign_window_may_wrap_the_new_year():
    winter = dataclasses.replace(provider_config().rules, campaign=((12, 1), (1, 31)))
    assert winter.in_campaign(date(2026, 12, 15)) and winter.in_campaign(date(2027, 1, 31))
    assert not winter.in_campaign(date(2027, 2, 1))
    autumn = dataclasses.replace(winter, campaign=((9, 15), (11, 15)))
    assert autumn.in_campaign(date(2026, 9, 15)) and not autumn.in_campaign(date(2026, 11, 16))
    assert not dataclasses.replace(winter, campaign=None).in_campaign(date(2026, 10, 1))


# --- the grounds, one by one --------------------------------------------------------------------------------

TODAY = date(2026, 3, 10)  # outside the campaign of the test configuration's rules below


def application(key: str = "adult", clinic_bin: str = CLINIC_A, **overrides) -> rules.Application:
    config = provider_config(campaign=((9, 15), (11, 15)))
    request = overrides.pop("request", None) or request_for(key, clinic_bin)
    person = overrides.pop("person", registry_person(key))
    clinic = config.clinic(request.clinic_bin)
    minor = person.age_on(TODAY) < 18 if person else None
    fields = dict(request=request, settings=config.rules, today=TODAY, clinic=clinic,
                  signer_iin=request.representative_iin or request.applicant.iin, person=person,
                  district=rules.choose_district(clinic, request.district_number, minor, {}))
    fields.update(overrides)
    return rules.Application(**fields)


def codes(app: rules.Application) -> list[str]:
    return [reason.code for reason in rules.evaluate(app)]


def test_a_sound_application_meets_every_ground():
    app = application()
    assert codes(app) == []
    assert app.district.number == "1" and rules.zone_status(app) == "zone"


def test_every_ground_has_a_code_and_both_texts():
    assert [ground.__name__ for ground in rules.GROUNDS] == [name for name, _, _ in rules.CATALOGUE.values()]
    for code, (_, ru, kk) in rules.CATALOGUE.items():
        assert code.startswith("ATT-") and ru and kk and ru != kk


def test_signature_valid():
    assert rules.signature_valid(application()) is None
    reason = rules.signature_valid(application(signature_error="CERT_REVOKED: revoked", signer_iin=None))
    assert reason.code == "ATT-101" and "revoked" in reason.detail
    # An unconfirmed signature is one reason, not two: whose it is does not matter then.
    assert codes(application(signature_error="PAYLOAD_SIGNATURE_INVALID: x", signer_iin=None)) == ["ATT-101"]


def test_signer_matches_applicant_representative_or_employee():
    assert rules.signer_matches(application(signer_iin=PEOPLE["stranger"]["iin"])).code == "ATT-102"
    child = request_for("child", representative_iin=PEOPLE["mother"]["iin"])
    assert rules.signer_matches(application("child", request=child)) is None
    assert rules.signer_matches(application("child", request=child,
                                            signer_iin=PEOPLE["child"]["iin"])).code == "ATT-102"
    by_employee = request_for("adult", channel=p.PROVIDER, employee_iin=EMPLOYEE_A)
    assert rules.signer_matches(application(request=by_employee, signer_iin=EMPLOYEE_A)) is None
    # An employee of another clinic may not sign for this one.
    other = request_for("adult", channel=p.PROVIDER, employee_iin=EMPLOYEE_B)
    assert rules.signer_matches(application(request=other, signer_iin=EMPLOYEE_B)).code == "ATT-102"


def test_clinic_served():
    app = application(request=request_for("adult", UNKNOWN_BIN))
    assert codes(app) == ["ATT-103"]  # nothing else can be judged without the clinic


def test_person_found_and_alive():
    assert codes(application(person=None)) == ["ATT-201"]
    dead = application("deceased")
    assert rules.person_alive(dead).code == "ATT-202" and "2024-01-01" in rules.person_alive(dead).detail
    assert rules.person_alive(application()) is None


def test_representative_required_for_minors_only():
    mother = registry_person("mother")
    alone = application("child")
    assert rules.representative_required(alone).code == "ATT-203"
    with_mother = application("child", request=request_for("child", representative_iin=mother.iin),
                              representative=mother)
    assert rules.representative_required(with_mother) is None
    assert rules.representative_required(dataclasses.replace(with_mother, representative=None)).code == "ATT-203"
    minor_rep = dataclasses.replace(with_mother, representative=registry_person("child"))
    assert rules.representative_required(minor_rep).code == "ATT-203"
    adult_with_rep = application(request=request_for("adult", representative_iin=mother.iin), representative=mother)
    assert rules.representative_required(adult_with_rep).code == "ATT-203"


def test_representative_is_parent_when_the_registry_says_who_the_parents_are():
    mother, stranger = registry_person("mother"), registry_person("stranger")
    app = application("child", request=request_for("child", representative_iin=mother.iin), representative=mother)
    assert rules.representative_is_parent(app) is None
    by_stranger = application("child", request=request_for("child", representative_iin=stranger.iin),
                              representative=stranger)
    assert rules.representative_is_parent(by_stranger).code == "ATT-204"
    # The registry's wire format has no family data: skipped, unless the configuration requires it.
    unknown = dataclasses.replace(by_stranger, person=registry_person("child", parents=None))
    assert rules.representative_is_parent(unknown) is None
    strict = dataclasses.replace(unknown, settings=dataclasses.replace(unknown.settings, require_family_data=True))
    assert rules.representative_is_parent(strict).code == "ATT-204"


def test_in_service_zone_border_area_and_home_visit():
    assert rules.in_service_zone(application()) is None
    far = application("far")
    assert rules.zone_status(far) == "outside" and rules.in_service_zone(far).code == "ATT-301"
    assert "БЕЙНЕУ" in rules.in_service_zone(far).detail
    suburb = application("suburb", CLINIC_B)
    assert rules.zone_status(suburb) == "border" and rules.in_service_zone(suburb) is None
    assert not rules.home_visit(suburb)
    # Clinic B attaches people from outside its zone with the home-visit note.
    outside_b = application("adult", CLINIC_B)
    assert rules.zone_status(outside_b) == "outside" and rules.in_service_zone(outside_b) is None
    assert rules.home_visit(outside_b)


def test_the_registry_address_outweighs_the_declared_one():
    declared_in_zone = request_for("far", applicant=dataclasses.replace(
        applicant("far"), address=registry_person("adult").address))
    assert rules.in_service_zone(application("far", request=declared_in_zone)).code == "ATT-301"
    # Without any address in the registry the declared one is used.
    assert rules.in_service_zone(application("far", person=None)) is None  # ATT-201 says it all
    homeless = application("far", request=declared_in_zone, person=registry_person("far", address=None))
    assert rules.in_service_zone(homeless) is None
    nowhere = application("far", person=registry_person("far", address=None),
                          request=request_for("far", applicant=applicant("far")))
    assert rules.in_service_zone(nowhere).detail == "no address known"


def test_temporary_registration_counts():
    person = registry_person("far", temporary=(registry_person("adult").address,))
    assert rules.in_service_zone(application("far", person=person)) is None


def test_campaign_open():
    assert rules.campaign_open(application(request=request_for("adult", reason="CAMPAIGN"))).code == "ATT-302"
    in_campaign = application(request=request_for("adult", reason="CAMPAIGN"), today=date(2026, 10, 1))
    assert rules.campaign_open(in_campaign) is None


def test_free_change_limit():
    elsewhere = rules.CurrentAttachment(CLINIC_B, "1", date(2026, 1, 5))
    first = application(current=elsewhere, changes_this_year=0)
    assert rules.free_change_limit(first) is None and rules.counts_as_free_change(first)
    used = application(current=elsewhere, changes_this_year=1)
    assert rules.free_change_limit(used).code == "ATT-303"
    moved = application(current=elsewhere, changes_this_year=1,
                        request=request_for("adult", reason="RESIDENCE_CHANGE"))
    assert rules.free_change_limit(moved) is None and not rules.counts_as_free_change(moved)
    campaign = dataclasses.replace(used, today=date(2026, 10, 1))
    assert rules.free_change_limit(campaign) is None
    generous = dataclasses.replace(used, settings=dataclasses.replace(used.settings, free_changes_per_year=2))
    assert rules.free_change_limit(generous) is None
    assert not rules.counts_as_free_change(application())  # a first attachment is no change


def test_residence_changed():
    """ATT-307: judged on ЖТ ММБ's registrations against the address the current attachment was made at."""
    person = registry_person("adult")
    there = rules.CurrentAttachment(CLINIC_B, "1", date(2026, 1, 5), person.address.line())
    moved_request = request_for("adult", reason="RESIDENCE_CHANGE")
    stayed = application(current=there, request=moved_request)
    assert rules.residence_changed(stayed).code == "ATT-307"
    assert rules.residence_changed(dataclasses.replace(stayed, request=request_for("adult"))) is None
    assert rules.residence_changed(dataclasses.replace(stayed, current=None)) is None  # nothing to exempt
    elsewhere = registry_person("far").address
    assert rules.residence_changed(dataclasses.replace(stayed, person=registry_person(
        "adult", temporary=(elsewhere,)))) is None  # a new temporary registration is a move
    assert rules.residence_changed(dataclasses.replace(
        stayed, current=dataclasses.replace(there, address=elsewhere.line()))) is None
    assert rules.residence_changed(dataclasses.replace(stayed, person=registry_person("adult", address=None))).code \
        == "ATT-307"  # the registry shows no address at all: no move shown


def test_not_already_attached():
    here = application(current=rules.CurrentAttachment(CLINIC_A, "1", date(2025, 5, 5)))
    assert rules.not_already_attached(here).code == "ATT-304"
    assert rules.not_already_attached(application()) is None


def test_district_suitable_and_has_room():
    paediatric = application(request=request_for("adult", district_number="2"))
    assert rules.district_suitable(paediatric).code == "ATT-305"
    assert rules.district_suitable(application(request=request_for("adult", district_number="9"))).code == "ATT-305"
    general = application(request=request_for("adult", district_number="3"))
    assert rules.district_suitable(general) is None and rules.district_has_room(general) is None
    full = dataclasses.replace(general, district_load=1)
    assert rules.district_has_room(full).code == "ATT-306" and "1 of 1" in rules.district_has_room(full).detail


def test_choose_district_picks_a_suitable_one_with_room():
    clinic = provider_config().clinic(CLINIC_A)
    assert rules.choose_district(clinic, None, True, {}).number == "2"
    assert rules.choose_district(clinic, None, False, {}).number in ("1", "3")
    assert rules.choose_district(clinic, None, False, {"3": 0, "1": 99}).number == "3"
    assert rules.choose_district(clinic, None, False, {"3": 1, "1": 99}).number == "1"
    assert rules.choose_district(clinic, None, False, {"3": 1, "1": 100}).number in ("1", "3")  # full: refused
    assert rules.choose_district(clinic, "9", False, {}) is None
    assert rules.choose_district(clinic, None, None, {}) is None


def test_grounds_can_be_switched_off_and_reworded():
    far = application("far")
    settings = dataclasses.replace(far.settings, disabled=frozenset({"in_service_zone"}),
                                   texts={"ATT-101": ("подпись", "қолтаңба")})
    assert codes(dataclasses.replace(far, settings=settings)) == []
    reworded = dataclasses.replace(far, settings=settings, signature_error="x", signer_iin=None)
    assert [(r.code, r.ru, r.kk) for r in rules.evaluate(reworded)] == [("ATT-101", "подпись", "қолтаңба")]


def test_all_failing_grounds_are_listed():
    app = application("deceased", request=request_for("deceased", district_number="2", reason="CAMPAIGN"),
                      signer_iin=PEOPLE["stranger"]["iin"])
    assert codes(app) == ["ATT-102", "ATT-202", "ATT-302", "ATT-305"]


# --- the documents -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def authorised(pki):
    return pki.pki.issue("organization", bin=CLINIC_A, org="Поликлиника № 1 (тест)", iin="750314362386",
                         surname="Жумабеков", name="Ерлан", patronymic="Серикович")


def sample_coupon(**overrides) -> p.Coupon:
    person = registry_person("adult")
    fields = dict(coupon_number="AKT-P1-2026-000042", request_number="PORTAL-7",
                  registration_number="R-20260310-000042",
                  issued_at=datetime(2026, 3, 10, 11, 30, tzinfo=LOCAL),
                  person=p.PersonData(person.iin, person.surname, person.name, person.patronymic, person.birth_date,
                                      person.address),
                  clinic_bin=CLINIC_A, clinic_name="ГКП на ПХВ «Поликлиника № 1 г. Актау»",
                  district=p.DistrictData("3", "general", "Искаков Арман Нуржанович"),
                  attachment_date=date(2026, 3, 10), reason="FREE_CHOICE",
                  home_visit_note="Адрес вне территории обслуживания: помощь на дому по согласованию",
                  previous_clinic_bin=CLINIC_B)
    fields.update(overrides)
    return p.Coupon(**fields)


def validator(pki) -> CertificateValidator:
    return CertificateValidator(pki.pki.trust_anchors(), pki.pki.intermediates(), RevocationChecker("none"))


def test_coupon_is_valid_signed_and_verified_by_xmlsec(pki, authorised):
    """Ours and libxmlsec1 agree (tests/xmlsec_oracle.py: the python-xmlsec wheel, and the xmlsec1 command where
    installed)."""
    signed = sign(p.coupon_document(sample_coupon()), _credentials(authorised))
    p.validate(signed)
    raw = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    verified = Verifier(validator(pki)).verify(raw)
    assert (verified.signer_iin, subject_bin(verified.certificate)) == ("750314362386", CLINIC_A)
    assert p.read_coupon(verified.root) == sample_coupon()
    verdict = xmlsec_oracle.verify(raw, cert=authorised.cert)
    assert verdict.ok, verdict.detail
    tampered = raw.replace(b"<number>3</number>", b"<number>4</number>")
    assert not xmlsec_oracle.verify(tampered, cert=authorised.cert).ok
    with pytest.raises(SignatureError):
        Verifier(validator(pki)).verify(tampered)


def test_refusal_registration_and_request_are_schema_valid(authorised):
    reasons = [p.Reason(code, ru, kk) for code, (_, ru, kk) in list(rules.CATALOGUE.items())[:3]]
    refusal = sign(p.refusal_document(request_number="PORTAL-7", registration_number="R-1",
                                      refused_at=datetime.now(LOCAL), reasons=reasons), _credentials(authorised))
    p.validate(refusal)
    assert p.read_refusal(refusal) == reasons
    registration = sign(p.registration_document(request_number="PORTAL-7", registration_number="R-1",
                                                registered_at=datetime.now(LOCAL), clinic_bin=CLINIC_A),
                        _credentials(authorised))
    p.validate(registration)
    request = request_for("child", representative_iin=PEOPLE["mother"]["iin"], district_number="2")
    assert p.read_request(p.request_document(request)) == request
    with pytest.raises(ValueError, match="clinicBin"):
        broken = p.request_document(request)
        broken.find("clinicBin").text = "12345"
        p.read_request(broken)


def test_paper_coupon_pdf_shows_person_clinic_and_number():
    """Read back by pdftotext, else pypdf (tests/pdf_text.py)."""
    pdf = coupon_pdf(sample_coupon(), clinic_address="г. Актау, 3 мкр., зд. 1", signer="Главный врач Жумабеков Е. С.")
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    for expected in ("ТІРКЕУ ТАЛОНЫ / ТАЛОН ПРИКРЕПЛЕНИЯ", "МСАК көрсететін", "ТЕСТОВ АРМАН БОЛАТОВИЧ",
                     PEOPLE["adult"]["iin"], "Поликлиника № 1 г. Актау", "AKT-P1-2026-000042",
                     "Искаков Арман Нуржанович", "10.03.2026", "помощь на дому", CLINIC_B):
        assert expected in text, expected
    # Both languages on the one form, Kazakh first: every label, the district's kind and the reason.
    for kk, ru in (("Талон нөмірі", "Номер талона"), ("ЖСН", "ИИН"), ("Учаскелік дәрігер", "Участковый врач"),
                   ("Уәкілетті тұлға", "Уполномоченное лицо"), ("қолы", "подпись")):
        assert kk in text and ru in text and text.index(kk) < text.index(ru), (kk, ru)
    assert "жалпы практика дәрігері / врача общей практики" in text
    assert "еркін таңдау / свободный выбор" in text


@pytest.mark.parametrize("signer", ["Жумабеков Е. С.", "Главный врач ГКП на ПХВ «Поликлиника № 1 г. Актау» "
                                                       "Кенжебаева-Нурмагамбетова Гульнара Ертаргыновна"])
def test_the_signer_s_name_keeps_off_the_signature_line(signer):
    """Measured where a reader puts the text (pypdf's positions): the name's rows are neither the label's nor
    the signature line's, and lie between them."""
    runs = text_positions(coupon_pdf(sample_coupon(), signer=signer))
    [label] = [i for i, run in enumerate(runs) if run[0].startswith("Уәкілетті тұлға")]
    [line] = [i for i, run in enumerate(runs) if set(run[0]) == {"_"}]
    label_y, line_y = runs[label][2], runs[line][2]
    name = runs[label + 1:line]  # what is drawn between the label and the line: the name, nothing else
    assert " ".join(run[0] for run in name) == signer
    for _, _, y in name:
        assert label_y - y >= 10 and y - line_y >= 10, (signer, y, label_y, line_y)


# --- the office over its own tables ---------------------------------------------------------------------

class FakeRegistry:
    """ЖТ ММБ as a dict; `down` makes it fail like an unreachable registry."""

    def __init__(self, people: dict[str, Person]):
        self.people = people
        self.asked: list[str] = []
        self.down = False

    def find(self, iin: str) -> Person | None:
        self.asked.append(iin)
        if self.down:
            raise RegistryError("connection refused")
        return self.people.get(iin)


@pytest.fixture
def office(tmp_path, store_engine, pki):
    people = {PEOPLE[key]["iin"]: registry_person(key) for key in PEOPLE}
    return AttachmentOffice(provider_config(), ProviderStore(store_engine), FakeRegistry(people),
                            Verifier(validator(pki)), Credentials(tmp_path / "certs", pki.pki))


def portal(office: AttachmentOffice, document: bytes, message_id: str) -> dict:
    return office.decide(office.register_portal(document, message_id=message_id, correlation_id="corr-" + message_id))


def test_office_attaches_and_the_register_ends_the_previous_attachment(office, pki):
    first = portal(office, signed_request(pki, "adult", clinic_bin=CLINIC_B), "m1")
    assert first["status"] == COMPLETED and first["registration_number"].startswith("R-")
    coupon = p.read_coupon(office.verifier.verify(first["result_xml"]).root)
    assert coupon.home_visit_note == office.config.rules.home_visit_note  # outside B's zone, B allows it
    assert coupon.previous_clinic_bin is None and coupon.clinic_bin == CLINIC_B

    second = portal(office, signed_request(pki, "adult", number="PORTAL-2"), "m2")
    assert second["status"] == COMPLETED
    verified = office.verifier.verify(second["result_xml"])
    assert subject_bin(verified.certificate) == CLINIC_A and subject_iin(verified.certificate) == "750314362386"
    coupon = p.read_coupon(verified.root)
    assert (coupon.previous_clinic_bin, coupon.home_visit_note, coupon.district.number) == (CLINIC_B, None, "1")
    assert coupon.coupon_number == f"AKT-P1-{coupon.attachment_date:%Y}-{second['id']:06d}"
    records = office.store.attachments(iin=PEOPLE["adult"]["iin"])
    assert [(r["clinic_bin"], r["detach_date"]) for r in records] == [(CLINIC_B, coupon.attachment_date),
                                                                       (CLINIC_A, None)]
    assert CLINIC_A in records[0]["detach_reason"] and records[1]["counted_change"]

    # The yearly free change is used: going back to B is refused, unless the person moved.
    again = portal(office, signed_request(pki, "adult", clinic_bin=CLINIC_B, number="PORTAL-3"), "m3")
    assert again["status"] == REFUSED
    assert [r.code for r in p.read_refusal(parse(again["result_xml"]))] == ["ATT-303"]
    stayed = portal(office, signed_request(pki, "adult", clinic_bin=CLINIC_B, number="PORTAL-4",
                                           reason="RESIDENCE_CHANGE"), "m4")
    assert [r.code for r in p.read_refusal(parse(stayed["result_xml"]))] == ["ATT-307"]  # ЖТ ММБ shows no move
    office.registry.people[PEOPLE["adult"]["iin"]] = registry_person(
        "adult", address=p.Address("МАНГИСТАУСКАЯ ОБЛАСТЬ", "Г.АКТАУ", "АКТАУ", "МИКРОРАЙОН 14", "2"))
    moved = portal(office, signed_request(pki, "adult", clinic_bin=CLINIC_B, number="PORTAL-5",
                                          reason="RESIDENCE_CHANGE"), "m5")
    assert moved["status"] == COMPLETED
    assert len(office.store.attachments(iin=PEOPLE["adult"]["iin"], active_only=True)) == 1


def test_office_refuses_with_signed_reasons(office, pki):
    refused = portal(office, signed_request(pki, "deceased"), "d1")
    assert refused["status"] == REFUSED and refused["coupon_number"] is None
    verified = office.verifier.verify(refused["result_xml"])
    assert subject_bin(verified.certificate) == CLINIC_A
    assert [r.code for r in p.read_refusal(verified.root)] == ["ATT-202"]
    assert verified.root.findtext("registrationNumber") == refused["registration_number"]
    # Someone else's signature, and a clinic the system does not serve (the operator signs that one).
    assert [r.code for r in p.read_refusal(parse(portal(office, signed_request(pki, "adult", signer="stranger"),
                                                        "d2")["result_xml"]))] == ["ATT-102"]
    unknown = portal(office, signed_request(pki, "adult", clinic_bin=UNKNOWN_BIN), "d3")
    assert subject_bin(office.verifier.verify(unknown["result_xml"]).certificate) == "120440295770"
    assert office.store.attachments(iin=PEOPLE["adult"]["iin"]) == []


def test_office_capacity_and_minors(office, pki):
    assert portal(office, signed_request(pki, "adult", district_number="3"), "c1")["status"] == COMPLETED
    full = portal(office, signed_request(pki, "stranger", district_number="3"), "c2")
    assert [r.code for r in p.read_refusal(parse(full["result_xml"]))] == ["ATT-306"]
    alone = portal(office, signed_request(pki, "child"), "c3")
    assert [r.code for r in p.read_refusal(parse(alone["result_xml"]))] == ["ATT-203"]
    mother = PEOPLE["mother"]["iin"]
    by_mother = portal(office, signed_request(pki, "child", signer="mother", representative_iin=mother), "c4")
    assert by_mother["status"] == COMPLETED
    assert p.read_coupon(parse(by_mother["result_xml"])).district.number == "2"  # paediatric


def test_office_registers_once_and_resumes_when_the_registry_was_down(office, pki):
    document = signed_request(pki, "adult")
    office.registry.down = True
    row = office.register_portal(document, message_id="r1", correlation_id="c")
    with pytest.raises(RegistryError):
        office.decide(row)
    assert office.store.by_message("r1")["status"] == "REGISTERED"
    again = office.register_portal(document, message_id="r1", correlation_id="c")  # redelivered
    assert again["id"] == row["id"] and again["registration_number"] == row["registration_number"]
    office.registry.down = False
    decided = office.decide(office.store.by_message("r1"))
    assert decided["status"] == COMPLETED and office.decide(decided) == decided
    assert len(office.store.attachments(iin=PEOPLE["adult"]["iin"])) == 1


def test_office_employee_draft_and_signature(office, pki):
    config = office.config
    clinic = config.clinic(CLINIC_A)
    employee = clinic.employees[0]
    with pytest.raises(PersonNotFound):
        office.draft(clinic, employee, iin=NOBODY, reason="FREE_CHOICE")
    draft, person = office.draft(clinic, employee, iin=PEOPLE["stranger"]["iin"], reason="FREE_CHOICE")
    assert draft["status"] == "DRAFT" and draft["request_number"] == f"E-{draft['id']:06d}"
    assert person.surname == "КАСЫМОВ" and b"Signature" not in draft["request_xml"]
    row = office.sign_draft(draft["request_number"], clinic, employee)
    assert row["status"] == COMPLETED and row["channel"] == "PROVIDER"
    assert subject_iin(office.verifier.verify(row["request_xml"]).certificate) == employee.iin
    [record] = office.store.attachments(clinic_bin=CLINIC_A)
    assert (record["iin"], record["channel"], record["request_id"]) == (
        person.iin, "PROVIDER", row["registration_number"])


def test_certificates_are_issued_once_and_kept(tmp_path, pki):
    credentials = Credentials(tmp_path / "certs", pki.pki)
    clinic = provider_config().clinic(CLINIC_A)
    key, cert = credentials.get(clinic.authorised, kind="organization", bin=clinic.bin, org=clinic.name)
    assert (subject_iin(cert), subject_bin(cert)) == (clinic.authorised.iin, CLINIC_A)
    assert (tmp_path / "certs" / CLINIC_A / clinic.authorised.iin / "key.pem").stat().st_mode & 0o777 == 0o600
    reloaded = Credentials(tmp_path / "certs", pki.pki).get(clinic.authorised, kind="organization", bin=clinic.bin,
                                                            org=clinic.name)
    assert reloaded[1] == cert
    # A certificate near its end is replaced at start.
    late = Credentials(tmp_path / "certs", pki.pki, clock=lambda: cert.not_valid_after_utc)
    assert late.get(clinic.authorised, kind="organization", bin=clinic.bin, org=clinic.name)[1] != cert
