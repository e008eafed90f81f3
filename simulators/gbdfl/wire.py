"""The GBD FL payload on the wire (contract §10): reading a `Request`, writing a `Response`.

Element names, order and namespaces follow `xsd/services/gbdfl/gbdfl.xsd`; children are unqualified.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from lxml import etree

from gateway import contract as c
from gateway.client import now_iso
from simulators.gbdfl import dictionaries as d
from simulators.gbdfl.population import Address, BirthPlace, Certificate, Document, Person, Query

MESSAGE_NS = "http://message.persistence.interactive.nat"
PERSON_NS = "http://person.persistence.interactive.nat"
DOCUMENT_NS = "http://document.persistence.interactive.nat"
DICTIONARIES_NS = "http://dictionaries.persistence.interactive.nat"
REQUEST = c.q(MESSAGE_NS, "Request")
RESPONSE = c.q(MESSAGE_NS, "Response")
SCHEMA_PATH = c.XSD_DIR / "services" / "gbdfl" / "gbdfl.xsd"
SERVICE_ID = "GBDFL_UniversalServiceSync"


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    return c.load_schema(SCHEMA_PATH)


class MalformedRequest(ValueError):
    """The message carries no schema-valid `Request`: answered with a SOAP fault, not a Response."""


@dataclass(frozen=True)
class Request:
    message_id: str
    sender_code: str
    query: Query


def _xsi_type(data: etree._Element) -> str | None:
    """The `{namespace}local` name of data's xsi:type, resolved against the prefixes in scope."""
    value = data.get(c.XSI_TYPE)
    if value is None:
        return None
    prefix, _, local = value.strip().rpartition(":")
    namespace = data.nsmap.get(prefix or None)
    if namespace is None:
        raise MalformedRequest(f"xsi:type {value!r} uses an undeclared prefix")
    return c.q(namespace, local)


def request_document(data: etree._Element | None) -> etree._Element:
    """The `Request` in `data`, whatever the style (contract §6), as a standalone element."""
    if data is None:
        raise MalformedRequest("the message has no data")
    xsi_type = _xsi_type(data)
    children = [el for el in data if isinstance(el.tag, str)]
    if xsi_type == c.q(c.XS_NS, "string") or (xsi_type is None and not children):
        try:
            return c.PARSER.parse((data.text or "").strip().encode("utf-8")).getroot()
        except (ValueError, etree.XMLSyntaxError) as exc:
            raise MalformedRequest(f"data is not an XML document: {exc}") from None
    if xsi_type is not None:
        if xsi_type != REQUEST:
            raise MalformedRequest(f"data has xsi:type {xsi_type}, {REQUEST} is expected")
        document = etree.Element(REQUEST, nsmap={"ns2": MESSAGE_NS})
        document.extend(copy.deepcopy(child) for child in children)
        return document
    if len(children) != 1:
        raise MalformedRequest(f"data holds {len(children)} elements, one Request is expected")
    return copy.deepcopy(children[0])


def _date(document: etree._Element, tag: str) -> date | None:
    text = document.findtext(tag)
    # xs:date may carry a time zone ("2001-05-17+06:00"): the day is what is searched.
    return date.fromisoformat(text.strip()[:10]) if text else None


def read_request(data: etree._Element | None) -> Request:
    """The Request's identity and criteria; MalformedRequest unless it is a schema-valid Request."""
    document = request_document(data)
    if document.tag != REQUEST:
        raise MalformedRequest(f"the document is {document.tag}, {REQUEST} is expected")
    if not schema().validate(etree.ElementTree(document)):
        error = schema().error_log.last_error
        raise MalformedRequest(f"line {error.line}: {error.message}")

    def text(tag: str) -> str | None:
        value = document.findtext(tag)
        return value if value and value.strip() else None

    query = Query(iin=text("iin"), surname=text("surname"), name=text("name"), patronymic=text("patronymic"),
                  birth_date=_date(document, "birthDate"), birth_date_from=_date(document, "birthDateFrom"),
                  birth_date_to=_date(document, "birthDateTo"), document_number=text("documentNumber"))
    return Request(document.findtext("messageId"), document.findtext("senderCode"), query)


# --- the Response ----------------------------------------------------------------------------------

def _text(parent: etree._Element, tag: str, value) -> None:
    if value is not None:
        etree.SubElement(parent, tag).text = value if isinstance(value, str) else value.isoformat()


def _value(parent: etree._Element, tag: str, value: d.Value | None) -> None:
    if value is not None:
        element = etree.SubElement(parent, tag)
        _text(element, "code", value.code)
        _text(element, "nameRu", value.ru)
        _text(element, "nameKz", value.kz)


def _certificate(parent: etree._Element, tag: str, certificate: Certificate | None) -> None:
    if certificate is not None:
        element = etree.SubElement(parent, tag)
        _text(element, "number", certificate.number)
        _text(element, "beginDate", certificate.begin_date)
        _text(element, "issueOrganisation", certificate.issue_organisation)


def _birth_place(parent: etree._Element, place: BirthPlace) -> None:
    element = etree.SubElement(parent, "birthPlace")
    _value(element, "country", place.country)
    _value(element, "district", place.oblast)
    _value(element, "region", place.region)
    if place.foreign_region:
        _text(etree.SubElement(element, "foreignData"), "regionName", place.foreign_region)
    _text(element, "city", place.city)


def _location(element: etree._Element, address: Address) -> None:
    _value(element, "country", d.KAZAKHSTAN)
    _value(element, "district", d.MANGYSTAU)
    _value(element, "region", address.district.region)
    for tag, value in (("city", address.town), ("street", address.street), ("building", address.building),
                       ("flat", address.flat), ("beginDate", address.begin_date), ("endDate", address.end_date)):
        _text(element, tag, value or None)


def _document(parent: etree._Element, document: Document, person: Person) -> None:
    element = etree.SubElement(parent, "document")
    _value(element, "type", document.type)
    _text(element, "number", document.number)
    _text(element, "beginDate", document.begin_date)
    _text(element, "endDate", document.end_date)
    _value(element, "issueOrganization", document.issuer)
    _value(element, "status", document.status)
    _text(element, "invalidityDate", document.invalidity_date)
    _text(element, "surname", person.surname)
    _text(element, "name", person.name)
    _text(element, "patronymic", person.patronymic)
    _text(element, "birthDate", person.birth_date)


def _person(parent: etree._Element, person: Person) -> None:
    element = etree.SubElement(parent, "person")
    for tag, value in (("iin", person.iin), ("surname", person.surname), ("name", person.name),
                       ("patronymic", person.patronymic), ("engFirstName", person.eng_first_name),
                       ("engSurname", person.eng_surname), ("birthDate", person.birth_date),
                       ("deathDate", person.death_date)):
        _text(element, tag, value)
    _value(element, "gender", person.gender)
    _value(element, "nationality", person.nationality)
    _value(element, "citizenship", person.citizenship)
    _value(element, "lifeStatus", person.life_status)
    _certificate(element, "birthCertificate", person.birth_certificate)
    _certificate(element, "deathCertificate", person.death_certificate)
    _birth_place(element, person.birth_place)
    if person.reg_address is not None:
        address = etree.SubElement(element, "regAddress")
        _location(address, person.reg_address)
        _value(address, "status", d.REGISTERED)
        _text(address, "arCode", person.reg_address.ar_code)
    if person.documents:
        documents = etree.SubElement(element, "documents")
        for document in person.documents:
            _document(documents, document, person)
    if person.addresses:
        addresses = etree.SubElement(element, "addresses")
        for other in person.addresses:
            address = etree.SubElement(addresses, "address")
            _value(address, "type", d.TEMPORARY)
            _location(address, other)
            _text(address, "arCode", other.ar_code)


def response_document(*, message_id: str, request_id: str, sender: d.Value, receiver: d.Value, result: d.Value,
                      persons: list[Person] | None) -> etree._Element:
    """An unsigned `Response`; `persons` None or empty leaves out the persons element (nothing found)."""
    root = etree.Element(RESPONSE, nsmap={"ns2": MESSAGE_NS})
    _text(root, "messageId", message_id)
    _text(root, "messageDate", now_iso())
    _text(root, "requestId", request_id)
    _value(root, "sender", sender)
    _value(root, "receiver", receiver)
    _value(root, "messageResult", result)
    if persons:
        holder = etree.SubElement(root, "persons")
        for person in persons:
            _person(holder, person)
    return root
