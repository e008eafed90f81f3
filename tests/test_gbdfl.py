"""The ГБД ФЛ simulator: the population, the search, the payload schema and the provider's answers."""
from __future__ import annotations

import json
import re
import time
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from gateway import client
from gateway import contract as c
from gateway.checks.payload import PayloadSchema
from gateway.security import xmldsig
from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.identity import iin_birth_date_and_sex, is_valid_iin
from simulators.gbdfl import dictionaries as d
from simulators.gbdfl import names, wire
from simulators.gbdfl.__main__ import main
from simulators.gbdfl.population import (EDGE_CASES, EDGE_DECEASED, EDGE_INVALID_DOCUMENT, EDGE_NO_ADDRESS,
                                         FILE_FIELDS, REFERENCE_DATE, Population, Query, QueryError,
                                         build_population, generate, load_people)
from simulators.gbdfl.provider import BAD_REQUEST_CODE, FAULT_CODE, NOT_FOUND_CODE, SUCCESS, GbdflProvider
from tests import xmlsec_oracle

POLICY = AlgorithmPolicy()
DS_SIGNATURE = f"{{{c.DS_NS}}}Signature"


@pytest.fixture(scope="module")
def people():
    return generate(size=10_000)


@pytest.fixture(scope="module")
def population(people):
    return Population(people)


@pytest.fixture
def operator(pki):
    return pki.cert("gbdfl-operator", org="ГБД ФЛ (ТЕСТ)")


def request_payload(message_id: str = "req-1", **criteria: str) -> etree._Element:
    root = etree.Element(wire.REQUEST, nsmap={"ns2": wire.MESSAGE_NS})
    fields = {"messageId": message_id, "messageDate": client.now_iso(), "senderCode": "CLINIC", **criteria}
    for tag, value in fields.items():
        etree.SubElement(root, tag).text = value
    return root


def send_message(style: str = "typed", payload: etree._Element | None = None, **criteria: str) -> bytes:
    return client.build_send_message(
        service_id=wire.SERVICE_ID, sender_id="clinic", payload=payload if payload is not None
        else request_payload(**criteria), style=style, xsi_type=wire.REQUEST if style == "typed" else None)


def answer(provider: GbdflProvider, body: bytes) -> tuple[client.SyncReply, etree._Element | None]:
    """The reply and its verified Response document (None for a fault)."""
    reply = client.read_reply(*provider.answer(body))
    if not reply.ok:
        return reply, None
    return reply, xmldsig.verify_document(xmldsig.document_in_data(reply.data), policy=POLICY).root


def found_iins(response: etree._Element) -> list[str]:
    return [person.findtext("iin") for person in response.iterfind("persons/person")]


# --- population ---------------------------------------------------------------------------------

def test_ten_thousand_people_in_well_under_two_seconds():
    started = time.perf_counter()
    population = Population(generate(size=10_000))
    elapsed = time.perf_counter() - started
    print(f"\n10 000 people generated and indexed in {elapsed:.3f} s")
    assert len(population) == 10_000
    assert elapsed < 2.0


def test_same_seed_same_people_and_a_smaller_size_is_a_prefix(people):
    assert generate(size=10_000) == people
    assert generate(size=500) == people[:500]
    assert generate(seed=1, size=500) != people[:500]
    assert generate(size=500, reference_date=date(2030, 1, 1)) != people[:500]


def test_every_iin_is_valid_unique_and_encodes_the_birth_date_and_sex(people):
    assert len({person.iin for person in people}) == len(people)
    for person in people:
        assert is_valid_iin(person.iin), person
        assert iin_birth_date_and_sex(person.iin) == (person.birth_date, person.sex), person
        assert person.birth_date <= REFERENCE_DATE


def test_names_take_the_persons_gender(people):
    latin = re.compile(r"[A-Z-]+")
    for person in people:
        if person.sex == "F":
            assert person.patronymic.endswith(("ВНА", "ҚЫЗЫ")), person.patronymic
            assert not person.surname.endswith(("ОВ", "ЕВ", "ИН")), person.surname
        else:
            assert person.patronymic.endswith(("ВИЧ", "ҰЛЫ")), person.patronymic
            assert person.surname.endswith(("ОВ", "ЕВ", "ИН")), person.surname
        if person.documents:
            assert latin.fullmatch(person.eng_surname) and latin.fullmatch(person.eng_first_name), person
            assert person.eng_surname == names.latin(person.surname)


def test_transliteration_and_patronymics():
    assert names.latin("ЖАНАР ҚАСЫМҚЫЗЫ") == "ZHANAR KASYMKYZY"
    assert names.latin("ИЛЬЯСОВА") == "ILIASOVA"
    assert names.latin("ЮЛИЯ") == "IULIIA"
    assert names.patronymic(names.kazakh_patronymic_stem("КУАНЫШ"), "M") == "КУАНЫШЕВИЧ"
    assert names.patronymic(names.kazakh_patronymic_stem("ЕРЛАН"), "F") == "ЕРЛАНОВНА"
    assert names.surname_for("МУСИН", "F") == "МУСИНА"


def test_families_children_link_to_parents_who_share_their_address(population):
    linked = [person for person in population if person.parents]
    assert len(linked) > 1000
    for child in linked:
        father, mother = population.get(child.father_iin or ""), population.get(child.mother_iin)
        assert mother is not None and mother.sex == "F", child
        assert child in population.children_of(mother.iin)
        assert (child.birth_date - mother.birth_date).days >= 18 * 365
        if father is not None:
            assert father.sex == "M"
            assert child.surname == names.surname_for(father.surname, child.sex)
        if mother.reg_address is not None and mother.death_date is None:
            where = mother.reg_address
            assert (child.reg_address.district, child.reg_address.street, child.reg_address.building,
                    child.reg_address.flat, child.reg_address.ar_code) == \
                   (where.district, where.street, where.building, where.flat, where.ar_code)
    minors_with_both = [p for p in population.minors() if p.father_iin and p.mother_iin]
    assert len(minors_with_both) > 500


def test_minors_have_birth_certificates_and_identity_cards_only_from_sixteen(population):
    for person in population.minors():
        assert person.birth_certificate is not None and person.birth_certificate.number
        assert bool(person.documents) == (person.age(REFERENCE_DATE) >= 16)
    assert all(p.documents for p in population if p.age(REFERENCE_DATE) >= 18 and p.death_date is None)


@pytest.mark.parametrize("size", [15, 10_000])
def test_every_edge_case_is_present_and_marked(size, people):
    population = Population(people[:size])
    for kind in EDGE_CASES:
        assert population.edge_cases(kind), kind
    for person in population.edge_cases(EDGE_DECEASED):
        assert person.death_date is not None and person.life_status.code != d.ALIVE.code
        assert person.death_certificate is not None and person.death_certificate.begin_date >= person.death_date
        assert all(document.status != d.VALID for document in person.documents)
        assert not person.is_minor(REFERENCE_DATE)
    assert all(p.reg_address is None for p in population.edge_cases(EDGE_NO_ADDRESS))
    for person in population.edge_cases(EDGE_INVALID_DOCUMENT):
        unfit = [doc for doc in person.documents if doc.status == d.UNFIT]
        assert unfit and all(doc.invalidity_date is not None for doc in unfit)
    assert population.minors()
    with pytest.raises(ValueError):
        population.edge_cases("minor")


def test_addresses_are_in_mangystau(population):
    towns = {town for district in d.DISTRICTS for town in district.towns}
    seen = set()
    for person in population:
        if person.reg_address is not None:
            assert person.reg_address.town in towns
            seen.add(person.reg_address.district.key)
    assert seen == set(d.DISTRICTS_BY_KEY)
    aktau = [p.reg_address for p in population if p.reg_address and p.reg_address.town == "АКТАУ"]
    assert aktau and all(a.street.startswith("МИКРОРАЙОН ") and a.flat for a in aktau)


def test_the_documented_showcase_is_what_the_default_seed_makes(people):
    text = (Path(__file__).resolve().parent.parent / "docs" / "gbdfl.md").read_text(encoding="utf-8")
    documented = re.findall(r"`(\d{12})`", text)
    first = {person.iin: person for person in people[:10]}
    assert len(documented) == 10 and set(documented) == set(first)
    for iin, edge in (("470118351607", EDGE_DECEASED), ("920412400078", EDGE_NO_ADDRESS),
                      ("800123301639", EDGE_INVALID_DOCUMENT)):
        assert first[iin].edges == {edge}


def test_listing_command(capsys, tmp_path):
    assert main(["--size", "40", "--edge", "deceased"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.split("\t")[5] == "deceased" for line in lines)
    assert main(["--size", "0", "--file", str(tmp_path / "missing.json")]) == 2


# --- files --------------------------------------------------------------------------------------

PINNED = {"iin": "900101300811", "surname": "ТЕСТОВ", "name": "ТЕСТ", "patronymic": "ТЕСТОВИЧ",
          "district": "beineu", "street": "УЛИЦА АБАЯ", "building": "7",
          "document_type": "002", "document_number": "099999999", "document_begin": "2020-02-02"}
CHILD = {"iin": "150501600012", "surname": "ТЕСТОВА", "name": "АЙЛИН", "district": "beineu",
         "street": "УЛИЦА АБАЯ", "building": "7", "father_iin": "900101300811"}


def test_people_load_from_json_and_csv_and_replace_generated_ones(tmp_path, people):
    assert is_valid_iin(CHILD["iin"])
    replaced = {**PINNED, "iin": people[0].iin, "birth_date": people[0].birth_date.isoformat()}
    (tmp_path / "people.json").write_text(json.dumps([PINNED, replaced], ensure_ascii=False), encoding="utf-8")
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(",".join(FILE_FIELDS) + "\n" + ",".join(CHILD.get(f, "") for f in FILE_FIELDS) + "\n",
                        encoding="utf-8")
    population = build_population(size=100, files=[tmp_path / "people.json", csv_file])
    assert len(population) == 102
    pinned = population.get("900101300811")
    assert (pinned.birth_date, pinned.sex, pinned.reg_address.district.key) == (date(1990, 1, 1), "M", "beineu")
    assert pinned.documents[0].number == "099999999" and pinned.eng_surname == "TESTOV"
    assert population.get(people[0].iin).surname == "ТЕСТОВ"
    child = population.get(CHILD["iin"])
    assert child.sex == "F" and child.parents == ("900101300811",)
    assert child.reg_address.ar_code == pinned.reg_address.ar_code
    assert population.children_of("900101300811") == [child]
    only_file = build_population(size=0, files=[csv_file])
    assert [p.iin for p in only_file] == [CHILD["iin"]]


@pytest.mark.parametrize("record,message", [
    ({"iin": "900101300800"}, "valid check digit"),
    ({"iin": "900101300811", "sex": "F"}, "encodes 1990-01-01 and sex M"),
    ({"iin": "900101300811", "district": "almaty"}, "district must be one of"),
    ({"iin": "900101300811", "colour": "red"}, "unknown fields colour"),
    ({"iin": "900101300811", "document_number": "1", "document_status": "99"}, "document_status"),
    ({"iin": "900101300811", "mother_iin": "123"}, "mother_iin"),
])
def test_bad_records_are_refused_with_their_place(tmp_path, record, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([PINNED, record]), encoding="utf-8")
    with pytest.raises(ValueError, match=f"record 2: .*{message}"):
        load_people(path)
    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        load_people(tmp_path / "people.xml")


# --- search -------------------------------------------------------------------------------------

def test_search_by_each_criterion(population, people):
    person = next(p for p in people if len(p.documents) == 2)
    assert population.search(Query(iin=person.iin)) == [person]
    assert population.search(Query(iin=f" {person.iin} ")) == [person]
    for document in person.documents:
        assert person in population.search(Query(document_number=document.number))
    by_name = population.search(Query(surname=person.surname.lower(), name=person.name.title()))
    assert person in by_name and all(p.surname == person.surname and p.name == person.name for p in by_name)
    assert person in population.search(Query(surname=person.surname, name=person.name,
                                             patronymic=person.patronymic, birth_date=person.birth_date))
    assert person in population.search(Query(surname=person.surname, birth_date_from=person.birth_date,
                                             birth_date_to=person.birth_date))
    ranged = population.search(Query(surname=person.surname, birth_date_from=date(1980, 1, 1),
                                     birth_date_to=date(1989, 12, 31)), limit=1000)
    assert all(date(1980, 1, 1) <= p.birth_date <= date(1989, 12, 31) for p in ranged)
    assert ranged == sorted(ranged, key=lambda p: (p.birth_date, p.iin))
    assert population.search(Query(iin=person.iin, surname="НЕТАКОЙ")) == []
    assert len(population.search(Query(surname=person.surname, birth_date_to=REFERENCE_DATE), limit=3)) == 3


def test_search_not_found(population):
    assert population.search(Query(iin="900101300811")) == []
    assert population.search(Query(surname="НЕТАКОЙ", name="НИКТО")) == []
    assert population.search(Query(document_number="000000000")) == []


@pytest.mark.parametrize("query,reason", [
    (Query(), "no_criteria"),
    (Query(iin="12345"), "iin_invalid"),
    (Query(iin="900101300800"), "iin_invalid"),
    (Query(surname="АХМЕТОВ"), "name_incomplete"),
    (Query(name="НУРЛАН", birth_date=date(1990, 1, 1)), "name_incomplete"),
    (Query(surname="АХМЕТОВ", birth_date_from=date(2000, 1, 1), birth_date_to=date(1990, 1, 1)), "date_range"),
])
def test_bad_queries(population, query, reason):
    with pytest.raises(QueryError) as caught:
        population.search(query)
    assert caught.value.reason == reason and caught.value.ru and caught.value.kz


# --- the payload schema --------------------------------------------------------------------------

def test_schema_compiles_and_types_keep_the_registry_spellings():
    schema = c.load_schema(wire.SCHEMA_PATH)
    assert schema is not None
    folder = wire.SCHEMA_PATH.parent
    assert 'name="issueOrganisation"' in (folder / "person.xsd").read_text(encoding="utf-8")
    assert 'name="issueOrganization"' in (folder / "document.xsd").read_text(encoding="utf-8")
    assert etree.parse(str(wire.SCHEMA_PATH)).getroot().get("targetNamespace") == wire.MESSAGE_NS


@pytest.mark.parametrize("style", client.STYLES)
def test_requests_in_every_style_validate_as_the_gateway_validates_them(style):
    schema = PayloadSchema(wire.SCHEMA_PATH)
    envelope = etree.fromstring(send_message(style, iin="900101300811", birthDateFrom="1990-01-01"))
    assert schema.errors(envelope.find(".//data")) is None
    bad = etree.fromstring(send_message(style, payload=request_payload(birthDate="yesterday")))
    assert "birthDate" in schema.errors(bad.find(".//data"))


# --- the provider --------------------------------------------------------------------------------

@pytest.fixture
def provider(population, operator):
    return GbdflProvider(population, operator.key, operator.cert)


@pytest.mark.parametrize("request_style", client.STYLES)
@pytest.mark.parametrize("reply_style", client.STYLES)
def test_found_in_every_style_signed_by_the_operator(population, people, operator, request_style, reply_style):
    provider = GbdflProvider(population, operator.key, operator.cert, reply_style=reply_style)
    person = people[0]
    reply, response = answer(provider, send_message(request_style, iin=person.iin))
    assert reply.ok and reply.status_code == c.SUCCESS_STATUS and reply.http_status == 200
    assert found_iins(response) == [person.iin]
    assert response.findtext("messageResult/code") == SUCCESS.code == "00000"
    assert response.findtext("messageResult/nameRu") == "Сообщение успешно обработано"
    assert response.findtext("messageResult/nameKz") == "Хабарлама сәтті өңделді"
    assert response.findtext("requestId") == "req-1"
    assert response.findtext("sender/code") == "GBDFL" and response.findtext("receiver/code") == "CLINIC"
    assert response.findtext("messageId") == reply.message_id
    assert PayloadSchema(wire.SCHEMA_PATH).errors(reply.data) is None
    if reply_style == "typed":
        prefix, _, local = reply.data.get(c.XSI_TYPE).partition(":")
        assert (reply.data.nsmap[prefix], local) == (wire.MESSAGE_NS, "Response")
    signed = xmldsig.verify_document(xmldsig.document_in_data(reply.data), policy=POLICY)
    assert signed.certificate == operator.cert


def test_the_person_on_the_wire(provider, population):
    holder = population.edge_cases(EDGE_INVALID_DOCUMENT)[0]
    _, response = answer(provider, send_message(iin=holder.iin))
    person = response.find("persons/person")
    tags = [el.tag for el in person]
    assert tags[:4] == ["iin", "surname", "name", "patronymic"]
    assert person.findtext("birthDate") == holder.birth_date.isoformat()
    assert person.findtext("gender/code") == ("1" if holder.sex == "M" else "2")
    assert person.findtext("citizenship/code") == "398" and person.findtext("lifeStatus/code") == "0"
    assert person.findtext("regAddress/district/nameRu") == "МАНГИСТАУСКАЯ ОБЛАСТЬ"
    assert person.findtext("regAddress/status/code") == "1"
    statuses = [doc.findtext("status/code") for doc in person.iterfind("documents/document")]
    assert "07" in statuses
    assert person.find("documents/document/issueOrganization/nameRu").text == "МВД РК"
    assert response.find(".//fatherIin") is None  # family links stay in the model


def test_children_carry_a_birth_certificate_and_the_deceased_a_death_record(provider, population):
    child = population.minors()[0]
    _, response = answer(provider, send_message(iin=child.iin))
    assert response.findtext("persons/person/birthCertificate/issueOrganisation").startswith("ОТДЕЛ РЕГИСТРАЦИИ")
    assert response.find("persons/person/documents") is None
    dead = population.edge_cases(EDGE_DECEASED)[0]
    _, response = answer(provider, send_message(iin=dead.iin))
    person = response.find("persons/person")
    assert person.findtext("deathDate") == dead.death_date.isoformat()
    assert person.findtext("lifeStatus/code") == d.DECEASED.code
    assert person.find("deathCertificate/number") is not None
    assert {doc.findtext("status/code") for doc in person.iterfind("documents/document")} == {"18"}


def test_search_by_names_and_document(provider, people):
    person = people[1]
    _, response = answer(provider, send_message(surname=person.surname, name=person.name,
                                                birthDate=person.birth_date.isoformat()))
    assert person.iin in found_iins(response)
    _, response = answer(provider, send_message(documentNumber=person.documents[0].number))
    assert found_iins(response) == [person.iin]


def test_not_found_has_no_persons(provider):
    reply, response = answer(provider, send_message(iin="900101300811"))
    assert reply.ok and reply.status_code == c.SUCCESS_STATUS
    assert response.findtext("messageResult/code") == NOT_FOUND_CODE
    assert response.find("persons") is None
    assert PayloadSchema(wire.SCHEMA_PATH).errors(reply.data) is None


def test_codes_are_configurable(population, operator):
    provider = GbdflProvider(population, operator.key, operator.cert, not_found_code="404",
                             bad_request_code="400", fault_code="E1", sender_code="GBDFL_TEST")
    _, response = answer(provider, send_message(iin="900101300811"))
    assert (response.findtext("messageResult/code"), response.findtext("sender/code")) == ("404", "GBDFL_TEST")
    _, response = answer(provider, send_message(iin="1"))
    assert response.findtext("messageResult/code") == "400"
    reply, _ = answer(provider, b"<nonsense/>")
    assert reply.fault["errorCode"] == "E1"
    with pytest.raises(ValueError):
        GbdflProvider(population, operator.key, operator.cert, reply_style="mtom")


@pytest.mark.parametrize("criteria,reason", [
    ({}, "не заданы критерии поиска"),
    ({"iin": "900101300800"}, "контрольному разряду"),
    ({"surname": "АХМЕТОВ"}, "фамилию и имя"),
])
def test_bad_request_is_a_response_without_persons(provider, criteria, reason):
    reply, response = answer(provider, send_message(**criteria))
    assert reply.ok
    assert response.findtext("messageResult/code") == BAD_REQUEST_CODE
    assert reason in response.findtext("messageResult/nameRu")
    assert response.findtext("messageResult/nameKz").startswith("Сұрау дұрыс емес")
    assert response.find("persons") is None


def _typed_as(type_name: str) -> bytes:
    return client.build_send_message(service_id=wire.SERVICE_ID, sender_id="clinic", style="typed",
                                     payload=request_payload(iin="900101300811"),
                                     xsi_type=f"{{{wire.MESSAGE_NS}}}{type_name}")


@pytest.mark.parametrize("body,detail", [
    (b"not xml at all", "not XML"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "not XML"),
    (client.build_send_message_response(message_id="m"), "SendMessage is expected"),
    (client.build_send_message(service_id=wire.SERVICE_ID, sender_id="clinic"), "no data"),
    (_typed_as("Response"), "Request is expected"),
    (send_message("escaped", payload=etree.Element("Request")), "Request is expected"),
    (send_message("inline", payload=request_payload(birthDate="yesterday")), "birthDate"),
    (send_message("inline", payload=etree.fromstring(
        f'<m:Request xmlns:m="{wire.MESSAGE_NS}"><messageId>1</messageId></m:Request>')), "messageDate"),
])
def test_malformed_request_is_a_sync_fault(provider, body, detail):
    status, raw = provider.answer(body)
    assert status == 500
    fault = etree.fromstring(raw).find(f"{c.BODY}/{c.FAULT}")
    assert fault.findtext("faultcode") == "soap:Client"
    info = fault.find(f"detail/{c.SYNC_FAULT}")
    assert info.findtext("errorCode") == FAULT_CODE
    assert detail in info.findtext("errorData")
    assert c.sync_schema().validate(etree.fromstring(raw)), c.sync_schema().error_log


def test_fault_carries_the_session_id(provider):
    body = etree.fromstring(send_message(payload=request_payload(birthDate="never")))
    info = body.find(".//requestInfo")
    etree.SubElement(info, "sessionId").text = "{f0774397-1111-2222-3333-444455556666}"
    reply = client.read_reply(*provider.answer(etree.tostring(body)))
    assert reply.fault["sessionId"] == "{f0774397-1111-2222-3333-444455556666}"


@pytest.mark.parametrize("reply_style", client.STYLES)
def test_xmlsec_verifies_the_extracted_response(population, people, operator, reply_style):
    """libxmlsec1 agrees (tests/xmlsec_oracle.py: the python-xmlsec wheel, and the xmlsec1 command where installed)."""
    provider = GbdflProvider(population, operator.key, operator.cert, reply_style=reply_style)
    reply, _ = answer(provider, send_message(iin=people[2].iin))
    document = xmldsig.document_in_data(reply.data)
    verdict = xmlsec_oracle.verify(document, cert=operator.cert)
    assert verdict.ok, verdict.detail
    tampered = document.replace(people[2].iin.encode(), b"900101300811")
    assert not xmlsec_oracle.verify(tampered, cert=operator.cert).ok


def test_signature_is_the_last_child_of_the_response(provider, people):
    reply, _ = answer(provider, send_message(iin=people[0].iin))
    children = [el for el in reply.data if isinstance(el.tag, str)]
    assert children[-1].tag == DS_SIGNATURE and children[0].tag == "messageId"
