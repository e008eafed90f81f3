"""The attachment documents on the wire (`xsd/services/attachment/attachment.xsd`): reading the
AttachmentRequest (заявление о прикреплении) and writing Registration, AttachmentCoupon (талон
прикрепления) and AttachmentRefusal (мотивированный отказ). Children are unqualified.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache

from lxml import etree

from gateway import contract as c

NS = "urn:shep-emulator:phc-attachment:v1"
SCHEMA_PATH = c.XSD_DIR / "services" / "attachment" / "attachment.xsd"
REQUEST = c.q(NS, "AttachmentRequest")
REGISTRATION = c.q(NS, "Registration")
COUPON = c.q(NS, "AttachmentCoupon")
REFUSAL = c.q(NS, "AttachmentRefusal")
PORTAL, PROVIDER = "PORTAL", "PROVIDER"
_schema_lock = threading.Lock()  # an XMLSchema keeps its error log on itself: one validation at a time


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    return c.load_schema(SCHEMA_PATH)


def validate(document: etree._Element) -> None:
    """ValueError naming the first problem unless `document` is valid against attachment.xsd."""
    with _schema_lock:
        if schema().validate(etree.ElementTree(document)):
            return
        error = schema().error_log.last_error
        raise ValueError(f"line {error.line}: {error.message}")


@dataclass(frozen=True)
class Address:
    region: str
    district: str | None
    city: str
    street: str | None = None
    building: str | None = None
    flat: str | None = None

    def line(self) -> str:
        """One line for people: region, district, settlement, street, building, flat."""
        parts = [self.region, self.district, self.city, self.street,
                 f"д. {self.building}" if self.building else None, f"кв. {self.flat}" if self.flat else None]
        return ", ".join(part for part in parts if part)

    def as_dict(self) -> dict:
        return {key: value for key, value in vars(self).items() if value}


@dataclass(frozen=True)
class PersonData:
    iin: str
    surname: str
    name: str
    patronymic: str | None
    birth_date: date
    address: Address | None = None

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.surname, self.name, self.patronymic) if part)


@dataclass(frozen=True)
class AttachmentRequest:
    request_number: str
    submitted_at: datetime
    channel: str  # PORTAL | PROVIDER
    applicant: PersonData
    clinic_bin: str
    reason: str
    representative_iin: str | None = None
    district_number: str | None = None
    employee_iin: str | None = None


@dataclass(frozen=True)
class DistrictData:
    number: str
    kind: str
    doctor: str


@dataclass(frozen=True)
class Coupon:
    coupon_number: str
    request_number: str
    registration_number: str
    issued_at: datetime
    person: PersonData
    clinic_bin: str
    clinic_name: str
    district: DistrictData
    attachment_date: date
    reason: str
    home_visit_note: str | None = None
    previous_clinic_bin: str | None = None


@dataclass(frozen=True)
class Reason:
    """One ground the request failed: its stable code and texts (docs/attachment-rules.md)."""
    code: str
    ru: str
    kk: str
    detail: str = field(default="", compare=False)  # for the АЖО's operators, not sent


def _text(parent: etree._Element, tag: str, value) -> None:
    if value is not None and value != "":
        etree.SubElement(parent, tag).text = value if isinstance(value, str) else value.isoformat()


def _root(tag: str) -> etree._Element:
    return etree.Element(tag, nsmap={"att": NS})


def _address(parent: etree._Element, address: Address | None) -> None:
    if address is None:
        return
    element = etree.SubElement(parent, "address")
    for key in ("region", "district", "city", "street", "building", "flat"):
        _text(element, key, getattr(address, key))


def _person(parent: etree._Element, tag: str, person: PersonData) -> None:
    element = etree.SubElement(parent, tag)
    for key, value in (("iin", person.iin), ("surname", person.surname), ("name", person.name),
                       ("patronymic", person.patronymic), ("birthDate", person.birth_date)):
        _text(element, key, value)
    _address(element, person.address)


def request_document(request: AttachmentRequest) -> etree._Element:
    root = _root(REQUEST)
    _text(root, "requestNumber", request.request_number)
    _text(root, "submittedAt", request.submitted_at.isoformat(timespec="seconds"))
    _text(root, "channel", request.channel)
    _person(root, "applicant", request.applicant)
    _text(root, "representativeIin", request.representative_iin)
    _text(root, "clinicBin", request.clinic_bin)
    _text(root, "districtNumber", request.district_number)
    _text(root, "reason", request.reason)
    _text(root, "employeeIin", request.employee_iin)
    return root


def registration_document(*, request_number: str, registration_number: str, registered_at: datetime,
                          clinic_bin: str) -> etree._Element:
    root = _root(REGISTRATION)
    _text(root, "requestNumber", request_number)
    _text(root, "registrationNumber", registration_number)
    _text(root, "registeredAt", registered_at.isoformat(timespec="seconds"))
    _text(root, "clinicBin", clinic_bin)
    return root


def coupon_document(coupon: Coupon) -> etree._Element:
    root = _root(COUPON)
    _text(root, "couponNumber", coupon.coupon_number)
    _text(root, "requestNumber", coupon.request_number)
    _text(root, "registrationNumber", coupon.registration_number)
    _text(root, "issuedAt", coupon.issued_at.isoformat(timespec="seconds"))
    _person(root, "person", coupon.person)
    clinic = etree.SubElement(root, "clinic")
    _text(clinic, "bin", coupon.clinic_bin)
    _text(clinic, "name", coupon.clinic_name)
    district = etree.SubElement(root, "district")
    for key in ("number", "kind", "doctor"):
        _text(district, key, getattr(coupon.district, key))
    _text(root, "attachmentDate", coupon.attachment_date)
    _text(root, "reason", coupon.reason)
    _text(root, "homeVisitNote", coupon.home_visit_note)
    _text(root, "previousClinicBin", coupon.previous_clinic_bin)
    return root


def refusal_document(*, request_number: str, registration_number: str | None, refused_at: datetime,
                     reasons: list[Reason]) -> etree._Element:
    root = _root(REFUSAL)
    _text(root, "requestNumber", request_number)
    _text(root, "registrationNumber", registration_number)
    _text(root, "refusedAt", refused_at.isoformat(timespec="seconds"))
    for reason in reasons:
        element = etree.SubElement(root, "reason")
        _text(element, "code", reason.code)
        _text(element, "textRu", reason.ru)
        _text(element, "textKk", reason.kk)
    return root


def _optional(parent: etree._Element, tag: str) -> str | None:
    value = parent.findtext(tag)
    return value.strip() if value and value.strip() else None


def _read_person(element: etree._Element) -> PersonData:
    address = element.find("address")
    return PersonData(
        iin=element.findtext("iin").strip(), surname=element.findtext("surname").strip(),
        name=element.findtext("name").strip(), patronymic=_optional(element, "patronymic"),
        # xs:date may carry a zone ("2001-05-17+05:00"): the day is what counts.
        birth_date=date.fromisoformat(element.findtext("birthDate").strip()[:10]),
        address=None if address is None else Address(
            region=address.findtext("region").strip(), district=_optional(address, "district"),
            city=address.findtext("city").strip(), street=_optional(address, "street"),
            building=_optional(address, "building"), flat=_optional(address, "flat")))


def read_request(document: etree._Element) -> AttachmentRequest:
    """The request's fields; ValueError unless it is a schema-valid AttachmentRequest."""
    if document.tag != REQUEST:
        raise ValueError(f"the document is {document.tag}, {REQUEST} is expected")
    validate(document)
    return AttachmentRequest(
        request_number=document.findtext("requestNumber").strip(),
        submitted_at=datetime.fromisoformat(document.findtext("submittedAt").strip().replace("Z", "+00:00")),
        channel=document.findtext("channel").strip(), applicant=_read_person(document.find("applicant")),
        clinic_bin=document.findtext("clinicBin").strip(), reason=document.findtext("reason").strip(),
        representative_iin=_optional(document, "representativeIin"),
        district_number=_optional(document, "districtNumber"), employee_iin=_optional(document, "employeeIin"))


def read_coupon(document: etree._Element) -> Coupon:
    """A coupon as the АЖО issued it (for the paper copy and the API)."""
    district = document.find("district")
    return Coupon(
        coupon_number=document.findtext("couponNumber"), request_number=document.findtext("requestNumber"),
        registration_number=document.findtext("registrationNumber"),
        issued_at=datetime.fromisoformat(document.findtext("issuedAt")), person=_read_person(document.find("person")),
        clinic_bin=document.findtext("clinic/bin"), clinic_name=document.findtext("clinic/name"),
        district=DistrictData(district.findtext("number"), district.findtext("kind"), district.findtext("doctor")),
        attachment_date=date.fromisoformat(document.findtext("attachmentDate")), reason=document.findtext("reason"),
        home_visit_note=_optional(document, "homeVisitNote"),
        previous_clinic_bin=_optional(document, "previousClinicBin"))


def read_refusal(document: etree._Element) -> list[Reason]:
    return [Reason(r.findtext("code"), r.findtext("textRu"), r.findtext("textKk")) for r in document.iter("reason")]
